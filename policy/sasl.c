/* policy/sasl.c -- SASL PLAIN and LOGIN messages; see sasl.h */
#include <string.h>

#include "base64.h"
#include "sasl.h"

enum sasl_result sasl_response(const char *line, size_t len, int initial, unsigned char *out,
                               size_t cap, size_t *outlen)
{
	if (len == 1 && line[0] == '*')
		return SASL_ABORT;
	if (initial && len == 1 && line[0] == '=') {
		*outlen = 0;
		return SASL_OK;
	}
	/* Longer than the longest message could be: say so, not "bad base64". */
	if (len > BASE64_ENCODED_LEN(SASL_MSG_MAX) || len / 4 * 3 > cap + 2)
		return SASL_ETOOLONG;
	if (base64_decode(line, len, 0, out, cap, outlen) != 0)
		return SASL_EBASE64;
	return SASL_OK;
}

static enum sasl_result field(const unsigned char *p, size_t n, char *dst, size_t *dstlen)
{
	if (n > SASL_FIELD_MAX)
		return SASL_ETOOLONG;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*dstlen = n;
	return SASL_OK;
}

enum sasl_result sasl_plain(const unsigned char *msg, size_t len, struct sasl_creds *c)
{
	const unsigned char *nul1, *nul2;
	enum sasl_result r;

	memset(c, 0, sizeof *c);
	nul1 = memchr(msg, 0, len);
	if (nul1 == NULL)
		return SASL_EFORMAT;
	nul2 = memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL || memchr(nul2 + 1, 0, len - (size_t)(nul2 + 1 - msg)) != NULL)
		return SASL_EFORMAT;
	if (nul2 == nul1 + 1 || nul2 + 1 == msg + len)
		return SASL_EFORMAT; /* empty authcid or password */
	if ((r = field(msg, (size_t)(nul1 - msg), c->authzid, &c->authzidlen)) != SASL_OK ||
	    (r = field(nul1 + 1, (size_t)(nul2 - nul1 - 1), c->authcid, &c->authcidlen)) != SASL_OK ||
	    (r = field(nul2 + 1, (size_t)(msg + len - nul2 - 1), c->passwd, &c->passwdlen)) != SASL_OK) {
		sasl_wipe(c);
		return r;
	}
	return SASL_OK;
}

enum sasl_result sasl_login_field(const unsigned char *msg, size_t len, char *dst, size_t *dstlen)
{
	if (memchr(msg, 0, len) != NULL)
		return SASL_EFORMAT;
	return field(msg, len, dst, dstlen);
}

void sasl_wipe(struct sasl_creds *c)
{
	volatile unsigned char *p = (volatile unsigned char *)c;

	for (size_t k = 0; k < sizeof *c; k++)
		p[k] = 0;
}
