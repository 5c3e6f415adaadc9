/*
 * queue/sts.c -- the MTA-STS policy cache: the record (queue/sts.h) and
 * its place in LMDB (queue.h, queue_sts_*).  Transactions come from
 * queue/store.c (queue/store.h), under its rules; see FORMAT.md for the
 * bytes.
 */
#include "queue/sts.h"

#include <string.h>

#include "policy/wire.h"
#include "queue/queue.h"
#include "queue/store.h"

/* ---- the record ---- */

size_t sts_key(const char *domain, char key[DNS_NAME_MAX + 1])
{
	size_t n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX || !dns_name_ok(domain, n) || domain[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		key[i] = domain[i] >= 'A' && domain[i] <= 'Z' ? (char)(domain[i] - 'A' + 'a')
		                                               : domain[i];
	key[n] = '\0';
	return n;
}

/* An mx pattern as mtasts_policy_parse() leaves one: lower-case, a host
 * name or "*." and one, no trailing dot. */
static int pattern_ok(const char *p, size_t n)
{
	size_t skip = n >= 2 && p[0] == '*' && p[1] == '.' ? 2 : 0;

	if (n <= skip || n > MTASTS_MX_LEN || p[n - 1] == '.' || !dns_name_ok(p + skip, n - skip))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			return 0;
	return 1;
}

static int id_ok(const char *id, size_t n)
{
	if (n == 0 || n > MTASTS_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

int sts_valid(const struct mtasts_cached *c)
{
	const struct mtasts_policy *p = &c->policy;

	if (!id_ok(c->id, strnlen(c->id, sizeof c->id)) || p->mode > MTASTS_MODE_ENFORCE ||
	    p->max_age > MTASTS_MAX_AGE_MAX || p->nmx > MTASTS_MX_MAX ||
	    (p->mx_dropped > 0 && p->nmx < MTASTS_MX_MAX) || p->mx_dropped > UINT32_MAX ||
	    (p->mode != MTASTS_MODE_NONE && p->nmx == 0))
		return 0;
	for (size_t i = 0; i < p->nmx; i++)
		if (!pattern_ok(p->mx[i], strnlen(p->mx[i], sizeof p->mx[i])))
			return 0;
	return 1;
}

size_t sts_encode(const struct mtasts_cached *c, unsigned char *buf, size_t cap)
{
	const struct mtasts_policy *p = &c->policy;
	struct wire_wr w;

	if (!sts_valid(c) || cap < STS_RECORD_MAX)
		return 0;
	wire_wr_init(&w, buf, cap);
	wire_put_u8(&w, STS_RECORD_VERSION);
	wire_put_i64(&w, c->fetched_at);
	wire_put_u32(&w, p->max_age);
	wire_put_u8(&w, (uint8_t)p->mode);
	wire_put_u32(&w, (uint32_t)p->mx_dropped);
	wire_put_str(&w, c->id);
	wire_put_u16(&w, (uint16_t)p->nmx);
	for (size_t i = 0; i < p->nmx; i++)
		wire_put_str(&w, p->mx[i]);
	return wire_wr_end(&w);
}

int sts_decode(const unsigned char *buf, size_t len, struct mtasts_cached *c)
{
	struct mtasts_policy *p = &c->policy;
	struct wire_rd r;

	memset(c, 0, sizeof *c);
	wire_rd_init(&r, buf, len);
	if (wire_u8(&r) != STS_RECORD_VERSION)
		goto bad;
	c->fetched_at = wire_i64(&r);
	p->max_age = wire_u32(&r);
	p->mode = wire_u8(&r);
	p->mx_dropped = wire_u32(&r);
	wire_str(&r, c->id, sizeof c->id - 1);
	p->nmx = wire_u16(&r);
	if (p->nmx > MTASTS_MX_MAX)
		goto bad;
	for (size_t i = 0; i < p->nmx; i++)
		wire_str(&r, p->mx[i], sizeof p->mx[i] - 1);
	/* Nothing left over, and only what a parse could have cached. */
	if (wire_end(&r) != 0 || !sts_valid(c))
		goto bad;
	return QUEUE_OK;
bad:
	memset(c, 0, sizeof *c);
	return QUEUE_ECORRUPT;
}

/* ---- in LMDB ---- */

int queue_sts_put(struct queue *q, const char *domain, const struct mtasts_cached *c)
{
	char key[DNS_NAME_MAX + 1];
	unsigned char rec[STS_RECORD_MAX];
	size_t kl = sts_key(domain, key), rl = sts_encode(c, rec, sizeof rec);
	MDB_val k = { kl, key }, v = { rl, rec };
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	if (kl == 0 || rl == 0)
		return QUEUE_EINVAL;
	if ((rc = store_sts_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_write(q, &txn)) != 0)
		return store_rc(rc);
	return store_write_end(txn, mdb_put(txn, dbi, &k, &v, 0));
}

int queue_sts_get(struct queue *q, const char *domain, struct mtasts_cached *c)
{
	char key[DNS_NAME_MAX + 1];
	size_t kl = sts_key(domain, key);
	MDB_val k = { kl, key }, v;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	memset(c, 0, sizeof *c);
	if (kl == 0)
		return QUEUE_EINVAL;
	if ((rc = store_sts_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_read(q, &txn)) != 0)
		return store_rc(rc);
	rc = mdb_get(txn, dbi, &k, &v);
	/* Decoded (copied out) before the transaction ends. */
	rc = rc == 0 ? sts_decode(v.mv_data, v.mv_size, c) : store_rc(rc);
	store_read_end(q);
	return rc;
}

int queue_sts_delete(struct queue *q, const char *domain)
{
	char key[DNS_NAME_MAX + 1];
	size_t kl = sts_key(domain, key);
	MDB_val k = { kl, key };
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	if (kl == 0)
		return QUEUE_EINVAL;
	if ((rc = store_sts_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_write(q, &txn)) != 0)
		return store_rc(rc);
	return store_write_end(txn, mdb_del(txn, dbi, &k, NULL));
}

int queue_sts_expire(struct queue *q, int64_t now, size_t *removed, size_t *corrupt)
{
	static struct mtasts_cached c;   /* 8 KiB: off the stack; one thread */
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t nrm = 0, nbad = 0;
	int rc;

	if ((rc = store_sts_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_write(q, &txn)) != 0)
		return store_rc(rc);
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return store_write_end(txn, rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int bad = sts_decode(v.mv_data, v.mv_size, &c) != QUEUE_OK;
		if (!bad && mtasts_cache_fresh(&c, now))
			continue;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		nrm += !bad;
		nbad += (size_t)bad;
	}
	mdb_cursor_close(cur);
	rc = store_write_end(txn, rc == MDB_NOTFOUND ? 0 : rc);
	if (removed)
		*removed = rc == QUEUE_OK ? nrm : 0;
	if (corrupt)
		*corrupt = rc == QUEUE_OK ? nbad : 0;
	return rc;
}
