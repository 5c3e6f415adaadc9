/* mta/init/modules.c -- kernel modules for process 1; see modules.h */
#include "mta/init/modules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mta/init/devices.h"
#include "mta/net/log.h"
#include "policy/modidx.h"

#define INDEX_MAX    (512 * 1024)
#define MODS_MAX     256
#define ALIASES_MAX  8192
#define SEEN_MAX     1024
#define MODALIAS_MAX 1024

enum mod_state { MOD_NEW = 0, MOD_LOADED, MOD_FAILED };

struct mod {
	const char *name;               /* into idx_text */
	size_t      nlen;
	uint16_t    dep[MODIDX_WORDS_MAX];
	size_t      ndep;
	enum mod_state state;
};

struct alias {
	const char *pat;
	size_t      plen;
	uint16_t    mod;
};

static struct {
	char         dir[256];
	struct mod   mod[MODS_MAX];
	size_t       nmod;
	struct alias alias[ALIASES_MAX];
	size_t       nalias;
	/* Devices whose modules are all tried: a hash of path and modalias,
	 * so that a device looked at once costs no matching again. */
	uint64_t     seen[SEEN_MAX];
	size_t       nseen;
} mx;

static char idx_text[INDEX_MAX + 1];

static int find_mod(const char *name, size_t len)
{
	for (size_t k = 0; k < mx.nmod; k++)
		if (mx.mod[k].nlen == len && memcmp(mx.mod[k].name, name, len) == 0)
			return (int)k;
	return -1;
}

/* The module lines first (dependencies may name later lines), then the
 * dependencies and aliases resolved to indexes. */
static void index_parse(size_t len)
{
	struct modidx_line ln;
	size_t pos = 0;
	int r;

	memset(&ln, 0, sizeof ln);
	for (int pass = 0; pass < 2; pass++) {
		pos = 0;
		ln.lineno = 0;
		while ((r = modidx_next(idx_text, len, &pos, &ln)) != 0) {
			if (r < 0) {
				if (pass == 0)
					log_warn("msg=\"modules.index line %zu: not a record (skipped)\"", ln.lineno);
				continue;
			}
			if (pass == 0 && ln.kind == MODIDX_MODULE && mx.nmod < MODS_MAX &&
			    find_mod(ln.word[0], ln.wlen[0]) < 0) {
				mx.mod[mx.nmod].name = ln.word[0];
				mx.mod[mx.nmod++].nlen = ln.wlen[0];
			} else if (pass == 1 && ln.kind == MODIDX_MODULE) {
				struct mod *m = &mx.mod[find_mod(ln.word[0], ln.wlen[0])];
				for (size_t k = 1; k < ln.nwords && m->ndep < MODIDX_WORDS_MAX; k++) {
					int d = find_mod(ln.word[k], ln.wlen[k]);
					if (d >= 0)
						m->dep[m->ndep++] = (uint16_t)d;
				}
			} else if (pass == 1 && ln.kind == MODIDX_ALIAS && mx.nalias < ALIASES_MAX) {
				int m = find_mod(ln.word[1], ln.wlen[1]);
				if (m >= 0)
					mx.alias[mx.nalias++] = (struct alias){ ln.word[0], ln.wlen[0], (uint16_t)m };
			}
		}
	}
}

int modules_open(const char *dir)
{
	char path[512];
	long len;

	snprintf(mx.dir, sizeof mx.dir, "%s", dir);
	snprintf(path, sizeof path, "%s/modules.index", dir);
	len = initdev_read_small(path, idx_text, sizeof idx_text);
	if (len < 0) {
		log_warn("msg=\"no module index: %s: %s\"", path, strerror(errno));
		return -1;
	}
	if ((size_t)len >= INDEX_MAX)
		log_warn("msg=\"%s is larger than %d bytes: the rest is ignored\"", path, INDEX_MAX);
	index_parse((size_t)len);
	return (int)mx.nmod;
}

/* finit_module() one file, no dependencies; with the module parameter
 * async_probe when async (the kernel probes its devices in the
 * background and does not wait for any background work before it
 * returns).  0 or -1. */
