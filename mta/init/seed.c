/* mta/init/seed.c -- the config seed; see seed.h */
#include "mta/init/seed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/init/child.h"
#include "mta/init/devices.h"
#include "mta/init/modules.h"
#include "mta/net/log.h"
#include "policy/fslabel.h"

#define CONF_MAX    (1024 * 1024)
#define NAMES_MAX   32
#define NAME_LEN    64
#define FILE_MAX    (16 * 1024 * 1024)
#define STAGE       ".seed"

static struct {
	int  mounted;
	char dev[64];
	char label[FSLABEL_MAX + 1];
} sd;

static char conf_text[CONF_MAX + 1];
static char other_text[CONF_MAX + 1];

/* The first bytes of /dev/name: a seed's label?  1 with type set. */
static int is_seed(const char *name, enum fslabel_type *type, char *label, size_t cap)
{
	static unsigned char buf[FSLABEL_READ];
	char path[128];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof path, "/dev/%.100s", name);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;   /* a CD-ROM drive without a disc: ENOMEDIUM */
	while (got < (ssize_t)sizeof buf && (n = read(fd, buf + got, sizeof buf - (size_t)got)) > 0)
		got += n;
	close(fd);
	*type = fslabel_read(buf, (size_t)got, label, cap);
	return *type != FSLABEL_NONE && fslabel_is_seed(label);
}

int seed_mount(void (*pump)(void))
{
	struct dirent **list = NULL;
	enum fslabel_type type = FSLABEL_NONE;
	int n = scandir("/sys/class/block", &list, NULL, alphasort), found = 0;

	for (int i = 0; i < n; i++) {
		const char *nm = list[i]->d_name;
		if (!found && nm[0] != '.' && strncmp(nm, "loop", 4) != 0 && strncmp(nm, "ram", 3) != 0 &&
		    strlen(nm) < sizeof sd.dev - 5 && is_seed(nm, &type, sd.label, sizeof sd.label)) {
			snprintf(sd.dev, sizeof sd.dev, "/dev/%.58s", nm);
			found = 1;
		}
		free(list[i]);
	}
	free(list);
	if (!found)
		return 0;
	if (type == FSLABEL_VFAT) {
		(void)modules_load("nls_cp437");
		(void)modules_load("nls_ascii");
		(void)modules_load("nls_utf8");
	}
	(void)modules_load(type == FSLABEL_VFAT ? "vfat" : "isofs");
	if (pump != NULL)
		pump();
	mkdir(SEED_DIR, 0755);
	if (mount(sd.dev, SEED_DIR, type == FSLABEL_VFAT ? "vfat" : "iso9660",
	          MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") != 0) {
		log_warn("msg=\"cannot mount the config seed %s (%s): %s\"", sd.dev, sd.label, strerror(errno));
		return 0;
	}
	sd.mounted = 1;
	log_event("seed", "device=%s label=%s type=%s", sd.dev, sd.label,
	          type == FSLABEL_VFAT ? "vfat" : "iso9660");
	return 1;
}

void seed_done(void)
{
	if (sd.mounted && umount2(SEED_DIR, 0) != 0)
		log_warn("msg=\"cannot unmount " SEED_DIR ": %s\"", strerror(errno));
	sd.mounted = 0;
}

/* The seed's config into conf_text; its path into which.  Length or -1. */
static long read_config(const char **which)
{
	static const char *const paths[] = { SEED_DIR "/moat.conf", SEED_DIR "/user-data",
	                                     SEED_DIR "/openstack/latest/user_data" };

	for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
		long n = initdev_read_small(paths[k], conf_text, sizeof conf_text);
		if (n < 0)
			continue;
		if (n > CONF_MAX) {
			log_warn("msg=\"%s is larger than 1 MiB: not a moat.conf\"", paths[k]);
			continue;
		}
		/* cloud-init's own formats are not ours. */
		if (k > 0 && (strncmp(conf_text, "#cloud-config", 13) == 0 || strncmp(conf_text, "#!", 2) == 0))
			continue;
		*which = paths[k];
		return n;
	}
	return -1;
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* The names NAME of "/data/NAME" in text that are files on the seed. */
static size_t seed_names(const char *text, char names[][NAME_LEN])
{
	size_t n = 0;
	const char *p = text;

	while ((p = strstr(p, "/data/")) != NULL && n < NAMES_MAX) {
		const char *s = p + 6, *e = s;
		char path[NAME_LEN + 16];
		struct stat st;

		while (name_char(*e))
			e++;
		p = e;
		if (e == s || (size_t)(e - s) >= NAME_LEN || *s == '.' || (*e != '\0' && *e != ' ' &&
		    *e != '\t' && *e != '\n' && *e != '\r' && *e != '#'))
			continue;
		snprintf(path, sizeof path, SEED_DIR "/%.*s", (int)(e - s), s);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || strcmp(path, SEED_DIR "/moat.conf") == 0)
			continue;
		int dup = 0;
		for (size_t k = 0; k < n; k++)
			dup |= strlen(names[k]) == (size_t)(e - s) && memcmp(names[k], s, (size_t)(e - s)) == 0;
		if (!dup)
			snprintf(names[n++], NAME_LEN, "%.*s", (int)(e - s), s);
	}
	return n;
}

