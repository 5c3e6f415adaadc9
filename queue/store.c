/*
 * queue/store.c -- the queue on LMDB.  See queue.h for the contract and
 * FORMAT.md for the bytes.  This is the only file that includes <lmdb.h>.
 *
 * Why each LMDB setting is what it is:
 *
 *  - mdb_env_open flags: 0 for the writer, MDB_RDONLY for readers.
 *    Deliberately NOT set:
 *      MDB_NOSYNC, MDB_NOMETASYNC  -- the 250 reply promises the message
 *          survives a power cut; both trade away exactly that (the "D").
 *      MDB_WRITEMAP, MDB_MAPASYNC  -- a wild pointer could then scribble
 *          on the queue, and MAPASYNC gives up durability too.  WRITEMAP
 *          would also ftruncate data.mdb to the whole map size.
 *      MDB_NOMEMINIT -- pages written to disk must not carry leftover heap
 *          bytes (mail of earlier sessions, keys).
 *      MDB_NOLOCK    -- `moat queue list` reads while the server writes;
 *          LMDB's lock file is what makes that safe.
 *      MDB_NOTLS     -- one thread per process uses the queue.
 *      MDB_NOSUBDIR  -- the queue is a directory: data.mdb, lock.mdb and
 *          incoming/ side by side.
 *  - mode 0600 for data.mdb and lock.mdb, 0700 for the directories: mail
 *    is private to the queue's owner.
 *  - maxdbs: seven named databases, "meta", "env", "body", "usage",
 *    "sched" and "ext" (DSN parameters, queue/ext.h), and "sts" (MTA-STS
 *    policies, queue/sts.c), opened only when first used.
 *  - map size: the writer sets opt->map_size, the queue's hard upper bound
 *    (LMDB grows data.mdb as pages are written; the map is address space).
 *    A reader passes 0 and so maps what the file records, and on
 *    MDB_MAP_RESIZED (the writer was restarted with a bigger map) maps
 *    again and retries.
 *  - mdb_reader_check() at open and before each commit: a reader killed
 *    with SIGKILL leaves its slot in lock.mdb, which pins old pages and
 *    would make the map fill up.
 *  - Writes use MDB_RESERVE, so a body chunk goes from the draft (memory or
 *    spool file) straight into LMDB's page, and MDB_NOOVERWRITE, so an ID
 *    can never replace a message.  Not MDB_APPEND: IDs are assigned when a
 *    draft begins, and drafts commit in any order.
 *  - Reads copy out and end their transaction before calling back into the
 *    caller (queue_list, queue_body), so a slow consumer (a pager, a remote
 *    server) never holds a read transaction open: LMDB's "avoid
 *    long-lived transactions".  The read transaction is reset and renewed,
 *    not freed, between uses.
 *
 * Only one process writes: the writer holds a POSIX write lock (fcntl
 * F_SETLK) on DIR/writer.lock, so a second writer is refused at open
 * instead of deleting the first one's drafts.  POSIX locks, not flock()
 * or OFD locks, because they belong to the process and are not inherited
 * by fork(): a child the server forks after opening the queue must not
 * keep the queue locked after the server is gone.  The price is that a
 * process does not conflict with itself, so a second open for writing in
 * the same process is caught by writer_pid/writer_dev/writer_ino below
 * (LMDB forbids it anyway).  Never lock lock.mdb or data.mdb ourselves:
 * closing any descriptor of a file drops all of the process's fcntl locks
 * on it, LMDB's included.
 */
#include "queue/queue.h"
#include "queue/envelope.h"
#include "queue/ext.h"
#include "queue/store.h"
#include "queue/usage.h"
#include "policy/wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* A body chunk: the value size under the "body" database. */
#define BODY_CHUNK (64 * 1024)
_Static_assert(QUEUE_DRAFT_MEM % BODY_CHUNK == 0,
               "a spilled draft's file must hold whole chunks");

/* 2: the "usage" database; 3: the "sched" database (FORMAT.md).  Older
 * queues are upgraded by the writer at open. */
#define FORMAT_VERSION 3u
#define META_VERSION_KEY "version"

#define DRAFT_SPARE_MAX 32

struct queue {
	MDB_env *env;
	MDB_dbi db_meta, db_env, db_body, db_usage, db_sched;
	MDB_dbi db_ext;         /* "ext": DSN parameters (queue/ext.h) */
	int has_ext;            /* a reader of a queue no writer made it in: 0 */
	MDB_dbi db_sts;         /* "sts", once sts_open (store_sts_dbi) */
	int sts_open;
	MDB_txn *rtxn;          /* reset between reads, renewed for the next */
	int rdonly;
	int incoming_fd;        /* writer: incoming/; else -1 */
	int lock_fd;            /* writer: writer.lock, F_WRLCK held; else -1 */
	queue_id last_id;       /* the last ID handed out */
	unsigned char *chunk;   /* queue_body's copy buffer, BODY_CHUNK */
	struct queue_rcpt *rcpts; /* queue_list's recipients, rcpt_cap long */
	size_t rcpt_cap;
	size_t free_txnid;      /* queue_space: the transaction free_usable is of */
	uint64_t free_usable;   /* free pages in runs a chunk fits in */
	/* Memory buffers of freed drafts, for the next drafts: musl's malloc
	 * maps and unmaps buffers this size one by one, a cost per message
	 * that showed in make bench's profile.  At most DRAFT_SPARE_MAX of
	 * them, each at most QUEUE_DRAFT_MEM. */
	unsigned char *spare_mem[DRAFT_SPARE_MAX];
	size_t spare_cap[DRAFT_SPARE_MAX];
	size_t nspare;
};

struct queue_draft {
	struct queue *q;
	queue_id id;
	uint64_t size;          /* bytes written */
	unsigned char *mem;     /* bytes not yet in the spool file */
	size_t len, cap;        /* cap <= QUEUE_DRAFT_MEM */
	int fd;                 /* incoming/ID once spilled, else -1 */
	int err;                /* sticky QUEUE_* error */
	unsigned char *prefix;  /* queue_draft_prepend(): stored before the rest */
	size_t prefix_len;
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

/* An LMDB or errno code to the queue's error classes. */
static int map_rc(int rc)
{
	switch (rc) {
	case 0:             return QUEUE_OK;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case ENOSPC:
	case EDQUOT:        return QUEUE_EFULL;
	case MDB_NOTFOUND:  return QUEUE_ENOTFOUND;
	case MDB_CORRUPTED: return QUEUE_ECORRUPT;
	case EINVAL:
	case MDB_KEYEXIST:  return QUEUE_EINVAL;
	default:            return QUEUE_EIO;
	}
}

/* ---- IDs ---- */

void queue_id_format(queue_id id, char out[QUEUE_ID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++)
		out[i] = hex[(id >> (4 * (15 - i))) & 0xf];
	out[16] = '\0';
}

int queue_id_parse(const char *s, queue_id *id)
{
	queue_id v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')      d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
		else return -1;
		v = v << 4 | d;
	}
	if (s[16] != '\0')
		return -1;
	*id = v;
	return 0;
}

static queue_id now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (queue_id)ts.tv_sec * 1000000u + (queue_id)ts.tv_nsec / 1000u;
}

/* Strictly increasing: the clock, or one past the last if it stood still
 * or went back. */
static queue_id next_id(struct queue *q)
{
	queue_id t = now_us();
	q->last_id = t > q->last_id ? t : q->last_id + 1;
	return q->last_id;
}

const char *queue_strerror(int err)
{
	switch (err) {
	case QUEUE_OK:       return "ok";
	case QUEUE_EFULL:    return "queue full";
	case QUEUE_EIO:      return "queue I/O error";
	case QUEUE_ENOTFOUND: return "no such message";
	case QUEUE_EINVAL:   return "invalid argument or record";
	case QUEUE_ECORRUPT: return "corrupt queue record";
	default:             return "unknown queue error";
	}
}

/* ---- open and close ---- */

