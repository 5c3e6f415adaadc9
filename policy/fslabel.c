/* policy/fslabel.c -- ISO 9660 and FAT volume labels; see fslabel.h */
#include "policy/fslabel.h"

#include <string.h>

/* n bytes at p, trailing spaces (and NULs) removed, into label.  Returns
 * the length kept (0 when the label is empty or holds a control byte). */
static size_t copy_label(const unsigned char *p, size_t n, char *label, size_t cap)
{
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == 0))
		n--;
	if (cap == 0)
		return 0;
	if (n > cap - 1)
		n = cap - 1;
	for (size_t k = 0; k < n; k++)
		if (p[k] < 0x20 || p[k] >= 0x7f)
			n = 0;
	memcpy(label, p, n);
	label[n] = '\0';
	return n;
}

enum fslabel_type fslabel_read(const unsigned char *buf, size_t len, char *label, size_t cap)
{
	if (cap > 0)
		label[0] = '\0';
	/* ISO 9660: volume descriptor 1 (primary) at sector 16 of 2048. */
	if (len >= 32768 + 72 && buf[32768] == 1 && memcmp(buf + 32769, "CD001", 5) == 0 &&
	    buf[32774] == 1)
		return copy_label(buf + 32768 + 40, 32, label, cap) > 0 ? FSLABEL_ISO9660 : FSLABEL_NONE;
	if (len < 512 || buf[510] != 0x55 || buf[511] != 0xaa)
		return FSLABEL_NONE;
	/* FAT32: the extended boot signature 0x29 at 66, label at 71,
	 * "FAT32   " at 82; FAT12/16: 0x29 at 38, label at 43, "FAT" at 54.
	 * The type string is informative only, but it tells the two layouts
	 * apart (and an NTFS or ext boot sector from FAT). */
	if (buf[66] == 0x29 && memcmp(buf + 82, "FAT32", 5) == 0)
		return copy_label(buf + 71, 11, label, cap) > 0 ? FSLABEL_VFAT : FSLABEL_NONE;
	if (buf[38] == 0x29 && memcmp(buf + 54, "FAT", 3) == 0)
		return copy_label(buf + 43, 11, label, cap) > 0 ? FSLABEL_VFAT : FSLABEL_NONE;
	return FSLABEL_NONE;
}

static int same_nocase(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		if (x != *b)
			return 0;
	}
	return *a == *b;
}

int fslabel_is_seed(const char *label)
{
	return same_nocase(label, "cidata") || same_nocase(label, "config-2");
}