static int load_file(size_t k, int async)
{
	struct mod *m = &mx.mod[k];
	char path[512];
	int fd, err = 0;
	long r;

	if (m->state != MOD_NEW)
		return m->state == MOD_LOADED ? 0 : -1;
	snprintf(path, sizeof path, "%s/%.*s.ko", mx.dir, (int)m->nlen, m->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -1 : syscall(SYS_finit_module, fd, async ? "async_probe" : "", 0);
	if (r != 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (r == 0 || err == EEXIST) {
		m->state = MOD_LOADED;
		return 0;
	}
	m->state = MOD_FAILED;
	/* ENODEV: a CPU feature or the hardware it needs is absent. */
	log_event("module-skipped", "name=%.*s error=\"%s\"", (int)m->nlen, m->name, strerror(err));
	return -1;
}

/* The module's dependencies, then itself.  A dependency that fails is
 * logged and passed over: softdeps are listed too (crc32c-intel beside
 * crc32c_generic for ext4), and for a hard one the kernel refuses the
 * module itself, which is then the failure that counts. */
static int load_index(size_t k, int async)
{
	for (size_t d = 0; d < mx.mod[k].ndep; d++)
		(void)load_file(mx.mod[k].dep[d], async);
	return load_file(k, async);
}

int modules_load(const char *name)
{
	int k = find_mod(name, strlen(name));

	if (k < 0) {
		log_warn("msg=\"module %s is not in the image\"", name);
		return -1;
	}
	return load_index((size_t)k, 1);
}

static uint64_t fnv(const char *s, size_t n, uint64_t h)
{
	for (size_t k = 0; k < n; k++)
		h = (h ^ (unsigned char)s[k]) * 0x100000001b3ull;
	return h;
}

static int seen(uint64_t h)
{
	for (size_t k = 0; k < mx.nseen; k++)
		if (mx.seen[k] == h)
			return 1;
	return 0;
}

/* The most preferred module not yet tried that the device at path (a
 * sysfs directory) wants, as an index, or -1; a device that wants nothing
 * more is remembered as seen. */
static int device_wants(const char *path, int best)
{
	char file[600], alias[MODALIAS_MAX];
	long n;
	uint64_t h;
	int want = -1;

	snprintf(file, sizeof file, "%s/modalias", path);
	if ((n = initdev_read_small(file, alias, sizeof alias)) <= 0)
		return best;
	while (n > 0 && alias[n - 1] == '\n')
		n--;
	h = fnv(alias, (size_t)n, fnv(path, strlen(path), 0xcbf29ce484222325ull));
	if (seen(h))
		return best;
	for (size_t k = 0; k < mx.nalias; k++) {
		const struct alias *a = &mx.alias[k];
		if (mx.mod[a->mod].state == MOD_NEW && (want < 0 || a->mod < want) &&
		    modidx_match(a->pat, a->plen, alias, (size_t)n))
			want = a->mod;
	}
	if (want < 0 && mx.nseen < SEEN_MAX)
		mx.seen[mx.nseen++] = h;
	return want >= 0 && (best < 0 || want < best) ? want : best;
}

/* device_wants() over every entry of dir. */
static int dir_wants(const char *dir, int best)
{
	struct dirent *e;
	char path[512];
	DIR *d = opendir(dir);

	if (d == NULL)
		return best;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		best = device_wants(path, best);
	}
	closedir(d);
	return best;
}

static int wanted(void)
{
	struct dirent *e;
	char path[512];
	int best = -1;
	DIR *d = opendir("/sys/bus");

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "/sys/bus/%s/devices", e->d_name);
			best = dir_wants(path, best);
		}
		closedir(d);
	}
	return dir_wants("/sys/class/input", best);
}

static size_t settle(int async)
{
	char names[1024];
	size_t loaded = 0, o = 0;
	int k;

	names[0] = '\0';
	for (size_t round = 0; round < MODS_MAX && (k = wanted()) >= 0; round++) {
		if (load_index((size_t)k, async) != 0)
			continue;
		loaded++;
		int n = snprintf(names + o, sizeof names - o, "%s%.*s", o ? "," : "",
		                 (int)mx.mod[k].nlen, mx.mod[k].name);
		if (n > 0 && (size_t)n < sizeof names - o)
			o += (size_t)n;
	}
	if (loaded > 0)
		log_event("modules", "loaded=%zu names=%s", loaded, names);
	return loaded;
}

size_t modules_settle(void)
{
	return settle(1);
}

void modules_sync(void)
{
	int k = find_mod(MODULES_BARRIER, strlen(MODULES_BARRIER));

	/* A module loaded without async_probe: the kernel waits for all the
	 * background probing before finit_module() returns.  Then the devices
	 * those probes found get their modules the same way. */
	if (k >= 0 && mx.mod[k].state == MOD_NEW)
		(void)load_index((size_t)k, 0);
	(void)settle(0);
}
