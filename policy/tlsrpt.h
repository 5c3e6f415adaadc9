/*
 * policy/tlsrpt.h -- SMTP TLS Reporting (RFC 8460): the day's results for
 * one policy domain, the JSON report of section 4, and the _smtp._tls TXT
 * record that says where reports go.  Pure: no I/O, no clock (the caller
 * passes times), no allocation; the caller owns every struct and its
 * fixed caps.
 *
 * A report covers one policy domain (the recipient domain, whose
 * _smtp._tls record names the report's recipients) and one UTC day.  Each
 * delivery session toward it adds one result: a success, or a failure
 * with its result type (RFC 8460 4.3) and where it happened.  Sessions
 * are grouped by the policy that applied (its type and text, RFC 8460
 * 4.4: "policies"), failures by what tells them apart (result type,
 * addresses, MX host, reason).  What does not fit the caps is still
 * counted in the totals, never silently lost: see the *_dropped fields.
 */
#ifndef MOAT_POLICY_TLSRPT_H
#define MOAT_POLICY_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/dns.h"
#include "policy/net.h"

#define TLSRPT_POLICIES_MAX  3     /* distinct policies in one domain's day */
#define TLSRPT_DETAILS_MAX   16    /* distinct failure kinds per policy */
#define TLSRPT_STRINGS_MAX   2048  /* a policy's text: its lines joined by '\n' */
#define TLSRPT_MXHOSTS_MAX   512   /* its mx-host list, joined by '\n' */
#define TLSRPT_REASON_MAX    96    /* failure-reason-code */
#define TLSRPT_RUA_MAX       4     /* report URIs kept from the record */
#define TLSRPT_URI_MAX       256

/* RFC 8460 4.4 "policy-type". */
enum tlsrpt_policy_type {
	TLSRPT_POLICY_STS = 0,       /* "sts"             */
	TLSRPT_POLICY_TLSA,          /* "tlsa"            */
	TLSRPT_POLICY_NONE           /* "no-policy-found" */
};

/* RFC 8460 4.3 "result-type". */
enum tlsrpt_result {
	TLSRPT_STARTTLS_NOT_SUPPORTED = 0,
	TLSRPT_CERTIFICATE_HOST_MISMATCH,
	TLSRPT_CERTIFICATE_EXPIRED,
	TLSRPT_CERTIFICATE_NOT_TRUSTED,
	TLSRPT_VALIDATION_FAILURE,
	TLSRPT_TLSA_INVALID,
	TLSRPT_DNSSEC_INVALID,
	TLSRPT_DANE_REQUIRED,
	TLSRPT_STS_POLICY_FETCH_ERROR,
	TLSRPT_STS_POLICY_INVALID,
	TLSRPT_STS_WEBPKI_INVALID,
	TLSRPT_RESULT_COUNT
};

/* "starttls-not-supported", ...; "?" for a value out of range. */
const char *tlsrpt_result_name(unsigned result);
const char *tlsrpt_policy_type_name(unsigned type);

/* The policy a session was under.  strings: the policy-string lines
 * joined by '\n' (MTA-STS: mtasts_policy_format(); DANE: the TLSA
 * records, "3 1 1 <hex>"; "" for none); mx_hosts likewise (MTA-STS: its
 * mx patterns; may be ""). */
struct tlsrpt_policy_in {
	unsigned    type;         /* enum tlsrpt_policy_type */
	const char *strings;
	const char *mx_hosts;
};

/* Where a failure happened; any string may be "" (then left out of the
 * report). */
struct tlsrpt_failure_in {
	unsigned    result;                /* enum tlsrpt_result */
	const char *sending_ip;            /* our address */
	const char *receiving_ip;
	const char *receiving_mx;          /* the MX host name */
	const char *receiving_helo;        /* its greeting or EHLO name */
	const char *reason;                /* failure-reason-code: a short text */
};

struct tlsrpt_detail {
	uint8_t  result;
	char     sending_ip[IP_TEXT_MAX];
	char     receiving_ip[IP_TEXT_MAX];
	char     receiving_mx[DNS_NAME_MAX + 1];
	char     receiving_helo[DNS_NAME_MAX + 1];
	char     reason[TLSRPT_REASON_MAX];
	uint64_t count;
};

