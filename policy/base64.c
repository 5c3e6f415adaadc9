/* policy/base64.c -- RFC 4648 base64; see base64.h */
#include "base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for an alphabet character, 64 for '=', 65 for space, 66 otherwise. */
static unsigned char class_of(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return (unsigned char)(ch - 'A');
	if (ch >= 'a' && ch <= 'z')
		return (unsigned char)(ch - 'a' + 26);
	if (ch >= '0' && ch <= '9')
		return (unsigned char)(ch - '0' + 52);
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	if (ch == '=')
		return 64;
	if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
		return 65;
	return 66;
}

int base64_decode(const char *text, size_t len, int skip_space, unsigned char *out, size_t cap,
                  size_t *outlen)
{
	unsigned long acc = 0;
	size_t n = 0, group = 0, pad = 0;

	for (size_t k = 0; k < len; k++) {
		unsigned char v = class_of((unsigned char)text[k]);

		if (v == 65 && skip_space)
			continue;
		if (v > 64)
			return -1;
		if (v == 64) {
			/* '=' only in the last two places of a group. */
			if (group < 2)
				return -1;
			pad++;
			group++;
		} else {
			if (pad > 0)
				return -1; /* data after padding */
			acc = (acc << 6) | v;
			group++;
		}
		if (group < 4)
			continue;
		/* A whole group: 4 characters, pad of them '='. */
		size_t bytes = 3 - pad;
		if (pad > 0) {
			acc <<= 6 * pad;
			/* The bits below the last byte must be zero. */
			if ((acc & ((1ul << (8 * pad)) - 1)) != 0)
				return -1;
		}
		if (n + bytes > cap)
			return -1;
		out[n++] = (unsigned char)(acc >> 16);
		if (bytes > 1)
			out[n++] = (unsigned char)(acc >> 8);
		if (bytes > 2)
			out[n++] = (unsigned char)acc;
		acc = 0;
		group = 0;
		if (pad > 0) {
			/* Nothing but (skipped) space may follow the padding. */
			for (k++; k < len; k++)
				if (!(skip_space && class_of((unsigned char)text[k]) == 65))
					return -1;
			break;
		}
	}
	if (group != 0)
		return -1;
	*outlen = n;
	return 0;
}

size_t base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	size_t need = BASE64_ENCODED_LEN(len), o = 0;

	for (size_t k = 0; k < len; k += 3) {
		unsigned long acc = (unsigned long)in[k] << 16;
		size_t left = len - k;
		char q[4];

		if (left > 1)
			acc |= (unsigned long)in[k + 1] << 8;
		if (left > 2)
			acc |= in[k + 2];
		q[0] = alphabet[(acc >> 18) & 63];
		q[1] = alphabet[(acc >> 12) & 63];
		q[2] = left > 1 ? alphabet[(acc >> 6) & 63] : '=';
		q[3] = left > 2 ? alphabet[acc & 63] : '=';
		for (size_t i = 0; i < 4; i++, o++)
			if (o + 1 < cap)
				out[o] = q[i];
	}
	if (cap > 0)
		out[o < cap ? o : cap - 1] = '\0';
	return need;
}
