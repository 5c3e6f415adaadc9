/*
 * policy/dnsbl.h -- DNS blocklists and allowlists of client addresses, the
 * pure half: the zone syntax of the `dnsbl` directive, the query name, the
 * answer filter, the score, and a cache with the records' TTLs.  mta/
 * sends the queries (mta/smtp/blocklist_lookup.c) and passes the time in.
 *
 * A zone is written as postscreen writes it (Postfix postscreen_dnsbl_sites):
 *
 *   dnsbl ZONE[=FILTER][*WEIGHT]
 *
 *   ZONE    the list's DNS zone: the client 192.0.2.1 is looked up as
 *           1.2.0.192.ZONE (type A), 2001:db8::1 as its 32 reversed
 *           nibbles, 1.0.0.0...8.b.d.0.1.0.0.2.ZONE
 *   FILTER  the answers that count, as four octets; each is a number,
 *           or a bracketed list of numbers and ranges: 127.0.0.[2..11;20]
 *           Without a filter an answer counts if it is in 127.0.0.0/8 but
 *           not 127.255.255.0/24, where lists put their error codes (a
 *           refused or over-quota query is not a listing).
 *   WEIGHT  what a listing adds to the client's score, -1000 to 1000,
 *           default 1; negative for an allowlist (DNSWL)
 *
 * The client is refused when the sum of the weights of the zones that list
 * it reaches dnsbl-threshold.  A zone that does not answer in time adds
 * nothing: a DNS failure never refuses mail.
 */
#ifndef MOAT_POLICY_DNSBL_H
#define MOAT_POLICY_DNSBL_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "net.h"

/* A query name: 64 octets of reversed nibbles, the zone, a NUL. */
#define DNSBL_NAME_MAX (64 + CONF_DNSBL_ZONE_MAX + 1)
/* The longest text dnsbl_spec_format() writes (a filter of four lists of
 * 128 numbers is longer, and is cut: the caller passes a big buffer). */
#define DNSBL_SPEC_TEXT_MAX 4096

/*
 * Parse one `dnsbl` argument s[0..len) into *out.  Returns 0, or -1 with a
 * short static reason in *why ("bad zone", "bad filter", "bad weight").
 * The zone is lower-cased and loses one trailing dot.
 */
int dnsbl_spec_parse(const char *s, size_t len, struct conf_dnsbl *out, const char **why);

/* Write the argument back (it parses to the same struct); returns the
 * length it needs, like snprintf. */
size_t dnsbl_spec_format(const struct conf_dnsbl *z, char *buf, size_t cap);

/* The name to look up for ip in zone into buf; returns its length, or 0
 * if it does not fit (DNSBL_NAME_MAX always does for a parsed zone). */
size_t dnsbl_query_name(const struct ipaddr *ip, const char *zone, char *buf, size_t cap);

/* Does an A record with this address, found at z, list the client? */
int dnsbl_answer_counts(const struct conf_dnsbl *z, const struct ipaddr *a);

/*
 * The score of the zones in listed (bit k: conf zone k lists the client).
 * Returns the sum of their weights.
 */
int dnsbl_score(const struct conf *c, uint32_t listed);

/*
 * The score the client surely has: that of listed, plus the weights of the
 * allowlists (negative weights) among unanswered, the zones that failed or
 * did not answer in time, as if each had listed the client.  Refusing on
 * this score, a DNS failure never refuses mail.
 */
int dnsbl_score_sure(const struct conf *c, uint32_t listed, uint32_t unanswered);

/* Is that score a refusal (at least dnsbl-threshold)? */
int dnsbl_refused(const struct conf *c, int score);

/*
 * The names of the zones with a positive weight in listed, in config
 * order, joined by ", ", into buf (cut with "..." when cap is short).
 * Returns buf.  This names the lists in the 554.
 */
char *dnsbl_names(const struct conf *c, uint32_t listed, char *buf, size_t cap);

/* ---- the cache ----------------------------------------------------------
 *
 * One entry per (zone, client address): listed or not, until when.  The
 * caller owns the slots (any number; 0 disables the cache) and passes the
 * time in milliseconds on any clock that does not go back.  A full
 * neighbourhood evicts the entry that expires first.
 */
struct dnsbl_cache_slot {
	int64_t       expires;   /* ms; 0: empty */
	struct ipaddr addr;
	uint8_t       zone;      /* conf index */
	uint8_t       listed;    /* 0 or 1 */
};

struct dnsbl_cache {
	struct dnsbl_cache_slot *slot;
	size_t                   nslots;
};

void dnsbl_cache_init(struct dnsbl_cache *c, struct dnsbl_cache_slot *slots, size_t n);

/* -1: not cached (or expired); else the cached 0 or 1. */
int dnsbl_cache_get(const struct dnsbl_cache *c, unsigned zone, const struct ipaddr *addr,
                    int64_t now_ms);

/* Remember an answer for ttl seconds (0: not at all; at most a day). */
void dnsbl_cache_put(struct dnsbl_cache *c, unsigned zone, const struct ipaddr *addr,
                     int listed, int64_t now_ms, uint32_t ttl);

#endif
