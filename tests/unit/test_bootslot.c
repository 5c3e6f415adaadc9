/* tests/unit/test_bootslot.c -- policy/bootslot.c: systemd-boot entry names
 * with and without boot counters, and syslinux's ADV: the empty one byte
 * for byte as syslinux's installer writes it, a boot-once label as the
 * one a SeaBIOS boot under qemu obeyed (both seen while building this),
 * read back, and refused when a byte is off. */
#include <stdlib.h>

#include "t.h"
#include "policy/bootslot.h"

static void entry(const char *name, int ok, char slot, int counted, unsigned left, unsigned done)
{
	struct bootslot_entry e;
	int r = bootslot_entry_parse(name, strlen(name), &e);

	CHECKF(r == (ok ? 0 : -1), "%s: %d", name, r);
	if (ok)
		CHECKF(e.slot == slot && e.counted == counted && e.left == left && e.done == done,
		       "%s: %c %d %u %u", name, e.slot, e.counted, e.left, e.done);
}

static void test_entries(void)
{
	entry("moat-a.conf", 1, 'a', 0, 0, 0);
	entry("moat-b+1.conf", 1, 'b', 1, 1, 0);
	entry("moat-b+0-1.conf", 1, 'b', 1, 0, 1);
	entry("moat-a+3-12.conf", 1, 'a', 1, 3, 12);
	entry("moat-c.conf", 0, 0, 0, 0, 0);
	entry("moat-a", 0, 0, 0, 0, 0);
	entry("moat-ab.conf", 0, 0, 0, 0, 0);
	entry("moat-a+.conf", 0, 0, 0, 0, 0);
	entry("moat-a+1-.conf", 0, 0, 0, 0, 0);
	entry("moat-a+1-2-3.conf", 0, 0, 0, 0, 0);
	entry("moat-a+1234.conf", 0, 0, 0, 0, 0);
	entry("moat-a-1.conf", 0, 0, 0, 0, 0);
	entry("other-a.conf", 0, 0, 0, 0, 0);
	entry("moat.conf", 0, 0, 0, 0, 0);
	CHECK(bootslot_other('a') == 'b' && bootslot_other('b') == 'a' && bootslot_other(0) == 'a');
}

static void test_adv_empty(void)
{
	unsigned char adv[BOOTSLOT_ADV_LEN], want[512];
	char once[8];

	/* What `syslinux --install` leaves at the end of ldlinux.sys. */
	memset(want, 0, sizeof want);
	memcpy(want, "\xa5\x2f\x2d\x5a\x67\x17\x04\xa3", 8);
	memcpy(want + 508, "\x64\xbf\x28\xdd", 4);
	CHECK(bootslot_adv_write(adv, NULL) == 0);
	CHECK(memcmp(adv, want, 512) == 0 && memcmp(adv + 512, want, 512) == 0);
	CHECK(bootslot_adv_read(adv, sizeof adv, once, sizeof once) == 0 && once[0] == '\0');
	CHECK(bootslot_adv_write(adv, "") == 0 && memcmp(adv, want, 512) == 0);
}

static void test_adv_once(void)
{
	unsigned char adv[BOOTSLOT_ADV_LEN];
	char once[BOOTSLOT_LABEL_MAX + 1];

	CHECK(bootslot_adv_write(adv, "b") == 0);
	/* The bytes of the ADV a SeaBIOS boot took "b" once from. */
	CHECK(memcmp(adv, "\xa5\x2f\x2d\x5a\x66\x16\xa2\xa2\x01\x01\x62\x00", 12) == 0);
	CHECK(bootslot_adv_read(adv, sizeof adv, once, sizeof once) == 1 && strcmp(once, "b") == 0);
	CHECK(bootslot_adv_write(adv, "b-trial") == 0);
	CHECK(bootslot_adv_read(adv, sizeof adv, once, sizeof once) == 1 && strcmp(once, "b-trial") == 0);
	/* A label that does not fit the caller's buffer is not cut. */
	CHECK(bootslot_adv_read(adv, sizeof adv, once, 4) == -1);
	/* The first copy broken: the second is read; both broken: -1. */
	adv[20] ^= 1;
	CHECK(bootslot_adv_read(adv, sizeof adv, once, sizeof once) == 1 && strcmp(once, "b-trial") == 0);
	adv[512 + 20] ^= 1;
	CHECK(bootslot_adv_read(adv, sizeof adv, once, sizeof once) == -1);
	CHECK(bootslot_adv_read(adv, 100, once, sizeof once) == -1);
	char big[BOOTSLOT_LABEL_MAX + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK(bootslot_adv_write(adv, big) == -1);
}

int main(void)
{
	RUN(test_entries);
	RUN(test_adv_empty);
	RUN(test_adv_once);
	return t_main_end();
}
