/*
 * tests/fuzz/fuzz_sasl.c -- base64 and SASL PLAIN/LOGIN on arbitrary
 * bytes.  Invariants: a decoded response re-encodes to the same text
 * (strict base64 has one encoding), PLAIN fields stay within their
 * limits and rebuild the message, nothing is read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/base64.h"
#include "policy/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char msg[SASL_MSG_MAX + 3], again[SASL_MSG_MAX + 3];
	static char enc[8192];
	struct sasl_creds c;
	size_t n = 0;
	const char *line = (const char *)data;
	enum sasl_result r = sasl_response(line, size, size > 0 && (data[0] & 1), msg, sizeof msg, &n);

	if (r == SASL_OK && !(size == 1 && data[0] == '=')) {
		if (n > sizeof msg)
			abort();
		if (base64_encode(msg, n, enc, sizeof enc) != size || memcmp(enc, line, size) != 0)
			abort();
	}
	if (r == SASL_OK && sasl_plain(msg, n, &c) == SASL_OK) {
		size_t k = 0;
		if (c.authzidlen > SASL_FIELD_MAX || c.authcidlen == 0 || c.authcidlen > SASL_FIELD_MAX ||
		    c.passwdlen == 0 || c.passwdlen > SASL_FIELD_MAX)
			abort();
		memcpy(again + k, c.authzid, c.authzidlen);
		k += c.authzidlen;
		again[k++] = 0;
		memcpy(again + k, c.authcid, c.authcidlen);
		k += c.authcidlen;
		again[k++] = 0;
		memcpy(again + k, c.passwd, c.passwdlen);
		k += c.passwdlen;
		if (k != n || memcmp(again, msg, n) != 0)
			abort();
	}
	if (r == SASL_OK && sasl_login_field(msg, n, c.authcid, &c.authcidlen) == SASL_OK &&
	    (c.authcidlen != n || memchr(c.authcid, 0, n) != NULL))
		abort();
	/* PEM-style decoding of the same bytes must not overrun either. */
	(void)base64_decode(line, size, 1, again, sizeof again, &n);
	return 0;
}
