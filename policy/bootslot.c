/* policy/bootslot.c -- the boot loaders' slot state as bytes; see bootslot.h */
#include "policy/bootslot.h"

#include <stdint.h>
#include <string.h>

#define ADV_SIZE      512
#define ADV_MAGIC1    0x5a2d2fa5u  /* head */
#define ADV_MAGIC2    0xa3041767u  /* what the checksum and the data words add up to */
#define ADV_MAGIC3    0xdd28bf64u  /* tail */
#define ADV_END       0
#define ADV_BOOTONCE  1

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void le32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* A decimal of 1..3 digits at s[*k], stopping at the first non-digit. */
static int small_number(const char *s, size_t len, size_t *k, unsigned *v)
{
	size_t start = *k;

	*v = 0;
	while (*k < len && s[*k] >= '0' && s[*k] <= '9' && *k - start < 3)
		*v = *v * 10 + (unsigned)(s[(*k)++] - '0');
	return *k > start && (*k == len || s[*k] < '0' || s[*k] > '9') ? 0 : -1;
}

int bootslot_entry_parse(const char *name, size_t len, struct bootslot_entry *out)
{
	size_t k = 6;

	memset(out, 0, sizeof *out);
	if (len < 11 || memcmp(name, "moat-", 5) != 0 || (name[5] != 'a' && name[5] != 'b') ||
	    memcmp(name + len - 5, ".conf", 5) != 0)
		return -1;
	out->slot = name[5];
	len -= 5;   /* the rest without ".conf" */
	if (k == len)
		return 0;
	if (name[k++] != '+' || small_number(name, len, &k, &out->left) != 0)
		return -1;
	out->counted = 1;
	if (k < len && (name[k++] != '-' || small_number(name, len, &k, &out->done) != 0))
		return -1;
	return k == len ? 0 : -1;
}

char bootslot_other(char slot)
{
	return slot == 'a' ? 'b' : 'a';
}

int bootslot_adv_write(unsigned char *adv, const char *once)
{
	size_t n = once != NULL ? strlen(once) : 0;
	uint32_t sum = ADV_MAGIC2;

	if (n > BOOTSLOT_LABEL_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)once[i] < 33 || (unsigned char)once[i] > 126)
			return -1;
	memset(adv, 0, ADV_SIZE);
	if (n > 0) {
		adv[8] = ADV_BOOTONCE;
		adv[9] = (unsigned char)n;
		memcpy(adv + 10, once, n);
	}
	le32_put(adv, ADV_MAGIC1);
	for (size_t i = 8; i < ADV_SIZE - 4; i += 4)
		sum -= le32(adv + i);
	le32_put(adv + 4, sum);
	le32_put(adv + ADV_SIZE - 4, ADV_MAGIC3);
	memcpy(adv + ADV_SIZE, adv, ADV_SIZE);
	return 0;
}

/* One copy: 1/0 as bootslot_adv_read, -1 when it is not valid. */
static int read_copy(const unsigned char *a, char *once, size_t cap)
{
	uint32_t sum = ADV_MAGIC2;

	if (le32(a) != ADV_MAGIC1 || le32(a + ADV_SIZE - 4) != ADV_MAGIC3)
		return -1;
	for (size_t i = 4; i < ADV_SIZE - 4; i += 4)
		sum -= le32(a + i);
	if (sum != 0)
		return -1;
	/* Tagged data from offset 8 to the tail: tag, length, value. */
	for (size_t p = 8; p + 2 <= ADV_SIZE - 4 && a[p] != ADV_END;) {
		size_t n = a[p + 1];
		if (p + 2 + n > ADV_SIZE - 4)
			return -1;
		if (a[p] == ADV_BOOTONCE && n > 0) {
			if (cap == 0 || n > cap - 1)
				return -1;
			/* A label is a word of printable ASCII. */
			for (size_t i = 0; i < n; i++)
				if (a[p + 2 + i] < 33 || a[p + 2 + i] > 126)
					return -1;
			memcpy(once, a + p + 2, n);
			once[n] = '\0';
			return 1;
		}
		p += 2 + n;
	}
	return 0;
}

int bootslot_adv_read(const unsigned char *adv, size_t len, char *once, size_t cap)
{
	int r = -1;

	if (cap > 0)
		once[0] = '\0';
	for (size_t copy = 0; copy < 2 && r < 0; copy++)
		if (len >= (copy + 1) * ADV_SIZE)
			r = read_copy(adv + copy * ADV_SIZE, once, cap);
	return r;
}
