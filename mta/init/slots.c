/* mta/init/slots.c -- the appliance's boot slots; see slots.h */
#include "mta/init/slots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/init/devices.h"
#include "mta/init/modules.h"
#include "mta/net/log.h"
#include "policy/bootslot.h"

#define ENTRIES  SLOTS_ESP "/loader/entries"
#define SYSLINUX SLOTS_ESP "/syslinux/syslinux.cfg"
#define LDLINUX  SLOTS_ESP "/syslinux/ldlinux.sys"
#define CMDLINE_MAX 2048
#define COPY_MAX (256u * 1024 * 1024)

static int mounted;

int slots_mount(void (*between)(void))
{
	char dev[128];

	if (mounted)
		return 0;
	(void)modules_load("nls_cp437");
	(void)modules_load("nls_ascii");
	(void)modules_load("vfat");
	if (initdev_find_partition(SLOTS_PARTNAME, 5000, dev, sizeof dev, between) != 0)
		return -1;
	mkdir(SLOTS_ESP, 0700);
	if (mount(dev, SLOTS_ESP, "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME, "") != 0) {
		log_warn("msg=\"cannot mount the boot partition %s: %s\"", dev, strerror(errno));
		return -1;
	}
	mounted = 1;
	return 0;
}

void slots_umount(void)
{
	if (!mounted)
		return;
	sync();
	if (umount2(SLOTS_ESP, 0) != 0)
		log_warn("msg=\"cannot unmount " SLOTS_ESP ": %s\"", strerror(errno));
	mounted = 0;
}

/* text into path, through path.new, synced. */
static int replace_file(const char *path, const char *text, size_t len)
{
	char tmp[512];
	int fd;

	snprintf(tmp, sizeof tmp, "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		log_warn("msg=\"cannot write %s: %s\"", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		log_warn("msg=\"cannot replace %s: %s\"", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The kernel command line of slot s (without moat.slot and moat.trial). */
static int slot_cmdline(char s, char *out, size_t cap)
{
	char path[64];
	long n;

	snprintf(path, sizeof path, SLOTS_ESP "/moat/%c/cmdline", s);
	n = initdev_read_small(path, out, cap);
	if (n <= 0)
		return -1;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return 0;
}

/* One entry: the good one (moat-X.conf) or the trial (moat-X+1.conf). */
static int write_entry(char s, unsigned version, int trial)
{
	char cmd[CMDLINE_MAX], text[CMDLINE_MAX + 512], path[128];
	int n;

	if (slot_cmdline(s, cmd, sizeof cmd) != 0)
		return -1;
	n = snprintf(text, sizeof text,
	             "title    moat (slot %c)\nsort-key moat\nversion  %u\nlinux    /moat/%c/linux\n"
	             "initrd   /moat/%c/initrd\noptions  %s moat.slot=%c%s\n",
	             s, version, s, s, cmd, s, trial ? " moat.trial=1" : "");
	snprintf(path, sizeof path, ENTRIES "/moat-%c%s.conf", s, trial ? "+1" : "");
	return n > 0 && (size_t)n < sizeof text ? replace_file(path, text, (size_t)n) : -1;
}

/* syslinux.cfg: good is the default; trial (0: none) has its -trial label
 * for the boot-once. */
static int write_syslinux(char good, char trial)
{
	char cmd[CMDLINE_MAX], text[3 * CMDLINE_MAX];
	size_t o;
	int n;

	if (slot_cmdline(good, cmd, sizeof cmd) != 0)
		return -1;
	n = snprintf(text, sizeof text,
	             "# written by moat (mta/init/slots.c): slot %c is the default\n"
	             "SERIAL 0 115200\nDEFAULT %c\nPROMPT 0\nTIMEOUT 0\n"
	             "LABEL %c\n  LINUX /moat/%c/linux\n  INITRD /moat/%c/initrd\n  APPEND %s moat.slot=%c\n",
	             good, good, good, good, good, cmd, good);
	if (n < 0 || (size_t)n >= sizeof text)
		return -1;
	o = (size_t)n;
	if (trial != 0) {
		if (slot_cmdline(trial, cmd, sizeof cmd) != 0)
			return -1;
		n = snprintf(text + o, sizeof text - o,
		             "LABEL %c-trial\n  LINUX /moat/%c/linux\n  INITRD /moat/%c/initrd\n"
		             "  APPEND %s moat.slot=%c moat.trial=1\n", trial, trial, trial, cmd, trial);
		if (n < 0 || (size_t)n >= sizeof text - o)
			return -1;
		o += (size_t)n;
	}
	return replace_file(SYSLINUX, text, o);
}

/* syslinux's boot-once, read (into once) or written (once NULL: clear;
 * else set).  Returns 1/0 read as bootslot_adv_read, 0 written, -1. */
static int adv(const char *set, char *once, size_t cap)
{
	unsigned char buf[BOOTSLOT_ADV_LEN];
	struct stat st;
	int fd = open(LDLINUX, (once != NULL ? O_RDONLY : O_RDWR) | O_CLOEXEC), r = -1;

	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof buf)
		goto out;
	/* The ADV is the last two sectors of ldlinux.sys.  Written in place,
	 * the file keeps its clusters: the boot sector's list of them stays
	 * true. */
	if (once != NULL) {
		if (pread(fd, buf, sizeof buf, st.st_size - (off_t)sizeof buf) == (ssize_t)sizeof buf)
			r = bootslot_adv_read(buf, sizeof buf, once, cap);
	} else if (bootslot_adv_write(buf, set) == 0 &&
	           pwrite(fd, buf, sizeof buf, st.st_size - (off_t)sizeof buf) == (ssize_t)sizeof buf &&
	           fsync(fd) == 0) {
		r = 0;
	}
out:
	if (r < 0)
		log_warn("msg=\"syslinux's ADV in " LDLINUX ": %s\"", fd < 0 ? strerror(errno) : "unreadable");
	if (fd >= 0)
		close(fd);
	return r;
}

/* The entries of slot s: its version (the highest seen), whether a
 * counted (trial) one exists; removes them when rm.  Returns how many. */
static int entries_of(char s, unsigned *version, int *counted, int rm)
{
	struct dirent *e;
	DIR *d = opendir(ENTRIES);
	int n = 0;

	*counted = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		struct bootslot_entry be;
		char path[300], text[CMDLINE_MAX + 512];
		if (bootslot_entry_parse(e->d_name, strlen(e->d_name), &be) != 0 || be.slot != s)
			continue;
		snprintf(path, sizeof path, ENTRIES "/%s", e->d_name);
		const char *v = initdev_read_small(path, text, sizeof text) > 0 ? strstr(text, "\nversion") : NULL;
		unsigned ver = v != NULL ? (unsigned)strtoul(v + 8, NULL, 10) : 0;
		if (ver > *version)
			*version = ver;
		*counted |= be.counted;
		if (rm && unlink(path) != 0)
			log_warn("msg=\"cannot remove %s: %s\"", path, strerror(errno));
		n++;
	}
	closedir(d);
	return n;
}

int slots_after_boot(char slot)
{
	char other = bootslot_other(slot), once[BOOTSLOT_LABEL_MAX + 1], cfg[4 * CMDLINE_MAX];
	char label[16];
	unsigned version = 0;
	int counted = 0, armed, labelled;

	snprintf(label, sizeof label, "LABEL %c-trial", other);
	(void)entries_of(other, &version, &counted, 0);
	armed = adv(NULL, once, sizeof once) == 1;
	labelled = initdev_read_small(SYSLINUX, cfg, sizeof cfg) > 0 && strstr(cfg, label) != NULL;
	if (!counted && !armed && !labelled)
		return 0;
	/* The other slot's trial never got as far as a healthy server: what
	 * is left of it goes, and this slot stays the default of both. */
	if (counted)
		(void)entries_of(other, &version, &counted, 1);
	if (armed)
		(void)adv("", NULL, 0);
	if (write_syslinux(slot, 0) != 0)
		return -1;
	sync();
	log_event("upgrade", "result=rolled-back failed-slot=%c running=%c", other, slot);
	return 1;
}

int slots_bless(char slot)
{
	unsigned version = 0;
	int counted = 0;
	char once[BOOTSLOT_LABEL_MAX + 1];

	(void)entries_of(slot, &version, &counted, 1);
	if (write_entry(slot, version ? version : 1, 0) != 0 || write_syslinux(slot, 0) != 0)
		return -1;
	if (adv(NULL, once, sizeof once) == 1)
		(void)adv("", NULL, 0);
	sync();
	log_event("slot", "result=good slot=%c version=%u", slot, version ? version : 1);
	return 0;
}

/* Copy src to dst through dst.new, synced.  0 or -1 (logged). */
static int copy_in(const char *src, const char *dst)
{
	char tmp[300], buf[65536];
	ssize_t n;
	size_t total = 0;
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = -1;

	snprintf(tmp, sizeof tmp, "%s.new", dst);
	out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out >= 0) {
		while ((n = read(in, buf, sizeof buf)) > 0 && (total += (size_t)n) <= COPY_MAX &&
		       write(out, buf, (size_t)n) == n)
			;
		if (n == 0 && fsync(out) == 0)
			rc = 0;
		if (close(out) != 0)
			rc = -1;
	}
	if (in >= 0)
		close(in);
	if (rc == 0 && rename(tmp, dst) != 0)
		rc = -1;
	if (rc != 0)
		log_warn("msg=\"cannot copy %s to %s: %s\"", src, dst, strerror(errno));
	return rc;
}

/* Do two files hold the same bytes? */
static int same_bytes(const char *a, const char *b)
{
	char x[65536], y[65536];
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC), same = 0;

	if (fa >= 0 && fb >= 0) {
		for (;;) {
			ssize_t na = read(fa, x, sizeof x), nb = na > 0 ? read(fb, y, (size_t)na) : read(fb, y, 1);
			if (na != nb || na < 0)
				break;
			if (na == 0) {
				same = 1;
				break;
			}
			if (memcmp(x, y, (size_t)na) != 0)
				break;
		}
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* Is slot s (on /boot) the image under dir (its slot a)? */
static int holds(char s, const char *dir)
{
	char a[300], b[300];
	int same = 1;

	for (int k = 0; k < 2 && same; k++) {
		const char *f = k ? "initrd" : "linux";
		snprintf(a, sizeof a, "%s/moat/a/%s", dir, f);
		snprintf(b, sizeof b, SLOTS_ESP "/moat/%c/%s", s, f);
		same = same_bytes(a, b);
	}
	return same;
}

enum slots_install_result slots_install(char current, const char *dir)
{
	char other = bootslot_other(current), src[300], dst[300];
	unsigned version = 0, v2 = 0;
	int counted = 0, good_other;

	if (holds(current, dir))
		return SLOTS_SAME;
	good_other = entries_of(other, &v2, &counted, 0) > 0 && !counted;
	if (holds(other, dir) && !good_other)
		return SLOTS_FAILED_BEFORE;
	(void)entries_of(current, &version, &counted, 0);
	if (v2 > version)
		version = v2;
	snprintf(dst, sizeof dst, SLOTS_ESP "/moat/%c", other);
	mkdir(dst, 0755);
	for (int k = 0; k < 3; k++) {
		const char *f = k == 0 ? "linux" : k == 1 ? "initrd" : "cmdline";
		snprintf(src, sizeof src, "%s/moat/a/%s", dir, f);
		snprintf(dst, sizeof dst, SLOTS_ESP "/moat/%c/%s", other, f);
		if (copy_in(src, dst) != 0)
			return SLOTS_ERROR;
	}
	/* The loaders last: until here nothing boots the new files. */
	(void)entries_of(other, &v2, &counted, 1);
	if (write_entry(other, version + 1, 1) != 0 || write_syslinux(current, other) != 0) {
		(void)entries_of(other, &v2, &counted, 1);
		return SLOTS_ERROR;
	}
	{
		char label[16];
		snprintf(label, sizeof label, "%c-trial", other);
		if (adv(label, NULL, 0) != 0)
			return SLOTS_ERROR;
	}
	sync();
	log_event("upgrade", "result=installed slot=%c version=%u running=%c", other, version + 1, current);
	return SLOTS_INSTALLED;
}
