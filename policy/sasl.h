/*
 * policy/sasl.h -- SASL PLAIN (RFC 4616) and LOGIN messages as SMTP AUTH
 * (RFC 4954) carries them: base64 on a line, "*" to cancel.
 *
 * Pure: no I/O, no allocation; the caller supplies every buffer.
 */
#ifndef MOAT_POLICY_SASL_H
#define MOAT_POLICY_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX 255   /* authzid, authcid, password: octets each */
/* The longest decoded message: three fields and two NULs. */
#define SASL_MSG_MAX   (3 * SASL_FIELD_MAX + 2)

enum sasl_result {
	SASL_OK = 0,
	SASL_ABORT = -1,     /* the client sent "*": 501 5.7.0 */
	SASL_EBASE64 = -2,   /* not base64: 501 5.5.2 */
	SASL_ETOOLONG = -3,  /* a field over SASL_FIELD_MAX: 501 5.5.2 */
	SASL_EFORMAT = -4    /* decoded, but not a PLAIN message (NULs), or a NUL in a LOGIN field */
};

struct sasl_creds {
	char   authzid[SASL_FIELD_MAX + 1];  /* NUL-terminated; may be empty */
	size_t authzidlen;
	char   authcid[SASL_FIELD_MAX + 1];
	size_t authcidlen;
	char   passwd[SASL_FIELD_MAX + 1];
	size_t passwdlen;
};

/*
 * Decode one client response (a line without CRLF) into out (cap bytes,
 * at least SASL_MSG_MAX).  "*" is SASL_ABORT.  initial: this is the
 * initial response on the AUTH line, where "=" stands for an empty one.
 */
enum sasl_result sasl_response(const char *line, size_t len, int initial, unsigned char *out,
                               size_t cap, size_t *outlen);

/* Split a decoded PLAIN message "authzid NUL authcid NUL passwd" into c.
 * authcid and passwd must not be empty. */
enum sasl_result sasl_plain(const unsigned char *msg, size_t len, struct sasl_creds *c);

/* A decoded LOGIN field (user name or password) into dst (SASL_FIELD_MAX+1
 * bytes, NUL-terminated): no NUL inside, at most SASL_FIELD_MAX octets. */
enum sasl_result sasl_login_field(const unsigned char *msg, size_t len, char *dst, size_t *dstlen);

/* Zero the credentials (the password must not linger in memory). */
void sasl_wipe(struct sasl_creds *c);

#endif