struct tlsrpt_policy {
	uint8_t  type;
	char     strings[TLSRPT_STRINGS_MAX];
	char     mx_hosts[TLSRPT_MXHOSTS_MAX];
	uint64_t successes, failures;          /* summary: every session counted */
	size_t   ndetails;
	struct tlsrpt_detail details[TLSRPT_DETAILS_MAX];
	uint64_t details_dropped;              /* failures of kinds past the cap */
};

struct tlsrpt_report {
	char     domain[DNS_NAME_MAX + 1];     /* lower-case */
	int64_t  day;                          /* Unix seconds of its 00:00 UTC */
	size_t   npolicies;
	struct tlsrpt_policy policies[TLSRPT_POLICIES_MAX];
	uint64_t sessions_dropped;             /* sessions under policies past the cap */
};

/* 00:00 UTC of the day that holds t (Unix seconds; before 1970 too). */
int64_t tlsrpt_day(int64_t t);

/* An empty report for domain (a host name: lower-cased here) and the day
 * holding t.  0, or -1 if domain is not a host name. */
int tlsrpt_init(struct tlsrpt_report *r, const char *domain, int64_t t);

/*
 * Count one session under policy pol at time t: a success when f is
 * NULL, else a failure.  Strings longer than their fields are cut (at a
 * character boundary, never inside a UTF-8 sequence).  Returns 0; 1 when
 * it was counted but not itemized (a policy or failure kind past the
 * caps: sessions_dropped or details_dropped); -1 when t is not the
 * report's day or a value is out of range (nothing counted).
 */
int tlsrpt_add(struct tlsrpt_report *r, const struct tlsrpt_policy_in *pol,
               const struct tlsrpt_failure_in *f, int64_t t);

/* What the report says of its sender (RFC 8460 4.4): strings, any bytes
 * (escaped as JSON needs). */
struct tlsrpt_meta {
	const char *organization;   /* organization-name */
	const char *contact;        /* contact-info: an address or URI */
	const char *report_id;      /* report-id: unique per report */
};

/*
 * The report as JSON (RFC 8460 4.4, RFC 8259) into buf; like snprintf:
 * writes at most cap bytes with a NUL and returns the length it needs.
 * Strings are escaped ('"', '\\', control bytes as \uXXXX) and bytes that
 * are not UTF-8 become U+FFFD, so the output is valid JSON whatever the
 * input.  Empty optional fields are left out.
 */
size_t tlsrpt_json(const struct tlsrpt_report *r, const struct tlsrpt_meta *m, char *buf,
                   size_t cap);

/* ---- the _smtp._tls TXT record (RFC 8460 3) ---- */

struct tlsrpt_rua {
	size_t n;                                      /* URIs kept */
	char   uri[TLSRPT_RUA_MAX][TLSRPT_URI_MAX + 1];
	size_t dropped;                                /* past the cap, or too long */
};

/*
 * One record's text: "v=TLSRPTv1" first, then fields separated by ";"
 * with optional blanks, "rua=" exactly once with one or more URIs
 * separated by "," (mailto: or https:, any case; other schemes are
 * skipped), other fields ignored.  0 with the URIs in *out, or -1.
 */
int tlsrpt_txt_parse(const char *text, size_t len, struct tlsrpt_rua *out);

/* As mtasts_txt_select(): records not starting "v=TLSRPTv1" are
 * discarded, exactly one must remain and parse.  0 or -1 (no report). */
int tlsrpt_txt_select(const struct dns_txt_set *set, struct tlsrpt_rua *out);

/*
 * The address of a "mailto:" URI (RFC 6068): the part before any '?',
 * percent-decoded, one '@' with a non-empty local part and a host name
 * after it, no blanks, controls or commas (one address per URI).  0 with
 * it in addr, or -1 (another scheme, or not such an address).
 */
int tlsrpt_mailto(const char *uri, char *addr, size_t cap);

#endif
