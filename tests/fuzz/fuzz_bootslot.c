/*
 * tests/fuzz/fuzz_bootslot.c -- policy/bootslot.c on arbitrary bytes: as an
 * ADV (a label read is NUL-terminated and what was in the data, a valid
 * one written back reads the same) and as an entry file name (a parsed
 * name names slot a or b).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/bootslot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char once[BOOTSLOT_LABEL_MAX + 1], again[BOOTSLOT_LABEL_MAX + 1];
	unsigned char adv[BOOTSLOT_ADV_LEN];
	struct bootslot_entry e;

	int r = bootslot_adv_read(data, size, once, sizeof once);
	if (r == 1) {
		if (strlen(once) == 0 || strlen(once) > BOOTSLOT_LABEL_MAX)
			abort();
		if (memchr(once, 0, strlen(once)) == NULL && bootslot_adv_write(adv, once) == 0 &&
		    (bootslot_adv_read(adv, sizeof adv, again, sizeof again) != 1 || strcmp(once, again) != 0))
			abort();
	}
	if (bootslot_entry_parse((const char *)data, size, &e) == 0 && e.slot != 'a' && e.slot != 'b')
		abort();
	return 0;
}
