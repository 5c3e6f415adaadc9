/*
 * policy/modidx.h -- the appliance's kernel module index: which modules the
 * initramfs holds, what each needs loaded first, and which devices each
 * drives.  image/build.sh writes it (/lib/modules/modules.index) from
 * modprobe --show-depends and the kernel's modules.alias; moat's init
 * (mta/init/modules.c) reads it and loads a module only when a device it
 * drives is present, or when init needs it by name (ext4, vfat, isofs).
 *
 * The format, one record a line, words separated by one or more spaces:
 *
 *     # comment
 *     module NAME [DEP ...]     NAME.ko is in the same directory; DEPs are
 *                               loaded first, in the order given (they are
 *                               module lines of their own, earlier or later)
 *     alias PATTERN NAME        a device whose modalias (sysfs "modalias")
 *                               matches PATTERN is driven by NAME
 *
 * The order of the module lines is the order of preference: when several
 * devices want a module, the earlier line is loaded first (image/modules
 * lists the virtio disk and network before the rest).
 *
 * Pure: the caller reads the file.  Words point into the caller's buffer.
 */
#ifndef MOAT_POLICY_MODIDX_H
#define MOAT_POLICY_MODIDX_H

#include <stddef.h>

#define MODIDX_WORDS_MAX 24  /* words after the keyword: NAME and up to 23 deps */
#define MODIDX_NAME_MAX  55  /* a module name (the kernel allows 55 bytes) */

enum modidx_kind {
	MODIDX_MODULE = 1,   /* word[0] NAME, word[1..] its dependencies */
	MODIDX_ALIAS         /* word[0] PATTERN, word[1] NAME */
};

struct modidx_line {
	enum modidx_kind kind;
	const char *word[MODIDX_WORDS_MAX];  /* after the keyword */
	size_t      wlen[MODIDX_WORDS_MAX];
	size_t      nwords;
	size_t      lineno;                  /* 1-based, for messages */
};

/*
 * The next record of buf[0..len) from *pos (0 at first; blank lines and
 * comments skipped), moving *pos past it.  Returns 1 with *out filled, 0
 * at the end, -1 for a line that is not a record (unknown keyword, a
 * module line without a name or with more than MODIDX_WORDS_MAX - 1
 * dependencies, an alias without exactly a pattern and a name, a name
 * longer than MODIDX_NAME_MAX or holding a '/'); *pos then is past that
 * line, so the caller may skip it and go on.
 */
int modidx_next(const char *buf, size_t len, size_t *pos, struct modidx_line *out);

/*
 * Does alias (a device's modalias) match pattern, as kmod matches them
 * (fnmatch without flags): '*' any run of bytes, '?' one byte, "[...]" one
 * of a set ("[!...]" or "[^...]" none of it, "a-z" ranges), everything
 * else itself.  A '[' without its ']' is an ordinary byte.  Returns 1 or 0.
 * The work is bounded by plen * alen.
 */
int modidx_match(const char *pattern, size_t plen, const char *alias, size_t alen);

#endif
