/*
 * policy/rcptdb.h -- valid recipients per accepted domain ("recipients
 * DOMAIN PATH"), so that an edge gateway refuses unknown users at RCPT
 * (550 5.1.1) instead of accepting and bouncing later (backscatter).
 *
 * Pure: mta/ reads each file; rcptdb_load() takes its bytes.  A list file
 * has one entry a line, '#' starts a comment line:
 *
 *     alice                  alice at the list's domain (any of them for *.DOMAIN)
 *     bob@sales.example.org  exactly this address
 *
 * Entries are compared without regard to ASCII case.  postmaster is always
 * valid (RFC 5321 4.5.1).  A domain without a list, or with "catch-all",
 * takes every local part.  The caller owns the struct rcptdb.
 */
#ifndef MOAT_POLICY_RCPTDB_H
#define MOAT_POLICY_RCPTDB_H

#include <stddef.h>

#include "addr.h"
#include "conf.h"

#define RCPTDB_ENTRIES_MAX (1u << 20)   /* per list */
#define RCPTDB_FILE_MAX    (64u << 20)

struct rcptdb_list {
	char  **v;        /* sorted, lower-case, into text */
	size_t  n;
	char   *text;
	int     loaded;
};

struct rcptdb {
	struct rcptdb_list lists[CONF_MAX_RCPT_LISTS]; /* index as conf->rcpt_lists */
};

/* Zero db (no lists loaded). */
void rcptdb_init(struct rcptdb *db);

/* Load list index (conf->rcpt_lists[index]) from its file's bytes.
 * Returns 0, or -1 with "FILE:LINE: what is wrong" in err. */
int rcptdb_load(struct rcptdb *db, size_t index, const char *text, size_t len,
                const char *file, char *err, size_t errcap);

void rcptdb_free(struct rcptdb *db);

/* Is rcpt (one of our domains' addresses) a valid recipient?  1 when it is
 * listed, is postmaster, or its domain has no list; 0 when unknown. */
int rcptdb_known(const struct rcptdb *db, const struct conf *c, const struct addr *rcpt);

#endif
