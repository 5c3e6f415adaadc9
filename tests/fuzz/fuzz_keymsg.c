/*
 * tests/fuzz/fuzz_keymsg.c -- the key role's messages (mta/net/keyrole.h) from
 * arbitrary bytes.  The first byte picks the RSA modulus length the
 * decoder is told (0 = an EC key); the rest is one packet.  Invariants: a
 * packet that decodes points inside the input, within the caps, and
 * encodes back to exactly the same bytes; one that does not says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/keymsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	if (m.len > 0 && (m.data < data + KEYMSG_HDR || m.data + m.len != data + size))
		abort();
	if (keymsg_encode(out, sizeof out, modlen, &m) != size || memcmp(out, data, size) != 0)
		abort();
	if (size > 0 && keymsg_encode(out, size - 1, modlen, &m) != 0)
		abort();
	return 0;
}