/* mkdir -p, each new level 0700. */
static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(path, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Delete leftover drafts: after a crash incoming/ holds only partial
 * messages that were never acknowledged. */
static int clean_incoming(int dfd, char *bad, size_t badcap)
{
	int fd = dup(dfd);
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		snprintf(bad, badcap, ".");
		return -1;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dfd, e->d_name, 0) != 0 && errno != ENOENT) {
			snprintf(bad, badcap, "%s", e->d_name);
			rc = -1;
			break;
		}
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

/* The writer of this process, if any (see the top of the file). */
static pid_t writer_pid;
static dev_t writer_dev;
static ino_t writer_ino;

static int writer_lock(struct queue *q, const char *dir, char *err, size_t errcap)
{
	struct flock fl;
	struct stat st;
	char path[4096];

	if ((size_t)snprintf(path, sizeof path, "%s/writer.lock", dir) >= sizeof path) {
		set_err(err, errcap, "queue %s: path too long", dir);
		return -1;
	}
	if (stat(path, &st) == 0 && writer_pid == getpid()
	    && st.st_dev == writer_dev && st.st_ino == writer_ino) {
		set_err(err, errcap, "queue %s: already open for writing in this process", dir);
		return -1;
	}
	q->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lock_fd < 0 || fstat(q->lock_fd, &st) != 0) {
		set_err(err, errcap, "queue %s: %s: %s", dir, path, strerror(errno));
		return -1;
	}
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(q->lock_fd, F_SETLK, &fl) != 0) {
		int e = errno;
		close(q->lock_fd);
		q->lock_fd = -1;
		set_err(err, errcap, "queue %s: %s", dir, e == EAGAIN || e == EACCES
		        ? "another process has it open for writing" : strerror(e));
		return -1;
	}
	writer_pid = getpid();
	writer_dev = st.st_dev;
	writer_ino = st.st_ino;
	return 0;
}

static const char *open_hint(int rc)
{
	switch (rc) {
	case ENOENT:  return " (no queue there yet: the server creates it)";
	case EACCES:
	case EPERM:   return " (run as the queue's owner)";
	case EROFS:   return " (read-only file system)";
	default:      return "";
	}
}

/* ---- usage counters ---- */

static int decode_at(const MDB_val *v, queue_id id, struct queue_envelope *env);

/* Add or take away one message of size bytes on the record under key. */
static int usage_add(struct queue *q, MDB_txn *txn, const char *key, size_t klen, int sign,
                     uint64_t size)
{
	MDB_val k = { klen, (void *)(uintptr_t)key }, v;
	struct usage u = { 0, 0 };
	unsigned char rec[USAGE_RECORD];
	int rc = mdb_get(txn, q->db_usage, &k, &v);

	if (rc == 0 && usage_decode(v.mv_data, v.mv_size, &u) != QUEUE_OK)
		return MDB_CORRUPTED;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (usage_apply(&u, sign, size) != QUEUE_OK || (u.messages == 0 && u.bytes != 0))
		return MDB_CORRUPTED;     /* the counters no longer match the queue */
	if (u.messages == 0 && key[0] != USAGE_TOTAL_KEY[0])
		return mdb_del(txn, q->db_usage, &k, NULL);   /* a client with nothing left */
	usage_encode(&u, rec);
	v.mv_size = sizeof rec;
	v.mv_data = rec;
	return mdb_put(txn, q->db_usage, &k, &v, 0);
}

/*
 * THE one place the usage counters change (FORMAT.md, "usage").  Charge
 * env's message to the queue's totals and to its client (sign +1), or take
 * it off them (sign -1), inside txn, the write transaction that adds or
 * removes the message's records.  queue_commit() calls it with +1 for each
 * message it stores.  Whatever removes a message (delivered, bounced,
 * deleted by the admin) must call it with -1 and the envelope as stored,
 * in the transaction that deletes the env record and body chunks, so the
 * counters stay the exact sum over the queue.  Returns 0 or an LMDB code
 * (MDB_CORRUPTED if a counter would go below zero).
 */
static int usage_charge(struct queue *q, MDB_txn *txn, const struct queue_envelope *env,
                        int sign)
{
	char key[USAGE_KEY_MAX];
	size_t klen = usage_key(env, key);
	int rc;

	if (klen == 0)
		return EINVAL;
	rc = usage_add(q, txn, USAGE_TOTAL_KEY, sizeof USAGE_TOTAL_KEY - 1, sign, env->size);
	return rc != 0 ? rc : usage_add(q, txn, key, klen, sign, env->size);
}

