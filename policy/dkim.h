/*
 * policy/dkim.h -- DKIM signing (RFC 6376), the pure half: canonicalisation,
 * header selection, the DKIM-Signature header, the From: domain and the key
 * it chooses.  No I/O, no allocation, no clock: the caller passes the time
 * and owns every buffer; the private key and the RSA operation live
 * elsewhere (mta/ops/dkim_key.h), so this code never sees a key.
 *
 * What is signed (docs/dkim.md): a=rsa-sha256, c=relaxed/relaxed, no l=
 * (a signature that covers only part of the body lets anyone append), t=
 * set, the body hash over the whole message as queued, and the header
 * fields of a `dkim-sign ... headers` list (by default From, To, Cc,
 * Subject, Date, Message-ID, Reply-To, In-Reply-To, References,
 * MIME-Version, Content-Type, Content-Transfer-Encoding, with From listed
 * twice).  A name listed k times in the configured list is put into h=
 * once for each field of that name the message has, plus k - 1 more:
 * those extra entries select no field (RFC 6376 5.4.2, the null string),
 * so a verifier fails the signature when a field of that name is added
 * later ("over-signing": a second From: cannot be slipped in).  A name
 * listed once and absent from the message is left out of h=.
 *
 * Line ends.  The stored message reaches the next hop through
 * stuff_feed() (policy/data.h), which sends every bare CR and bare LF as
 * CRLF; the SMTP server refuses messages with either, so stored mail has
 * none, but the canonicaliser treats CRLF, a bare CR and a bare LF alike
 * as one line end, so that what is signed is what is delivered in every
 * case.  dkimpy reads a bare LF the same way.
 *
 * Where it is used (docs/dkim.md "Where it happens"): at acceptance, in
 * the smtp role, through mta/smtp/dkim_signer.h.  While DATA streams into
 * the queue, the session feeds the same unstuffed bytes to a struct
 * dkim_msg, which keeps the header block in a bounded buffer the session
 * owns and hashes the body incrementally (no copy of the body, no
 * allocation).  At the end of DATA, before the 250: dkim_msg_end() gives
 * the body hash; dkim_from_domain() and dkim_key_find() choose the key
 * (none: the message goes unsigned); dkim_signed_by() skips a message
 * that already carries our signature for that domain (a loop-back);
 * dkim_prepare() builds the DKIM-Signature header (without b=) and the
 * SHA-256 to sign; the key role, which alone holds the private keys,
 * signs that hash (asynchronously); the smtp role checks the signature
 * with the key's public half, and dkim_header_finish() makes the header,
 * which is stored with the message and delivered first, ahead of the
 * header block it signs.  The delivery role does the same for the DSNs it
 * makes, the key chosen by its key role (dkim_line_find() names keys on
 * that link).
 */
#ifndef MOAT_POLICY_DKIM_H
#define MOAT_POLICY_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl_hash.h>

#include "policy/conf.h"

#define DKIM_HASH_LEN     32    /* SHA-256 */
#define DKIM_SIG_MAX      512   /* an RSA-4096 signature, bytes */
#define DKIM_HNAME_MAX    CONF_DKIM_HNAME_MAX  /* one header field name */
#define DKIM_HNAMES_MAX   32    /* names in a configured headers list */
#define DKIM_HVALUE_MAX   1024  /* the h= value of one signature */
#define DKIM_SELECTED_MAX 256   /* header fields one signature covers */
/* The DKIM-Signature header without its b= value: d= (253) and s= (63)
 * at their longest, h= at DKIM_HVALUE_MAX folded, and the fixed tags. */
#define DKIM_SIGHEAD_MAX  1800
/* The whole header dkim_header_finish() writes: the above, an RSA-4096
 * signature in base64 (684) folded, and the final CRLF. */
#define DKIM_SIGHDR_MAX   2600

/* The default headers list (RFC 6376 5.4.1's "SHOULD" set as issue 15
 * chose it), From twice. */
#define DKIM_DEFAULT_HEADERS "from:from:to:cc:subject:date:message-id:reply-to:" \
	"in-reply-to:references:mime-version:content-type:content-transfer-encoding"

/* ---- the body: relaxed canonicalisation, hashed as it streams --------- */

/*
 * The body hasher (RFC 6376 3.4.4, "relaxed"): whitespace (SP, HTAB) at
 * the end of each line is dropped, every other run of it becomes one SP,
 * empty lines at the end of the body are dropped, a body that does not end
 * with a line end gets one, and an empty body hashes as the empty string.
 * The state holds what the next bytes decide: a line end not yet hashed
 * (it may belong to trailing empty lines), a whitespace run not yet hashed
 * (it may end its line), a CR whose LF may follow.  Feeding any split of
 * the same bytes gives the same hash.  All fields are internal.
 */
struct dkim_body {
	br_sha256_context sha;
	uint64_t      crlfs;     /* line ends seen, not yet hashed */
	uint64_t      hashed;    /* canonical bytes hashed so far */
	unsigned char wsp;       /* a whitespace run seen since the last content byte */
	unsigned char cr;        /* the last byte was a CR */
	unsigned char out[256];  /* canonical bytes waiting for the hash */
	size_t        outlen;
};

