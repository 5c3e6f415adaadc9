/*
 * tests/fuzz/fuzz_keymsg.c -- the key role's messages (mta/net/keymsg.h), of
 * both links (TLS and DKIM), from arbitrary bytes.  The first byte picks the RSA modulus length the
 * decoder is told (0 = an EC key); the rest is one packet.  Invariants: a
 * packet that decodes points inside the input, within the caps, and
 * encodes back to exactly the same bytes; one that does not says why.
 * Every field a DKIM message carries lies inside the packet, within its
 * cap, of printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/keymsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* p[0..len) within the packet (or nothing at all). */
static int inside(const uint8_t *data, size_t size, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (len == 0)
		return 1;
	return b != NULL && b >= data + KEYMSG_HDR && b + len <= data + size;
}

static int printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t mods[] = { 0, 64, 128, 256, 384, 512, 58, 513 };
	static unsigned char out[KEYMSG_MAX];
	struct keymsg m;
	const char *why = NULL;
	size_t modlen;

	if (size < 1)
		return 0;
	modlen = mods[data[0] & 7];
	data++;
	size--;
	if (keymsg_decode(data, size, modlen, &m, &why) != 0) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (size > KEYMSG_MAX || m.len > KEYMSG_SIG_MAX || m.ok > 1)
		abort();
	if (!keymsg_is_dkim(m.type) && m.len > 0 &&
	    (m.data < data + KEYMSG_HDR || m.data + m.len != data + size))
		abort();
	if (!inside(data, size, m.data, m.len) || !inside(data, size, m.domain, m.domainlen) ||
	    !inside(data, size, m.selector, m.selectorlen) ||
	    !inside(data, size, m.headers, m.headerslen) || !inside(data, size, m.exp, m.explen))
		abort();
	if (m.domainlen > KEYMSG_DOMAIN_MAX || m.selectorlen > KEYMSG_SEL_MAX ||
	    m.headerslen > KEYMSG_HLIST_MAX || m.explen > KEYMSG_EXP_MAX ||
	    !printable(m.domain, m.domainlen) || !printable(m.selector, m.selectorlen) ||
	    !printable(m.headers, m.headerslen))
		abort();
	if (keymsg_encode(out, sizeof out, modlen, &m) != size || memcmp(out, data, size) != 0)
		abort();
	if (size > 0 && keymsg_encode(out, size - 1, modlen, &m) != 0)
		abort();
	return 0;
}
