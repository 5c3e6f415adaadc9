/*
 * policy/bootslot.h -- the boot loaders' state of the appliance's two boot
 * slots (A and B, docs/appliance.md "Upgrades"), as bytes: pure, the
 * caller reads and writes the boot partition (mta/init/slots.c in the
 * appliance, image/upgrade.sh offline).
 *
 * UEFI, systemd-boot: an entry /loader/entries/moat-X.conf is a good slot;
 * moat-X+LEFT[-DONE].conf is a slot on trial with LEFT tries left (boot
 * counting: the loader renames it before each try, and sorts an entry
 * with none left after the others, so the next boot falls back).
 *
 * BIOS, syslinux: its boot-once command lives in the ADV, the auxiliary
 * data vector at the end of ldlinux.sys (two copies of 512 bytes: magic,
 * checksum, tagged data, magic; little-endian), which ldlinux reads and
 * clears before it boots the label named there once.
 */
#ifndef MOAT_POLICY_BOOTSLOT_H
#define MOAT_POLICY_BOOTSLOT_H

#include <stddef.h>

#define BOOTSLOT_ADV_LEN   1024   /* both copies */
#define BOOTSLOT_LABEL_MAX 63

/* A systemd-boot entry file name of ours. */
struct bootslot_entry {
	char     slot;        /* 'a' or 'b' */
	int      counted;     /* +LEFT[-DONE] present: on trial */
	unsigned left, done;
};

/* Read name[0..len) ("moat-b+1-0.conf").  Returns 0, or -1 when it is not
 * one of ours (another prefix, a slot other than a or b, a malformed or
 * over-long counter). */
int bootslot_entry_parse(const char *name, size_t len, struct bootslot_entry *out);

/* The other slot: 'b' for 'a', 'a' for anything else. */
char bootslot_other(char slot);

/* Write an ADV holding once (the label to boot once, printable ASCII
 * without spaces, at most BOOTSLOT_LABEL_MAX bytes; NULL or "" for none)
 * into adv (BOOTSLOT_ADV_LEN bytes).  Returns 0, or -1 when once is not
 * such a label. */
int bootslot_adv_write(unsigned char *adv, const char *once);

/* The boot-once label in adv[0..len) (its first valid copy) into once.
 * Returns 1 (set), 0 (not set), -1 (no valid copy: bad magic or sum, a
 * label that is not printable or does not fit cap). */
int bootslot_adv_read(const unsigned char *adv, size_t len, char *once, size_t cap);

#endif