void dkim_body_init(struct dkim_body *b);
/* Feed p[0..len) of the body (any split; len 0 is fine). */
void dkim_body_feed(struct dkim_body *b, const void *p, size_t len);
/* The body hash (bh=).  b must be initialised again before reuse. */
void dkim_body_end(struct dkim_body *b, unsigned char bh[DKIM_HASH_LEN]);

/* ---- the message: header block kept, body hashed ---------------------- */

/*
 * The whole message as queued (header, empty line, body; unstuffed, as
 * policy/data.h writes it), fed in any split.  The header block -- every
 * byte before the empty line that ends it, line ends included -- is
 * copied into hdr (the caller's, cap bytes, which must outlive m); the
 * body goes to the body hasher.  A message without an empty line is all
 * header and has an empty body; one starting with a line end has no
 * header.  A header block longer than cap is DKIM_MSG_HDR_BIG: the body
 * is still hashed, but such a message cannot be signed.
 */
#define DKIM_MSG_HDR_BIG 0x1u

struct dkim_msg {
	char            *hdr;     /* the caller's buffer */
	size_t           cap;
	size_t           hlen;    /* header bytes kept in hdr */
	unsigned         flags;   /* DKIM_MSG_* */
	int              st;      /* internal */
	struct dkim_body body;
};

void dkim_msg_init(struct dkim_msg *m, char *hdr, size_t cap);
void dkim_msg_feed(struct dkim_msg *m, const void *p, size_t len);
/* The end of the message: bh= into bh.  Returns 0, or -1 when the header
 * block did not fit (DKIM_MSG_HDR_BIG; bh is still written). */
int dkim_msg_end(struct dkim_msg *m, unsigned char bh[DKIM_HASH_LEN]);

/* ---- header fields ---------------------------------------------------- */

/* One field of a header block: its bytes from its name to the end of its
 * last line, line end included. */
struct dkim_field {
	size_t off;       /* where it starts in the block */
	size_t len;       /* its length, continuation lines and line ends included */
	size_t namelen;   /* its name, before any WSP and the colon; 0 when the
	                     first line has no colon or the name holds a byte
	                     outside %d33-126 (such a field is never signed) */
};

/*
 * The field at hdr[*pos]: fills *f and moves *pos past it; returns 1, or
 * 0 at the end of the block.  Never fails: any bytes split into fields (a
 * line starting with SP or HTAB continues the field before it, or starts a
 * nameless one at the top of the block).
 */
int dkim_field_next(const char *hdr, size_t len, size_t *pos, struct dkim_field *f);

/*
 * The relaxed canonical form of one field (RFC 6376 3.4.2): the name in
 * lower case, the colon, the value unfolded with every WSP run made one SP
 * and none at its start or end, then CRLF.  field[0..len) is the field as
 * dkim_field_next() found it; namelen its name length (not 0).  Writes
 * into out (cap bytes, NUL-terminated when it fits) and returns the length
 * it needs, like snprintf; at most len + 2 (+1 for the NUL).
 */
size_t dkim_header_relaxed(const char *field, size_t len, size_t namelen, char *out, size_t cap);

/* ---- tag lists: an existing DKIM-Signature header ----------------------- */

/* One tag=value of a tag list (RFC 6376 3.2); value has its surrounding
 * FWS removed but may hold FWS inside (b=, h=). */
struct dkim_tag {
	const char *name;
	size_t      namelen;
	const char *value;
	size_t      valuelen;
};

/*
 * The tag at s[*pos] (s a field value, line ends inside it allowed as
 * FWS): returns 1 and moves *pos past it and its ';', 0 at the end, -1
 * when malformed (a name that is not ALPHA *(ALPHA / DIGIT / "_"), no '=',
 * a byte not allowed in a value).  Outputs point into s.
 */
int dkim_tag_next(const char *s, size_t len, size_t *pos, struct dkim_tag *t);

/*
 * The d= of one DKIM-Signature field (field[0..len) as dkim_field_next()
 * found it): lower case, without a trailing dot, into d (DKIM_DOMAIN_MAX
 * + 1 bytes).  Returns 0, or -1 when the field is not a DKIM-Signature,
 * its tag list is malformed, a tag is repeated, or d= is missing or empty.
 */
#define DKIM_DOMAIN_MAX 253
int dkim_sig_domain(const char *field, size_t len, size_t namelen, char *d);

/* Does the header block carry a well-formed DKIM-Signature with d=domain
 * (compared without case)?  1 or 0.  Whether it verifies is not asked: a
 * loop-back of our own mail is recognised by its d= alone. */
int dkim_signed_by(const char *hdr, size_t len, const char *domain);

/* ---- choosing the key ------------------------------------------------- */