/* Does file a hold exactly what file b holds?  (Both at most 1 MiB:
 * larger ones count as different, and are copied.) */
static int same_file(const char *a, const char *b)
{
	static char tmp[CONF_MAX + 1];
	long la = initdev_read_small(a, other_text, sizeof other_text);
	long lb = initdev_read_small(b, tmp, sizeof tmp);

	return la >= 0 && la <= CONF_MAX && lb == la && memcmp(other_text, tmp, (size_t)la) == 0;
}

/* Copy src to dst (created 0600 for the server's user).  0 or -1. */
static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	ssize_t n;
	size_t total = 0;
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;

	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		goto done;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		total += (size_t)n;
		if (total > FILE_MAX || write(out, buf, (size_t)n) != n)
			goto done;
	}
	if (n == 0 && fsync(out) == 0 && fchown(out, CHILD_SERVE_UID, CHILD_SERVE_UID) == 0)
		rc = 0;
done:
	if (out >= 0 && close(out) != 0)
		rc = -1;
	close(in);
	return rc;
}

static int write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 &&
	         fchown(fd, CHILD_SERVE_UID, CHILD_SERVE_UID) == 0;

	if (fd >= 0 && close(fd) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* The staging directory emptied and removed (it holds files only). */
static void stage_remove(const char *stage)
{
	struct dirent *e;
	char path[512];
	DIR *d = opendir(stage);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
				continue;
			snprintf(path, sizeof path, "%s/%s", stage, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(stage);
}

/* The config text with /data/NAME of each seed file pointing into the
 * staging directory, into other_text.  Its length. */
static size_t staged_text(const char *text, char names[][NAME_LEN], size_t nn)
{
	size_t o = 0;
	const char *p = text;

	while (*p != '\0' && o + 16 < CONF_MAX) {
		int hit = 0;
		if (strncmp(p, "/data/", 6) == 0)
			for (size_t k = 0; k < nn && !hit; k++) {
				size_t l = strlen(names[k]);
				if (strncmp(p + 6, names[k], l) == 0 && !name_char(p[6 + l]))
					hit = 1;
			}
		if (hit && o + 6 + sizeof STAGE < CONF_MAX) {
			memcpy(other_text + o, "/data/" STAGE "/", 6 + sizeof STAGE);
			o += 6 + sizeof STAGE;
			p += 6;
			continue;
		}
		other_text[o++] = *p++;
	}
	other_text[o] = '\0';
	return o;
}

static char reason[1024];

const char *seed_reason(void)
{
	return reason;
}

/* moat check on the staged copy; 0 when it passes, else reason is set,
 * naming the seed's config as which and the other files as on /data. */
static int check_staged(const char *stage, const char *which, void (*pump)(void))
{
	static char a0[] = "moat", a1[] = "check", a2[] = "-c";
	char conf[512], out[4096];
	char *argv[] = { a0, a1, a2, conf, NULL };
	int status;

	snprintf(conf, sizeof conf, "%s/moat.conf", stage);
	status = child_run(argv, CHILD_DROP | CHILD_STDERR, out, sizeof out, 20000, pump);
	if (status == 0)
		return 0;
	/* moat check says what is wrong on its last line; name the paths as
	 * the admin wrote them. */
	char *line = out, *nl;
	reason[0] = '\0';
	while ((nl = strchr(line, '\n')) != NULL && nl[1] != '\0')
		line = nl + 1;
	if (nl != NULL)
		*nl = '\0';
	size_t o = 0;
	for (const char *p = line; *p != '\0' && o + 1 < sizeof reason;) {
		if (strncmp(p, conf, strlen(conf)) == 0) {
			o += (size_t)snprintf(reason + o, sizeof reason - o, "%s", which);
			p += strlen(conf);
		} else if (strncmp(p, "/data/" STAGE "/", 6 + sizeof STAGE) == 0) {
			o += (size_t)snprintf(reason + o, sizeof reason - o, "/data/");
			p += 6 + sizeof STAGE;
		} else {
			reason[o++] = *p++;
		}
	}
	reason[o < sizeof reason ? o : sizeof reason - 1] = '\0';
	if (reason[0] == '\0')
		snprintf(reason, sizeof reason, "moat check exited %d", status);
	return -1;
}

enum seed_result seed_apply(const char *data_dir, void (*pump)(void))
{
	static char names[NAMES_MAX][NAME_LEN];
	char stage[256], src[512], dst[512], tmp[512];
	const char *which = NULL;
	long len;
	size_t nn, changed = 0;

	if (!sd.mounted)
		return SEED_NONE;
	if ((len = read_config(&which)) < 0) {
		log_event("seed", "device=%s result=none reason=\"no moat.conf on it\"", sd.dev);
		return SEED_NONE;
	}
	nn = seed_names(conf_text, names);
	snprintf(dst, sizeof dst, "%s/moat.conf", data_dir);
	changed += !same_file(which, dst);
	for (size_t k = 0; k < nn; k++) {
		snprintf(src, sizeof src, SEED_DIR "/%.63s", names[k]);
		snprintf(dst, sizeof dst, "%.200s/%.63s", data_dir, names[k]);
		changed += !same_file(src, dst);
	}
	if (changed == 0) {
		log_event("seed", "device=%s result=unchanged config=%s files=%zu", sd.dev, which, nn);
		return SEED_UNCHANGED;
	}
	snprintf(stage, sizeof stage, "%s/" STAGE, data_dir);
	stage_remove(stage);
	if (mkdir(stage, 0700) != 0 || chown(stage, CHILD_SERVE_UID, CHILD_SERVE_UID) != 0) {
		log_warn("msg=\"cannot make %s: %s\"", stage, strerror(errno));
		return SEED_REFUSED;
	}
	for (size_t k = 0; k < nn; k++) {
		snprintf(src, sizeof src, SEED_DIR "/%.63s", names[k]);
		snprintf(dst, sizeof dst, "%.200s/%.63s", stage, names[k]);
		if (copy_file(src, dst) != 0) {
			snprintf(reason, sizeof reason, "cannot copy %s: %s", src, strerror(errno));
			goto refused;
		}
	}
	size_t sl = staged_text(conf_text, names, nn);
	snprintf(dst, sizeof dst, "%s/moat.conf", stage);
	if (write_text(dst, other_text, sl) != 0 || check_staged(stage, which, pump) != 0)
		goto refused;
	/* Valid: the named files first, the config last, each renamed over
	 * the old one (a power cut leaves the old or the new, never half). */
	for (size_t k = 0; k < nn; k++) {
		snprintf(src, sizeof src, "%.200s/%.63s", stage, names[k]);
		snprintf(dst, sizeof dst, "%.200s/%.63s", data_dir, names[k]);
		if (rename(src, dst) != 0)
			log_warn("msg=\"cannot move %s: %s\"", dst, strerror(errno));
	}
	snprintf(tmp, sizeof tmp, "%s/moat.conf.seed", data_dir);
	snprintf(dst, sizeof dst, "%s/moat.conf", data_dir);
	if (write_text(tmp, conf_text, (size_t)len) != 0 || rename(tmp, dst) != 0) {
		snprintf(reason, sizeof reason, "cannot write %s: %s", dst, strerror(errno));
		goto refused;
	}
	stage_remove(stage);
	sync();
	log_event("seed", "device=%s result=applied config=%s files=%zu", sd.dev, which, nn);
	return SEED_APPLIED;

refused:
	stage_remove(stage);
	{
		char q[1100];
		log_event("seed", "device=%s result=refused reason=\"%s\"", sd.dev,
		          log_text(reason, strlen(reason), q, sizeof q));
	}
	return SEED_REFUSED;
}
