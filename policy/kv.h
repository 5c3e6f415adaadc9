/*
 * policy/kv.h -- the KEY=VALUE lists the kernel hands to the appliance's
 * init: the kernel command line (/proc/cmdline) and sysfs uevent files
 * (/sys/class/block/vda2/uevent: "PARTNAME=moat-data").  Pure: the caller
 * reads the file and passes its bytes.
 *
 * Command line words are separated by spaces, tabs or line ends; double
 * quotes group spaces into a word, as the kernel's own next_arg() does:
 *   moat.x="a b"   -> key moat.x, value  a b
 *   "moat.x=a b"   -> key moat.x, value  a b
 *   quiet          -> key quiet, no value
 * A uevent file has one KEY=VALUE per line and no quoting.
 * Keys and values point into the caller's buffer (no copy, no NUL).
 */
#ifndef MOAT_POLICY_KV_H
#define MOAT_POLICY_KV_H

#include <stddef.h>

struct kv {
	const char *key;
	size_t      keylen;
	const char *val;     /* NULL when the word has no '=' */
	size_t      vallen;
};

/* The next word of buf[*pos..len) into *out, moving *pos past it.
 * Returns 1, or 0 when no word is left. */
int kv_cmdline_next(const char *buf, size_t len, size_t *pos, struct kv *out);

/* The next non-empty line of a uevent file, split at its first '='.
 * Returns 1, or 0 when no line is left. */
int kv_uevent_next(const char *buf, size_t len, size_t *pos, struct kv *out);

/* Does the item's key equal the NUL-terminated key? */
int kv_is(const struct kv *kv, const char *key);

#endif