/*
 * The domain of the one address in the one From: field (RFC 5322 3.6.2:
 * a mailbox, "Name <local@domain>" or "local@domain", with comments and
 * quoted strings), lower case, parsed by addr_parse_path() (UTF-8
 * allowed), into domain (ADDR_DOMAIN_MAX + 1 bytes).  Returns 0, or -1
 * with *why: no From, more than one From field, more than one address or a
 * group (DMARC, RFC 7489 6.6.1, refuses those too), a malformed address,
 * an address literal.
 */
int dkim_from_domain(const char *hdr, size_t len, char *domain, const char **why);

/* The dkim-sign line whose DOMAIN matches domain[0..len): an exact name
 * first, else the longest "*.NAME" that covers it (NAME itself or a
 * subdomain); NULL when none does. */
const struct conf_dkim *dkim_key_find(const struct conf *c, const char *domain, size_t len);

/* A dkim-sign line's DOMAIN as configured ("NAME" or "*.NAME"), as the
 * key role's messages name a key (mta/net/keymsg.h): into out (cap bytes,
 * NUL-terminated when it fits); returns the length it needs. */
size_t dkim_line_domain(const struct conf_dkim *d, char *out, size_t cap);

/* The dkim-sign line whose DOMAIN as configured is domain[0..dlen)
 * (compared without case) and whose selector is selector[0..slen); NULL
 * when none is. */
const struct conf_dkim *dkim_line_find(const struct conf *c, const char *domain, size_t dlen,
                                       const char *selector, size_t slen);

/*
 * Check a headers list "H1:H2:..." (as the config gives it) and write it
 * in lower case into out (cap bytes, NUL-terminated).  Returns 0, or -1
 * with *why: an empty name, a byte outside %d33-126 or a colon in a name,
 * a name longer than DKIM_HNAME_MAX, more than DKIM_HNAMES_MAX names, no
 * "from" (RFC 6376 5.4: From must be signed), or no room in out.
 */
int dkim_hlist_check(const char *list, size_t len, char *out, size_t cap, const char **why);

/* ---- the signature ---------------------------------------------------- */

/* Are domain (d=, no trailing dot) and selector (s=) DNS names, and does
 * SELECTOR._domainkey.DOMAIN fit in 253 bytes?  0, or -1 with *why. */
int dkim_names_check(const char *domain, const char *selector, const char **why);

/* What to sign with. */
struct dkim_spec {
	const char *domain;    /* d=: the dkim-sign line's DOMAIN without "*." */
	const char *selector;  /* s= */
	const char *headers;   /* the headers list, lower case (dkim_hlist_check());
	                          NULL or "": DKIM_DEFAULT_HEADERS */
	uint64_t    time;      /* t=, seconds since the epoch */
};

/* The header without its b= value, and the hash the key must sign. */
struct dkim_pending {
	char          head[DKIM_SIGHEAD_MAX]; /* "DKIM-Signature: v=1; ...\r\n\tb=" */
	size_t        len;
	unsigned char hash[DKIM_HASH_LEN];    /* SHA-256 of the data to sign */
};

/*
 * Build the DKIM-Signature header for a message with header block
 * hdr[0..hlen) and body hash bh, folded at 78 columns, ending in "b=", and
 * the SHA-256 of the data to sign (RFC 6376 3.7: the selected fields in h=
 * order, relaxed, then this header relaxed, without its final CRLF).  The
 * key signs out->hash with RSASSA-PKCS1-v1_5 and SHA-256.  Returns 0, or
 * -1 with *why: a bad spec (domain, selector or headers list), an h= over
 * DKIM_HVALUE_MAX or more than DKIM_SELECTED_MAX fields.
 */
int dkim_prepare(const char *hdr, size_t hlen, const unsigned char bh[DKIM_HASH_LEN],
                 const struct dkim_spec *spec, struct dkim_pending *out, const char **why);

/*
 * The data dkim_prepare() hashes, written out (for tests and for reading):
 * into out (cap bytes, NUL-terminated when it fits); returns the length it
 * needs, like snprintf, or 0 when dkim_prepare() would fail.
 */
size_t dkim_signed_data(const char *hdr, size_t hlen, const unsigned char bh[DKIM_HASH_LEN],
                        const struct dkim_spec *spec, char *out, size_t cap);

/*
 * The finished header: p->head, the signature sig[0..siglen) in base64
 * folded at 78 columns, CRLF.  Into out (cap bytes, NUL-terminated when it
 * fits); returns the length it needs, like snprintf (DKIM_SIGHDR_MAX
 * always suffices for siglen <= DKIM_SIG_MAX).
 */
size_t dkim_header_finish(const struct dkim_pending *p, const unsigned char *sig, size_t siglen,
                          char *out, size_t cap);

/*
 * The DNS record to publish for a public key (spki[0..len), the DER
 * SubjectPublicKeyInfo, policy/spki.h): one zone-file line
 *   SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=BASE64" ...
 * with the text split into strings of at most 255 bytes (RFC 1035), and a
 * newline.  Into out (cap bytes, NUL-terminated when it fits); returns the
 * length it needs, like snprintf.
 */
size_t dkim_dns_record(const char *selector, const char *domain, const unsigned char *spki,
                       size_t len, char *out, size_t cap);

#endif