/* Version 1 had no counters: charge every queued message once. */
static int usage_recount(struct queue *q, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_envelope env;
		env.rcpts = NULL;
		if (k.mv_size != 8 || decode_at(&v, wire_be64(k.mv_data), &env) != QUEUE_OK) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = usage_charge(q, txn, &env, +1)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sched_rebuild(struct queue *q, MDB_txn *txn);

/*
 * The previous moat knows nothing of "ext" (FORMAT.md): a message it
 * removed leaves its record behind.  Remove those at open: a walk of
 * "ext" alone (messages with DSN parameters, a few) and a lookup in
 * "env" each.  A record left there would otherwise lie around for ever,
 * though never misread (IDs are never reused).
 */
static int ext_orphans(struct queue *q, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v, ev;
	int rc;

	if ((rc = mdb_cursor_open(txn, q->db_ext, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		int found = mdb_get(txn, q->db_env, &k, &ev);

		if (found == MDB_NOTFOUND)
			rc = mdb_cursor_del(c, 0);
		else
			rc = found;
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Open the named databases and check the format version; the writer
 * creates them (version FORMAT_VERSION) or upgrades an older queue:
 * version 1 gets the usage counters and the schedule, version 2 the
 * schedule. */
static int open_dbs(struct queue *q, const char *dir, char *err, size_t errcap)
{
	MDB_txn *txn;
	MDB_val k = { sizeof META_VERSION_KEY - 1, (void *)(uintptr_t)META_VERSION_KEY };
	MDB_val v;
	unsigned create = q->rdonly ? 0 : MDB_CREATE;
	unsigned long long version = 0;   /* 0: a new queue */
	int rc;

	rc = mdb_txn_begin(q->env, NULL, q->rdonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0) {
		set_err(err, errcap, "queue %s: %s", dir, mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_dbi_open(txn, "meta", create, &q->db_meta)) != 0
	    || (rc = mdb_dbi_open(txn, "env", create, &q->db_env)) != 0
	    || (rc = mdb_dbi_open(txn, "body", create, &q->db_body)) != 0)
		goto fail;
	rc = mdb_get(txn, q->db_meta, &k, &v);
	if (rc == 0)
		version = v.mv_size == 4 ? wire_be32(v.mv_data) : ~0ull;
	else if (rc != MDB_NOTFOUND || q->rdonly)
		goto fail;
	if (version != FORMAT_VERSION && !(!q->rdonly && version < FORMAT_VERSION)) {
		set_err(err, errcap, "queue %s: on-disk format version %llu, this moat reads %u%s",
		        dir, version, FORMAT_VERSION,
		        version >= 1 && version < FORMAT_VERSION
		        ? " (start moat serve once to upgrade it)" : "");
		mdb_txn_abort(txn);
		return -1;
	}
	if ((rc = mdb_dbi_open(txn, "usage", create, &q->db_usage)) != 0
	    || (rc = mdb_dbi_open(txn, "sched", create, &q->db_sched)) != 0)
		goto fail;
	/* "ext" came after version 3 without changing it: a queue may lack
	 * it, which a reader takes for "no DSN parameters anywhere". */
	rc = mdb_dbi_open(txn, "ext", create, &q->db_ext);
	if (rc != 0 && !(rc == MDB_NOTFOUND && q->rdonly))
		goto fail;
	q->has_ext = rc == 0;
	if (q->has_ext && !q->rdonly && (rc = ext_orphans(q, txn)) != 0)
		goto fail;
	if (version != FORMAT_VERSION) {
		unsigned char ver[4];
		if (version == 1 && (rc = usage_recount(q, txn)) != 0)
			goto fail;
		if (version >= 1 && (rc = sched_rebuild(q, txn)) != 0)
			goto fail;
		wire_put_be32(ver, FORMAT_VERSION);
		v.mv_size = sizeof ver;
		v.mv_data = ver;
		if ((rc = mdb_put(txn, q->db_meta, &k, &v, 0)) != 0)
			goto fail;
	}
	if (!q->rdonly) {
		/* IDs continue after the highest one stored, whatever the clock. */
		MDB_cursor *c;
		MDB_val ck, cv;
		if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0)
			goto fail;
		rc = mdb_cursor_get(c, &ck, &cv, MDB_LAST);
		mdb_cursor_close(c);
		if (rc == 0 && ck.mv_size == 8)
			q->last_id = wire_be64(ck.mv_data);
		else if (rc != MDB_NOTFOUND && rc != 0)
			goto fail;
	}
	/* Committing, even a read-only transaction, keeps the DB handles. */
	if ((rc = mdb_txn_commit(txn)) != 0) {
		set_err(err, errcap, "queue %s: %s", dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
fail:
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		set_err(err, errcap, "queue %s: not a moat queue (databases missing)", dir);
	else
		set_err(err, errcap, "queue %s: %s", dir, mdb_strerror(rc));
	return -1;
}

struct queue *queue_open(const char *dir, const struct queue_options *opt,
                         char *err, size_t errcap)
{
	struct queue *q;
	char inc[4096];
	int rc;

	if (dir == NULL || opt == NULL) {
		set_err(err, errcap, "queue: no directory given");
		return NULL;
	}
	if ((q = calloc(1, sizeof *q)) == NULL) {
		set_err(err, errcap, "queue %s: %s", dir, strerror(errno));
		return NULL;
	}
	q->rdonly = (opt->flags & QUEUE_RDONLY) != 0;
	q->incoming_fd = -1;
	q->lock_fd = -1;

	if (!q->rdonly) {
		char bad[256];
		if (opt->map_size == 0) {
			set_err(err, errcap, "queue %s: map size must not be 0", dir);
			goto fail;
		}
		if ((size_t)snprintf(inc, sizeof inc, "%s/incoming", dir) >= sizeof inc) {
			set_err(err, errcap, "queue %s: path too long", dir);
			goto fail;
		}
		if (mkdir_p(dir) != 0 || (mkdir(inc, 0700) != 0 && errno != EEXIST)) {
			set_err(err, errcap, "queue %s: cannot create: %s%s", dir,
			        strerror(errno), open_hint(errno));
			goto fail;
		}
		q->incoming_fd = open(inc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (q->incoming_fd < 0) {
			set_err(err, errcap, "queue %s: %s: %s%s", dir, inc,
			        strerror(errno), open_hint(errno));
			goto fail;
		}
		if (writer_lock(q, dir, err, errcap) != 0)
			goto fail;
		if (clean_incoming(q->incoming_fd, bad, sizeof bad) != 0) {
			set_err(err, errcap, "queue %s: cannot remove incoming/%s: %s",
			        dir, bad, strerror(errno));
			goto fail;
		}
	}

	if ((rc = mdb_env_create(&q->env)) != 0
	    || (rc = mdb_env_set_maxdbs(q->env, 7)) != 0
	    || (!q->rdonly && (rc = mdb_env_set_mapsize(q->env, (size_t)opt->map_size)) != 0)) {
		set_err(err, errcap, "queue %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	rc = mdb_env_open(q->env, dir, q->rdonly ? MDB_RDONLY : 0, 0600);
	if (rc != 0) {
		set_err(err, errcap, "queue %s: %s%s", dir, mdb_strerror(rc), open_hint(rc));
		goto fail;
	}
	if (!q->rdonly) {
		int dead;
		mdb_reader_check(q->env, &dead);
	}
	if (open_dbs(q, dir, err, errcap) != 0)
		goto fail;
	return q;
fail:
	queue_close(q);
	return NULL;
}

void queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->rtxn != NULL)
		mdb_txn_abort(q->rtxn);
	if (q->env != NULL)
		mdb_env_close(q->env);
	if (q->incoming_fd >= 0)
		close(q->incoming_fd);
	if (q->lock_fd >= 0) {
		close(q->lock_fd);      /* drops the lock */
		writer_pid = 0;
	}
	free(q->chunk);
	free(q->rcpts);
	while (q->nspare > 0)
		free(q->spare_mem[--q->nspare]);
	free(q);
}

/* ---- read transactions ---- */

static int rd_begin(struct queue *q, MDB_txn **txn)
{
	int rc;
	for (int tries = 0; ; tries++) {
		if (q->rtxn != NULL)
			rc = mdb_txn_renew(q->rtxn);
		else
			rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &q->rtxn);
		if (rc != MDB_MAP_RESIZED || tries > 0)
			break;
		/* The writer's map grew past ours: map again at its size. */
		if (q->rtxn != NULL) {
			mdb_txn_abort(q->rtxn);
			q->rtxn = NULL;
		}
		if ((rc = mdb_env_set_mapsize(q->env, 0)) != 0)
			break;
	}
	*txn = q->rtxn;
	return rc;
}

static void rd_end(struct queue *q)
{
	mdb_txn_reset(q->rtxn);
}

static void env_key(unsigned char key[8], queue_id id)
{
	wire_put_be64(key, id);
}

static void body_key(unsigned char key[12], queue_id id, uint32_t chunk)
{
	wire_put_be64(key, id);
	wire_put_be32(key + 8, chunk);
}

/* Is there an envelope for id in txn?  (An error reads as "yes", so
 * that callers report corruption rather than a quiet absence.) */
static int env_exists(struct queue *q, MDB_txn *txn, queue_id id)
{
	unsigned char ek[8];
	MDB_val k = { 8, ek }, v;

	env_key(ek, id);
	return mdb_get(txn, q->db_env, &k, &v) != MDB_NOTFOUND;
}

/* Decode a stored record, which must be under key id. */
static int decode_at(const MDB_val *v, queue_id id, struct queue_envelope *env)
{
	int rc = envelope_decode(v->mv_data, v->mv_size, env);
	if (rc == QUEUE_OK && env->id != id)
		rc = QUEUE_ECORRUPT;
	return rc;
}

/* The DSN parameters of message id, from "ext" into env (which has its
 * envelope decoded): cleared when it has none.  A QUEUE_* code. */
static int ext_read(struct queue *q, MDB_txn *txn, queue_id id, struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	int rc;

	ext_clear(env);
	if (!q->has_ext)
		return QUEUE_OK;
	env_key(key, id);
	rc = mdb_get(txn, q->db_ext, &k, &v);
	if (rc == MDB_NOTFOUND)
		return QUEUE_OK;
	if (rc != 0)
		return map_rc(rc);
	return ext_decode(v.mv_data, v.mv_size, env);
}

/* ---- the schedule ---- */

/* When a message is next due: the earliest next_try of its pending
 * recipients.  Returns 0 if it has none or is held (then it is in no
 * schedule), else 1 with *due set (a time before 1970 counts as 0). */
static int env_due(const struct queue_envelope *env, uint64_t *due)
{
	int any = 0;

	if (env->flags & QUEUE_ENV_HOLD)
		return 0;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		uint64_t t = r->next_try > 0 ? (uint64_t)r->next_try : 0;
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		if (!any || t < *due)
			*due = t;
		any = 1;
	}
	return any;
}

static void sched_key(unsigned char key[16], uint64_t due, queue_id id)
{
	wire_put_be64(key, due);
	wire_put_be64(key + 8, id);
}

/* Move message id in the schedule from where old put it (NULL: nowhere)
 * to where new puts it (NULL: nowhere). */
static int sched_set(struct queue *q, MDB_txn *txn, queue_id id,
                     const struct queue_envelope *old, const struct queue_envelope *new)
{
	unsigned char ko[16], kn[16];
	MDB_val k = { 16, NULL }, v = { 0, NULL };
	uint64_t due_old = 0, due_new = 0;
	int has_old = old != NULL && env_due(old, &due_old);
	int has_new = new != NULL && env_due(new, &due_new);
	int rc;

	if (has_old && has_new && due_old == due_new)
		return 0;
	if (has_old) {
		sched_key(ko, due_old, id);
		k.mv_data = ko;
		rc = mdb_del(txn, q->db_sched, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	if (has_new) {
		sched_key(kn, due_new, id);
		k.mv_data = kn;
		return mdb_put(txn, q->db_sched, &k, &v, 0);
	}
	return 0;
}

/* Grow q->rcpts to hold n recipients. */
static int rcpts_reserve(struct queue *q, size_t n)
{
	struct queue_rcpt *r;

	if (n <= q->rcpt_cap)
		return QUEUE_OK;
	if ((r = realloc(q->rcpts, n * sizeof *r)) == NULL)
		return QUEUE_EIO;
	q->rcpts = r;
	q->rcpt_cap = n;
	return QUEUE_OK;
}

/* Decode the record v of message id into env, recipients in q->rcpts. */
static int decode_grow(struct queue *q, const MDB_val *v, queue_id id,
                       struct queue_envelope *env)
{
	int rc;

	env->rcpts = NULL;
	if ((rc = decode_at(v, id, env)) != QUEUE_OK)
		return rc;
	if ((rc = rcpts_reserve(q, env->nrcpts)) != QUEUE_OK)
		return rc;
	env->rcpts = q->rcpts;
	env->rcpt_cap = q->rcpt_cap;
	return decode_at(v, id, env);
}

/* Version 1 to 2: every envelope into the schedule. */
static int sched_rebuild(struct queue *q, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_envelope env;
		if (k.mv_size != 8 || decode_grow(q, &v, wire_be64(k.mv_data), &env) != QUEUE_OK) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = sched_set(q, txn, env.id, NULL, &env)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- drafts ---- */

struct queue_draft *queue_draft_begin(struct queue *q, queue_id *id)
{
	struct queue_draft *d;
	if (q->rdonly) {
		errno = EROFS;
		return NULL;
	}
	if ((d = calloc(1, sizeof *d)) == NULL)
		return NULL;
	d->q = q;
	d->fd = -1;
	d->id = next_id(q);
	if (id != NULL)
		*id = d->id;
	return d;
}

static int errno_to_queue(int e)
{
	return e == ENOSPC || e == EDQUOT ? QUEUE_EFULL : QUEUE_EIO;
}

/* Move the memory buffer, which holds whole chunks, to the spool file. */
static int draft_spill(struct queue_draft *d)
{
	if (d->fd < 0) {
		char name[QUEUE_ID_TEXT];
		queue_id_format(d->id, name);
		d->fd = openat(d->q->incoming_fd, name,
		               O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (d->fd < 0)
			return errno_to_queue(errno);
	}
	for (size_t off = 0; off < d->len; ) {
		ssize_t w = write(d->fd, d->mem + off, d->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno_to_queue(errno);
		}
		off += (size_t)w;
	}
	d->len = 0;
	return QUEUE_OK;
}

int queue_draft_write(struct queue_draft *d, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	if (d->err != QUEUE_OK)
		return d->err;
	while (len > 0) {
		size_t n;
		if (d->len == QUEUE_DRAFT_MEM && (d->err = draft_spill(d)) != QUEUE_OK)
			return d->err;
		if (d->cap == 0 && d->q->nspare > 0) {
			struct queue *q = d->q;
			q->nspare--;
			d->mem = q->spare_mem[q->nspare];
			d->cap = q->spare_cap[q->nspare];
		}
		if (d->len == d->cap) {
			/* Grow lazily: most mail is small. */
			size_t cap = d->cap ? d->cap * 2 : 4096;
			unsigned char *m;
			while (cap < d->len + len && cap < QUEUE_DRAFT_MEM)
				cap *= 2;
			if (cap > QUEUE_DRAFT_MEM)
				cap = QUEUE_DRAFT_MEM;
			if ((m = realloc(d->mem, cap)) == NULL)
				return d->err = QUEUE_EIO;
			d->mem = m;
			d->cap = cap;
		}
		n = d->cap - d->len < len ? d->cap - d->len : len;
		memcpy(d->mem + d->len, p, n);
		d->len += n;
		d->size += n;
		p += n;
		len -= n;
	}
	return QUEUE_OK;
}

uint64_t queue_draft_size(const struct queue_draft *d)
{
	return d->size + d->prefix_len;
}

int queue_draft_prepend(struct queue_draft *d, const void *buf, size_t len)
{
	unsigned char *p;

	if (len > QUEUE_PREFIX_MAX) {
		d->err = QUEUE_EINVAL;
		return QUEUE_EINVAL;
	}
	if ((p = malloc(len ? len : 1)) == NULL) {
		d->err = QUEUE_EIO;
		return QUEUE_EIO;
	}
	memcpy(p, buf, len);
	free(d->prefix);
	d->prefix = p;
	d->prefix_len = len;
	return QUEUE_OK;
}

static void draft_free(struct queue_draft *d)
{
	if (d->fd >= 0) {
		char name[QUEUE_ID_TEXT];
		queue_id_format(d->id, name);
		unlinkat(d->q->incoming_fd, name, 0);
		close(d->fd);
	}
	free(d->prefix);
	if (d->mem != NULL && d->q->nspare < DRAFT_SPARE_MAX) {
		d->q->spare_mem[d->q->nspare] = d->mem;
		d->q->spare_cap[d->q->nspare++] = d->cap;
	} else {
		free(d->mem);
	}
	free(d);
}

void queue_draft_abort(struct queue_draft *d)
{
	if (d != NULL)
		draft_free(d);
}

/* ---- commit ---- */

/* Read exactly len bytes at off of the spool file. */
static int read_full(int fd, unsigned char *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = pread(fd, p, len, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;   /* the spool file is shorter than written */
			return errno;
		}
		p += r;
		off += r;
		len -= (size_t)r;
	}
	return 0;
}

/* The message's bytes [off, off + len) into p: the draft's prefix, then
 * what was written (spool file, then memory).  0 or an errno code. */
static int message_read(const struct queue_draft *d, unsigned char *p, size_t len, uint64_t off)
{
	uint64_t filebytes = d->size - d->len;   /* whole chunks in the file */

	while (len > 0) {
		size_t n;
		int rc = 0;

		if (off < d->prefix_len) {
			n = d->prefix_len - off < len ? (size_t)(d->prefix_len - off) : len;
			memcpy(p, d->prefix + off, n);
		} else if (off - d->prefix_len < filebytes) {
			uint64_t at = off - d->prefix_len;

			n = filebytes - at < len ? (size_t)(filebytes - at) : len;
			rc = read_full(d->fd, p, n, (off_t)at);
		} else {
			uint64_t at = off - d->prefix_len - filebytes;

			n = len;
			memcpy(p, d->mem + at, n);
		}
		if (rc != 0)
			return rc;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Message id's DSN parameters into "ext", in the transaction that stores
 * its envelope.  0 or an LMDB or errno code. */
static int put_ext(struct queue *q, MDB_txn *txn, queue_id id, const struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	size_t n = ext_size(env);
	int rc;

	if (n == 0)
		return EINVAL;
	env_key(key, id);
	v.mv_size = n;
	if ((rc = mdb_put(txn, q->db_ext, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	ext_encode(env, v.mv_data, n);
	return 0;
}

/* Put one draft's chunks and envelope into txn.  Returns 0 or an LMDB or
 * errno code. */
static int put_message(struct queue *q, MDB_txn *txn, struct queue_draft *d,
                       struct queue_envelope *env)
{
	unsigned char key[12];
	MDB_val k, v;
	uint64_t off = 0;
	uint32_t chunk = 0;
	size_t n;
	int rc;

	while (off < env->size) {
		size_t want = env->size - off < BODY_CHUNK ? (size_t)(env->size - off) : BODY_CHUNK;
		body_key(key, d->id, chunk);
		k.mv_size = sizeof key;
		k.mv_data = key;
		v.mv_size = want;
		if ((rc = mdb_put(txn, q->db_body, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE)) != 0)
			return rc;
		if ((rc = message_read(d, v.mv_data, want, off)) != 0)
			return rc;
		off += want;
		chunk++;
	}

	/* The record as it came, if it did: encoded once, on its way here. */
	if ((n = env->raw != NULL ? env->raw_len : envelope_size(env)) == 0)
		return EINVAL;
	env_key(key, d->id);
	k.mv_size = 8;
	k.mv_data = key;
	v.mv_size = n;
	if ((rc = mdb_put(txn, q->db_env, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE)) != 0)
		return rc;
	if (env->raw != NULL) {
		memcpy(v.mv_data, env->raw, n);
		if (envelope_patch(v.mv_data, n, env->id, env->received, env->size) != 0)
			return EINVAL;
	} else {
		envelope_encode(env, v.mv_data, n);
	}
	if (ext_needed(env) && (rc = put_ext(q, txn, d->id, env)) != 0)
		return rc;
	if ((rc = usage_charge(q, txn, env, +1)) != 0)
		return rc;
	return sched_set(q, txn, d->id, NULL, env);
}

/* A write batch of mdb_page_flush (MDB_COMMIT_PAGES pages) and then some. */
#define SHORT_WRITE_ROOM (1024 * 1024)

/* LMDB reports a write cut short by a full disk as EIO (mdb_page_flush:
 * "short write, filesystem full?").  Tell that from a real I/O error by
 * looking: a disk with less than a write batch left is full.  (Running as
 * root, a full disk may still have reserved blocks: f_bavail, not f_bfree.) */
static int commit_rc(struct queue *q, int rc)
{
	struct statvfs vfs;
	int fd;

	if (rc == EIO && mdb_env_get_fd(q->env, &fd) == 0 && fstatvfs(fd, &vfs) == 0
	    && (uint64_t)vfs.f_bavail * vfs.f_frsize < SHORT_WRITE_ROOM)
		return ENOSPC;
	return rc;
}

size_t queue_commit(struct queue *q, struct queue_draft **draft,
                    struct queue_envelope **env, int *result, size_t n)
{
	/* order[0..npend) lists the drafts still to commit, in the order the
	 * next transaction puts them. */
	size_t *order = n ? calloc(n, sizeof *order) : NULL;
	size_t npend = 0, done = 0;
	int64_t now = (int64_t)time(NULL);

	for (size_t i = 0; i < n; i++) {
		/* Set whatever the outcome, so the caller can log the ID. */
		env[i]->id = draft[i]->id;
		env[i]->size = queue_draft_size(draft[i]);
		env[i]->received = now;
		if (q->rdonly || order == NULL)
			result[i] = q->rdonly ? QUEUE_EINVAL : QUEUE_EIO;
		else if (draft[i]->err != QUEUE_OK)
			result[i] = draft[i]->err;
		else
			order[npend++] = i;
	}
	if (npend > 0) {
		int dead;
		mdb_reader_check(q->env, &dead);
	}
	while (npend > 0) {
		MDB_txn *txn;
		size_t put = 0;
		int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
		if (rc != 0) {
			for (size_t j = 0; j < npend; j++)
				result[order[j]] = map_rc(rc);
			break;
		}
		for (; put < npend; put++) {
			if ((rc = put_message(q, txn, draft[order[put]], env[order[put]])) != 0)
				break;
		}
		if (put < npend) {
			/* One message failed: the transaction is spoiled, so abort
			 * it and start again without that message.  A transaction
			 * too big (MDB_TXN_FULL) is retried with the message first,
			 * alone it may fit; map full or an I/O error fails it. */
			size_t bad = order[put];
			mdb_txn_abort(txn);
			if (rc == MDB_TXN_FULL && put > 0) {
				memmove(order + 1, order, put * sizeof *order);
				order[0] = bad;
			} else {
				result[bad] = map_rc(rc);
				memmove(order + put, order + put + 1, (npend - put - 1) * sizeof *order);
				npend--;
			}
			continue;
		}
		rc = commit_rc(q, mdb_txn_commit(txn));
		if (map_rc(rc) == QUEUE_EFULL && npend > 1) {
			/* The disk filled (or the map, for LMDB's own pages) while
			 * the pages were written.  Which message tipped it is not
			 * known: the biggest gives way, the others try again. */
			size_t big = 0;
			for (size_t j = 1; j < npend; j++)
				if (draft[order[j]]->size > draft[order[big]]->size)
					big = j;
			result[order[big]] = QUEUE_EFULL;
			memmove(order + big, order + big + 1, (npend - big - 1) * sizeof *order);
			npend--;
			continue;
		}
		for (size_t j = 0; j < npend; j++)
			result[order[j]] = map_rc(rc);
		if (rc == 0)
			done = npend;
		break;
	}
	/* The outcome is known: the spool files have served. */
	for (size_t i = 0; i < n; i++)
		draft_free(draft[i]);
	free(order);
	return done;
}

/* ---- reads ---- */

int queue_get(struct queue *q, queue_id id, struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	MDB_txn *txn;
	int rc;

	env_key(key, id);
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	rc = mdb_get(txn, q->db_env, &k, &v);
	rc = rc == 0 ? decode_at(&v, id, env) : map_rc(rc);
	if (rc == QUEUE_OK)
		rc = ext_read(q, txn, id, env);
	rd_end(q);
	return rc;
}

/* The first message with an ID >= from: its ID in *id, its envelope in
 * *env with recipients in q->rcpts (grown as needed). */
static int next_message(struct queue *q, queue_id from, queue_id *id,
                        struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	MDB_txn *txn;
	MDB_cursor *c;
	int rc;

	env_key(key, from);
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0) {
		rd_end(q);
		return map_rc(rc);
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc != 0) {
		rc = map_rc(rc);
	} else if (k.mv_size != 8) {
		rc = QUEUE_ECORRUPT;
	} else {
		*id = wire_be64(k.mv_data);
		rc = decode_grow(q, &v, *id, env);
		if (rc == QUEUE_OK)
			rc = ext_read(q, txn, *id, env);
	}
	mdb_cursor_close(c);
	rd_end(q);
	return rc;
}

int queue_list(struct queue *q, int (*fn)(void *arg, const struct queue_envelope *env),
               void *arg)
{
	struct queue_envelope env;
	queue_id from = 0, id = 0;

	for (;;) {
		/* One short read transaction per message: fn may be slow. */
		int rc = next_message(q, from, &id, &env);
		if (rc == QUEUE_ENOTFOUND)
			return QUEUE_OK;
		if (rc != QUEUE_OK)
			return rc;
		if (fn(arg, &env) != 0 || id == UINT64_MAX)
			return QUEUE_OK;
		from = id + 1;
	}
}

int queue_body(struct queue *q, queue_id id,
               int (*fn)(void *arg, const void *buf, size_t len), void *arg)
{
	struct queue_envelope env;
	unsigned char key[12];
	MDB_val k = { 8, key }, v;
	MDB_txn *txn;
	uint64_t size, nchunks;
	int rc;

	if (q->chunk == NULL && (q->chunk = malloc(BODY_CHUNK)) == NULL)
		return QUEUE_EIO;
	/* First the envelope (the size) and that no chunk lies past the end. */
	env_key(key, id);
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	rc = mdb_get(txn, q->db_env, &k, &v);
	if (rc == 0) {
		env.rcpts = NULL;
		rc = decode_at(&v, id, &env);
	} else {
		rc = map_rc(rc);
	}
	size = env.size;
	nchunks = (size + BODY_CHUNK - 1) / BODY_CHUNK;
	if (rc == QUEUE_OK && nchunks > UINT32_MAX)
		rc = QUEUE_ECORRUPT;
	if (rc == QUEUE_OK) {
		MDB_cursor *c;
		body_key(key, id, (uint32_t)nchunks);
		k.mv_size = 12;
		if ((rc = mdb_cursor_open(txn, q->db_body, &c)) != 0) {
			rc = map_rc(rc);
		} else {
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
			if (rc == 0 && k.mv_size >= 8 && wire_be64(k.mv_data) == id)
				rc = QUEUE_ECORRUPT;      /* a chunk beyond the size */
			else
				rc = rc == 0 || rc == MDB_NOTFOUND ? QUEUE_OK : map_rc(rc);
			mdb_cursor_close(c);
		}
	}
	rd_end(q);
	if (rc != QUEUE_OK)
		return rc;

	for (uint64_t i = 0; i < nchunks; i++) {
		size_t want = i + 1 < nchunks ? BODY_CHUNK : (size_t)(size - i * BODY_CHUNK);
		body_key(key, id, (uint32_t)i);
		k.mv_size = 12;
		k.mv_data = key;
		if ((rc = rd_begin(q, &txn)) != 0)
			return map_rc(rc);
		rc = mdb_get(txn, q->db_body, &k, &v);
		if (rc == MDB_NOTFOUND) {
			/* Gone since the first look (delivered), or never there. */
			rc = env_exists(q, txn, id) ? QUEUE_ECORRUPT : QUEUE_ENOTFOUND;
		} else if (rc != 0) {
			rc = map_rc(rc);
		} else if (v.mv_size != want) {
			rc = QUEUE_ECORRUPT;
		} else {
			memcpy(q->chunk, v.mv_data, want);
		}
		rd_end(q);
		if (rc != QUEUE_OK)
			return rc;
		if (fn(arg, q->chunk, want) != 0)
			return QUEUE_EIO;
	}
	return QUEUE_OK;
}

int queue_stats(struct queue *q, struct queue_stats *st)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_envinfo info;
	MDB_stat ms;
	int rc, qrc = QUEUE_OK;

	memset(st, 0, sizeof *st);
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0) {
		rd_end(q);
		return map_rc(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && qrc == QUEUE_OK;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_envelope env;
		env.rcpts = NULL;
		qrc = k.mv_size == 8 ? decode_at(&v, wire_be64(k.mv_data), &env)
		                     : QUEUE_ECORRUPT;
		if (qrc == QUEUE_OK) {
			st->messages++;
			st->bytes += env.size;
		}
	}
	mdb_cursor_close(c);
	rd_end(q);
	if (qrc != QUEUE_OK)
		return qrc;
	if (rc != MDB_NOTFOUND)
		return map_rc(rc);
	if ((rc = mdb_env_info(q->env, &info)) != 0 || (rc = mdb_env_stat(q->env, &ms)) != 0)
		return map_rc(rc);
	st->map_size = info.me_mapsize;
	st->map_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	return QUEUE_OK;
}

#define META_PROBE_KEY "probe"

int queue_probe(struct queue *q, int64_t now)
{
	MDB_val k = { sizeof META_PROBE_KEY - 1, (void *)(uintptr_t)META_PROBE_KEY }, v;
	unsigned char t[8];
	MDB_txn *txn;
	int rc;

	if (q->rdonly)
		return QUEUE_EINVAL;
	if ((rc = mdb_txn_begin(q->env, NULL, 0, &txn)) != 0)
		return map_rc(rc);
	wire_put_be64(t, (uint64_t)now);
	v.mv_size = sizeof t;
	v.mv_data = t;
	if ((rc = mdb_put(txn, q->db_meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return map_rc(rc);
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? QUEUE_OK : map_rc(commit_rc(q, rc));
}

int queue_oldest(struct queue *q, queue_id *id)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = mdb_cursor_open(txn, q->db_env, &c)) != 0) {
		rd_end(q);
		return map_rc(rc);
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size != 8)
		rc = MDB_CORRUPTED;
	else if (rc == 0)
		*id = wire_be64(k.mv_data);
	mdb_cursor_close(c);
	rd_end(q);
	return map_rc(rc);
}

int queue_usage(struct queue *q, const struct queue_envelope *env, struct queue_usage *u)
{
	MDB_val k = { sizeof USAGE_TOTAL_KEY - 1, (void *)(uintptr_t)USAGE_TOTAL_KEY }, v;
	MDB_txn *txn;
	struct usage total = { 0, 0 }, client = { 0, 0 };
	char key[USAGE_KEY_MAX];
	int rc;

	memset(u, 0, sizeof *u);
	if (env != NULL && (k.mv_size = usage_key(env, key)) == 0)
		return QUEUE_EINVAL;
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	if (env != NULL) {
		k.mv_data = key;
		rc = mdb_get(txn, q->db_usage, &k, &v);
		if (rc == 0)
			rc = usage_decode(v.mv_data, v.mv_size, &client) == QUEUE_OK ? 0 : MDB_CORRUPTED;
		k.mv_size = sizeof USAGE_TOTAL_KEY - 1;
		k.mv_data = (void *)(uintptr_t)USAGE_TOTAL_KEY;
	}
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_get(txn, q->db_usage, &k, &v);
	if (rc == 0)
		rc = usage_decode(v.mv_data, v.mv_size, &total) == QUEUE_OK ? 0 : MDB_CORRUPTED;
	rd_end(q);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return map_rc(rc);
	u->messages = total.messages;
	u->bytes = total.bytes;
	u->client_messages = client.messages;
	u->client_bytes = client.bytes;
	return QUEUE_OK;
}

static int cmp_pgno(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Free pages inside data.mdb that a new message can use: those on LMDB's
 * freelist (database 0; each record a list of page numbers that starts
 * with its length, as mdb_stat -f reads it) in runs of at least `run`
 * consecutive pages.  A 64 KiB chunk goes in `run` consecutive pages, so
 * the single pages that copy-on-write scatters on the list do not count;
 * the runs a removed message leaves do.  Remembered per transaction ID:
 * quotas ask for every message, the list changes once per commit.
 */
static int usable_free_pages(struct queue *q, size_t txnid, uint64_t run, uint64_t *pages)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t *list = NULL, n = 0, cap = 0;
	int rc;

	if (q->free_txnid == txnid && txnid != 0) {
		*pages = q->free_usable;
		return 0;
	}
	*pages = 0;
	if ((rc = rd_begin(q, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, 0, &c)) == 0) {
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			size_t count;
			if (v.mv_size < sizeof count) {
				rc = MDB_CORRUPTED;
				break;
			}
			memcpy(&count, v.mv_data, sizeof count);
			if (count > v.mv_size / sizeof count - 1) {
				rc = MDB_CORRUPTED;
				break;
			}
			if (count == 0)
				continue;
			if (n + count > cap) {
				size_t ncap = (n + count) * 2;
				size_t *l = realloc(list, ncap * sizeof *l);
				if (l == NULL) {
					rc = ENOMEM;
					break;
				}
				list = l;
				cap = ncap;
			}
			memcpy(list + n, (const size_t *)v.mv_data + 1, count * sizeof *list);
			n += count;
		}
		mdb_cursor_close(c);
	}
	rd_end(q);
	if (rc == MDB_NOTFOUND) {
		if (n > 0)
			qsort(list, n, sizeof *list, cmp_pgno);
		for (size_t i = 0, j; i < n; i = j) {
			for (j = i + 1; j < n && list[j] == list[j - 1] + 1; j++)
				;
			if (j - i >= run)
				*pages += j - i;
		}
		q->free_txnid = txnid;
		q->free_usable = *pages;
		rc = 0;
	}
	free(list);
	return rc;
}

int queue_space(struct queue *q, struct queue_space *sp)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct statvfs vfs;
	struct stat st;
	uint64_t runs, end;
	int fd, rc;

	memset(sp, 0, sizeof *sp);
	if ((rc = mdb_env_get_fd(q->env, &fd)) != 0 || (rc = mdb_env_info(q->env, &info)) != 0
	    || (rc = mdb_env_stat(q->env, &ms)) != 0)
		return map_rc(rc);
	if ((rc = usable_free_pages(q, info.me_last_txnid, BODY_CHUNK / ms.ms_psize + 1, &runs)) != 0)
		return map_rc(rc);
	if (fstatvfs(fd, &vfs) != 0 || fstat(fd, &st) != 0)
		return QUEUE_EIO;
	sp->fs_avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	sp->fs_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	/* LMDB writes new pages after the last one in use, or into free runs. */
	end = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	runs *= ms.ms_psize;
	sp->file_free = ((uint64_t)st.st_size > end ? (uint64_t)st.st_size - end : 0) + runs;
	sp->map_free = (info.me_mapsize > end ? info.me_mapsize - end : 0) + runs;
	return QUEUE_OK;
}

/* ---- delivery and administration ---- */

static int wr_begin(struct queue *q, MDB_txn **txn)
{
	int dead;

	if (q->rdonly)
		return EINVAL;
	mdb_reader_check(q->env, &dead);
	return mdb_txn_begin(q->env, NULL, 0, txn);
}

/* The envelope of id inside txn, recipients in q->rcpts. */
static int load_env(struct queue *q, MDB_txn *txn, queue_id id, struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	int rc;

	env_key(key, id);
	if ((rc = mdb_get(txn, q->db_env, &k, &v)) != 0)
		return map_rc(rc);
	return decode_grow(q, &v, id, env);
}

static int store_env(struct queue *q, MDB_txn *txn, const struct queue_envelope *env)
{
	unsigned char key[8];
	MDB_val k = { sizeof key, key }, v;
	size_t n = envelope_size(env);
	int rc;

	if (n == 0)
		return EINVAL;
	env_key(key, env->id);
	v.mv_size = n;
	if ((rc = mdb_put(txn, q->db_env, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	envelope_encode(env, v.mv_data, n);
	return 0;
}

/*
 * The one way a message leaves the queue (delivered, bounced or deleted):
 * its envelope, its DSN parameters, its body chunks, its place in the schedule and its charge
 * on the usage counters, inside the caller's transaction.  env is the
 * envelope as stored.
 */
static int remove_message(struct queue *q, MDB_txn *txn, const struct queue_envelope *env)
{
	unsigned char key[12];
	MDB_val k = { 8, key }, v;
	MDB_cursor *c;
	int rc;

	env_key(key, env->id);
	if ((rc = mdb_del(txn, q->db_env, &k, NULL)) != 0)
		return rc;
	if (q->has_ext && (rc = mdb_del(txn, q->db_ext, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = usage_charge(q, txn, env, -1)) != 0)
		return rc;
	if ((rc = sched_set(q, txn, env->id, env, NULL)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, q->db_body, &c)) != 0)
		return rc;
	body_key(key, env->id, 0);
	k.mv_size = 12;
	k.mv_data = key;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size == 12 && wire_be64(k.mv_data) == env->id;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* Commit txn (or abort it if rc says it failed); returns a QUEUE_* code. */
static int wr_end(MDB_txn *txn, int rc)
{
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc < 0 && rc >= QUEUE_ECORRUPT ? rc : map_rc(rc);
	}
	return map_rc(mdb_txn_commit(txn));
}

int queue_due(struct queue *q, int64_t now, int (*skip)(void *arg, queue_id id), void *arg,
              queue_id *ids, size_t cap, size_t *n, int64_t *next)
{
	unsigned char key[16];
	MDB_val k = { sizeof key, key }, v;
	MDB_txn *txn;
	MDB_cursor *c;
	int rc;

	*n = 0;
	*next = INT64_MAX;
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = mdb_cursor_open(txn, q->db_sched, &c)) != 0) {
		rd_end(q);
		return map_rc(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t due;
		queue_id id;
		if (k.mv_size != 16) {
			rc = QUEUE_ECORRUPT;
			break;
		}
		due = wire_be64(k.mv_data);
		id = wire_be64((const unsigned char *)k.mv_data + 8);
		if (due > (uint64_t)(now > 0 ? now : 0)) {
			*next = due > INT64_MAX ? INT64_MAX : (int64_t)due;
			break;
		}
		if (skip != NULL && skip(arg, id))
			continue;
		if (*n == cap) {
			*next = now;      /* more is due than the caller took */
			break;
		}
		ids[(*n)++] = id;
	}
	mdb_cursor_close(c);
	rd_end(q);
	if (rc == QUEUE_ECORRUPT)
		return rc;
	return rc == 0 || rc == MDB_NOTFOUND ? QUEUE_OK : map_rc(rc);
}

/* One update inside txn (see queue_update): u->changed and u->gone as
 * they will be if txn commits.  Returns 0, QUEUE_ENOTFOUND in u->result
 * with 0 (nothing changed, txn still good), or an LMDB or errno code
 * that spoils txn. */
static int update_in_txn(struct queue *q, MDB_txn *txn, struct queue_update_req *u)
{
	struct queue_envelope env, old;
	uint64_t due_old = 0;
	int rc = 0, done = 1, had;

	u->changed = 0;
	u->gone = 0;
	if ((rc = load_env(q, txn, u->id, &env)) != QUEUE_OK) {
		u->result = rc;
		return rc == QUEUE_ENOTFOUND ? 0 : EIO;
	}
	/* The old schedule key is computed from a copy of the recipients'
	 * states before they change (env and old share q->rcpts). */
	old = env;
	had = env_due(&old, &due_old);
	for (size_t i = 0; i < u->n; i++) {
		struct queue_rcpt *r;

		if (u->res[i].rcpt >= env.nrcpts)
			continue;
		r = &env.rcpts[u->res[i].rcpt];
		if (r->state != QUEUE_RCPT_PENDING)
			continue;          /* already final: a late duplicate */
		r->state = u->res[i].state <= QUEUE_RCPT_BOUNCED ? u->res[i].state : QUEUE_RCPT_PENDING;
		if (r->attempts < UINT16_MAX)
			r->attempts++;
		r->next_try = r->state == QUEUE_RCPT_PENDING ? u->res[i].next_try : 0;
		snprintf(r->last_error, sizeof r->last_error, "%s",
		         u->res[i].error ? u->res[i].error : "");
		u->changed++;
	}
	env.flags |= u->set_flags;
	for (size_t i = 0; i < env.nrcpts; i++)
		if (env.rcpts[i].state == QUEUE_RCPT_PENDING)
			done = 0;
	if (had) {
		unsigned char key[16];
		MDB_val k = { 16, key };

		sched_key(key, due_old, u->id);
		rc = mdb_del(txn, q->db_sched, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0 && u->dsn != NULL)
		rc = put_message(q, txn, u->dsn, u->dsn_env);
	if (rc == 0 && done) {
		rc = remove_message(q, txn, &env);   /* its schedule key is gone already */
		u->gone = rc == 0;
	} else if (rc == 0) {
		if ((rc = store_env(q, txn, &env)) == 0)
			rc = sched_set(q, txn, u->id, NULL, &env);
	}
	u->result = QUEUE_OK;
	return rc;
}

size_t queue_update_many(struct queue *q, struct queue_update_req *u, size_t n)
{
	MDB_txn *txn;
	size_t ok = 0, i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		if (u[i].dsn != NULL) {
			u[i].dsn_env->id = u[i].dsn->id;
			u[i].dsn_env->size = queue_draft_size(u[i].dsn);
			u[i].dsn_env->received = (int64_t)time(NULL);
		}
		u[i].result = QUEUE_EIO;
		u[i].changed = 0;
		u[i].gone = 0;
	}
	if ((rc = wr_begin(q, &txn)) != 0) {
		for (i = 0; i < n; i++)
			u[i].result = map_rc(rc);
	} else {
		for (i = 0; i < n && rc == 0; i++)
			rc = update_in_txn(q, txn, &u[i]);
		if (rc != 0 && n > 1) {
			/* One spoiled the transaction: each alone, so one bad
			 * update cannot fail its neighbours. */
			mdb_txn_abort(txn);
			for (i = 0; i < n; i++) {
				struct queue_draft *dsn = u[i].dsn;

				u[i].dsn = NULL;
				queue_update(q, u[i].id, u[i].res, u[i].n, u[i].set_flags, dsn, u[i].dsn_env,
				             &u[i].result, &u[i].gone);
				ok += u[i].result == QUEUE_OK;
			}
			return ok;
		}
		rc = wr_end(txn, rc);
		for (i = 0; i < n; i++) {
			if (rc != QUEUE_OK || u[i].result != QUEUE_OK) {
				u[i].result = rc != QUEUE_OK ? rc : u[i].result;
				u[i].gone = 0;
				u[i].changed = 0;
			} else {
				ok++;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (u[i].dsn != NULL)
			draft_free(u[i].dsn);
		u[i].dsn = NULL;
	}
	return ok;
}

size_t queue_update(struct queue *q, queue_id id, const struct queue_result *res, size_t n,
                    uint32_t set_flags, struct queue_draft *dsn, struct queue_envelope *dsn_env,
                    int *result, int *gone)
{
	struct queue_update_req u = { id, res, n, set_flags, dsn, dsn_env, QUEUE_EIO, 0, 0 };

	queue_update_many(q, &u, 1);
	*result = u.result;
	*gone = u.gone;
	return u.result == QUEUE_OK ? u.changed : 0;
}

int queue_hold(struct queue *q, queue_id id, int hold)
{
	struct queue_envelope env;
	MDB_txn *txn;
	uint64_t due = 0;
	int rc, had;

	if ((rc = wr_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = load_env(q, txn, id, &env)) != QUEUE_OK) {
		mdb_txn_abort(txn);
		return rc;
	}
	had = env_due(&env, &due);
	if (hold)
		env.flags |= QUEUE_ENV_HOLD;
	else
		env.flags &= ~QUEUE_ENV_HOLD;
	if (had) {
		unsigned char key[16];
		MDB_val k = { 16, key };
		sched_key(key, due, id);
		if ((rc = mdb_del(txn, q->db_sched, &k, NULL)) == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		rc = store_env(q, txn, &env);
	if (rc == 0)
		rc = sched_set(q, txn, id, NULL, &env);
	return wr_end(txn, rc);
}

/* Make the pending recipients of one message due now, inside txn. */
static int retry_one(struct queue *q, MDB_txn *txn, queue_id id, int *held)
{
	struct queue_envelope env;
	uint64_t due = 0;
	int rc = load_env(q, txn, id, &env), had;

	if (rc != QUEUE_OK)
		return rc;
	*held = (env.flags & QUEUE_ENV_HOLD) != 0;
	had = env_due(&env, &due);
	if (had) {
		unsigned char key[16];
		MDB_val k = { 16, key };
		sched_key(key, due, id);
		if ((rc = mdb_del(txn, q->db_sched, &k, NULL)) == MDB_NOTFOUND)
			rc = 0;
		if (rc != 0)
			return rc;
	}
	for (size_t i = 0; i < env.nrcpts; i++)
		if (env.rcpts[i].state == QUEUE_RCPT_PENDING)
			env.rcpts[i].next_try = 0;
	if ((rc = store_env(q, txn, &env)) != 0)
		return rc;
	return sched_set(q, txn, id, NULL, &env);
}

int queue_retry(struct queue *q, queue_id id, size_t *count)
{
	MDB_txn *txn;
	int rc, held = 0;

	*count = 0;
	if ((rc = wr_begin(q, &txn)) != 0)
		return map_rc(rc);
	if (id != 0) {
		rc = retry_one(q, txn, id, &held);
		if (rc == QUEUE_OK && !held)
			*count = 1;
	} else {
		/* Every message that waits: walk the schedule from the first
		 * entry not yet due (they are ordered by time). */
		MDB_cursor *c;
		MDB_val k, v;
		queue_id *ids = NULL;
		size_t nids = 0, cap = 0;
		if ((rc = mdb_cursor_open(txn, q->db_sched, &c)) == 0) {
			for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
			     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
				if (k.mv_size != 16) {
					rc = QUEUE_ECORRUPT;
					break;
				}
				if (wire_be64(k.mv_data) == 0)
					continue;
				if (nids == cap) {
					queue_id *m = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof *m);
					if (m == NULL) {
						rc = ENOMEM;
						break;
					}
					ids = m;
				}
				ids[nids++] = wire_be64((const unsigned char *)k.mv_data + 8);
			}
			mdb_cursor_close(c);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
		for (size_t i = 0; rc == 0 && i < nids; i++)
			rc = retry_one(q, txn, ids[i], &held);
		if (rc == 0)
			*count = nids;
		free(ids);
	}
	rc = wr_end(txn, rc);
	if (rc != QUEUE_OK)
		*count = 0;
	return rc;
}

int queue_delete(struct queue *q, queue_id id)
{
	struct queue_envelope env;
	MDB_txn *txn;
	int rc;

	if ((rc = wr_begin(q, &txn)) != 0)
		return map_rc(rc);
	if ((rc = load_env(q, txn, id, &env)) != QUEUE_OK) {
		mdb_txn_abort(txn);
		return rc;
	}
	return wr_end(txn, remove_message(q, txn, &env));
}

int queue_body_read(struct queue *q, queue_id id, uint64_t off, void *buf, size_t cap,
                    size_t *got)
{
	unsigned char key[12];
	MDB_val k = { sizeof key, key }, v;
	MDB_txn *txn;
	uint64_t chunk = off / BODY_CHUNK;
	size_t at = (size_t)(off % BODY_CHUNK);
	int rc;

	*got = 0;
	if (chunk > UINT32_MAX)
		return QUEUE_EINVAL;
	body_key(key, id, (uint32_t)chunk);
	if ((rc = rd_begin(q, &txn)) != 0)
		return map_rc(rc);
	rc = mdb_get(txn, q->db_body, &k, &v);
	if (rc == MDB_NOTFOUND) {
		/* If the message is there, off is at or past the end of its body
		 * (the caller knows the size): nothing to read. */
		rc = env_exists(q, txn, id) ? QUEUE_OK : QUEUE_ENOTFOUND;
	} else if (rc != 0) {
		rc = map_rc(rc);
	} else if (v.mv_size > BODY_CHUNK || at >= v.mv_size) {
		rc = at >= v.mv_size && v.mv_size <= BODY_CHUNK ? QUEUE_OK : QUEUE_ECORRUPT;
	} else {
		*got = v.mv_size - at < cap ? v.mv_size - at : cap;
		memcpy(buf, (const unsigned char *)v.mv_data + at, *got);
	}
	rd_end(q);
	return rc;
}

/* ---- for the other LMDB files of queue/ (queue/store.h) ---- */

int store_sts_dbi(struct queue *q, MDB_dbi *dbi)
{
	MDB_txn *txn;
	int rc;

	if (!q->sts_open) {
		/* A handle opened in a transaction lives on only if that
		 * transaction commits, and the shared read transaction is only
		 * ever reset: so a transaction of its own, with the read one
		 * given up first (one reader slot per thread). */
		if (q->rtxn != NULL) {
			mdb_txn_abort(q->rtxn);
			q->rtxn = NULL;
		}
		if ((rc = mdb_txn_begin(q->env, NULL, q->rdonly ? MDB_RDONLY : 0, &txn)) != 0)
			return map_rc(rc);
		rc = mdb_dbi_open(txn, "sts", q->rdonly ? 0 : MDB_CREATE, &q->db_sts);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return map_rc(rc);
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			return map_rc(rc);
		q->sts_open = 1;
	}
	*dbi = q->db_sts;
	return QUEUE_OK;
}

int store_read(struct queue *q, MDB_txn **txn)
{
	return rd_begin(q, txn);
}

void store_read_end(struct queue *q)
{
	rd_end(q);
}

int store_write(struct queue *q, MDB_txn **txn)
{
	return wr_begin(q, txn);
}

int store_write_end(MDB_txn *txn, int rc)
{
	return wr_end(txn, rc);
}

int store_rc(int rc)
{
	return map_rc(rc);
}
