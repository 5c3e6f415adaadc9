/*
 * policy/fslabel.h -- the volume label of an ISO 9660 or FAT file system,
 * read from its first bytes: how the appliance finds a config seed (a
 * NoCloud volume labelled "cidata", an OpenStack config drive labelled
 * "config-2") among its disks without mounting each.  Pure: the caller
 * reads the device.  The bytes are whatever a disk holds: every read is
 * bounds-checked.
 */
#ifndef MOAT_POLICY_FSLABEL_H
#define MOAT_POLICY_FSLABEL_H

#include <stddef.h>

#define FSLABEL_READ  (32768 + 2048)  /* bytes to read: up to the ISO primary volume descriptor */
#define FSLABEL_MAX   32

enum fslabel_type { FSLABEL_NONE = 0, FSLABEL_ISO9660, FSLABEL_VFAT };

/*
 * The file system at the start of buf[0..len) and its label into label
 * (cap bytes, NUL-terminated, trailing spaces removed): ISO 9660 (a
 * primary volume descriptor "CD001" at 32 KiB: its volume identifier) or
 * FAT12/16/32 (a boot sector ending 55 AA with an extended boot
 * signature: its volume label).  Returns the type, FSLABEL_NONE when it
 * is neither (or the label is empty).
 */
enum fslabel_type fslabel_read(const unsigned char *buf, size_t len, char *label, size_t cap);

/* Is label a config seed's: "cidata" or "config-2", in any case? */
int fslabel_is_seed(const char *label);

#endif
