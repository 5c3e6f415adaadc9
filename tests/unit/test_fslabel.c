/* tests/unit/test_fslabel.c -- policy/fslabel.c: labels of FAT12/16, FAT32
 * and ISO 9660 volumes laid out as mkfs.vfat and genisoimage write them
 * (the Python image tests use the real tools), cut at every length, with
 * bad signatures; and which labels are a seed's. */
#include <stdlib.h>

#include "t.h"
#include "policy/fslabel.h"

static unsigned char img[FSLABEL_READ];

static void fat(int fat32, const char *label)
{
	memset(img, 0, sizeof img);
	size_t base = fat32 ? 64 : 36;
	img[base + 2] = 0x29;
	memset(img + base + 7, ' ', 11);
	memcpy(img + base + 7, label, strlen(label));
	memcpy(img + base + 18, fat32 ? "FAT32   " : "FAT12   ", 8);
	img[510] = 0x55;
	img[511] = 0xaa;
}

static void iso(const char *label)
{
	memset(img, 0, sizeof img);
	img[32768] = 1;
	memcpy(img + 32769, "CD001", 5);
	img[32774] = 1;
	memset(img + 32768 + 40, ' ', 32);
	memcpy(img + 32768 + 40, label, strlen(label));
}

static void test_fat(void)
{
	char l[FSLABEL_MAX + 1];

	fat(0, "cidata");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_VFAT && strcmp(l, "cidata") == 0);
	fat(1, "CONFIG-2");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_VFAT && strcmp(l, "CONFIG-2") == 0);
	CHECK(fslabel_read(img, 511, l, sizeof l) == FSLABEL_NONE && l[0] == '\0');
	img[511] = 0;
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
	fat(1, "");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
	fat(0, "A\x01");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
	/* An ext4 or NTFS boot sector ends 55 AA too, without "FAT". */
	fat(0, "cidata");
	memcpy(img + 54, "NTFS", 4);
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
	/* A small buffer cuts the label. */
	fat(0, "cidata");
	CHECK(fslabel_read(img, sizeof img, l, 4) == FSLABEL_VFAT && strcmp(l, "cid") == 0);
}

static void test_iso(void)
{
	char l[FSLABEL_MAX + 1];

	iso("cidata");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_ISO9660 && strcmp(l, "cidata") == 0);
	iso("0123456789abcdef0123456789abcdef");
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_ISO9660 && strlen(l) == 32);
	for (size_t cut = 0; cut < 32768 + 72; cut += 97)
		CHECKF(fslabel_read(img, cut, l, sizeof l) == FSLABEL_NONE, "cut %zu", cut);
	iso("cidata");
	img[32774] = 2;
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
	iso("cidata");
	img[32768] = 2;   /* a supplementary (Joliet) descriptor is not the primary */
	CHECK(fslabel_read(img, sizeof img, l, sizeof l) == FSLABEL_NONE);
}

static void test_seed_names(void)
{
	CHECK(fslabel_is_seed("cidata") && fslabel_is_seed("CIDATA") && fslabel_is_seed("CiData"));
	CHECK(fslabel_is_seed("config-2") && fslabel_is_seed("CONFIG-2"));
	CHECK(!fslabel_is_seed("cidata2") && !fslabel_is_seed("cidat") && !fslabel_is_seed("") &&
	      !fslabel_is_seed("MOAT-BOOT") && !fslabel_is_seed("config"));
}

int main(void)
{
	RUN(test_fat);
	RUN(test_iso);
	RUN(test_seed_names);
	return t_main_end();
}
