/*
 * queue/tlsrec.c -- the TLS report records: the bytes (queue/tlsrec.h)
 * and their place in LMDB (queue.h, queue_tlsrpt_*).  Transactions come
 * from queue/store.c (queue/store.h), under its rules; see FORMAT.md for
 * the bytes.
 */
#include "queue/tlsrec.h"

#include <stdlib.h>
#include <string.h>

#include "policy/wire.h"
#include "queue/queue.h"
#include "queue/store.h"

/* ---- the record ---- */

size_t tlsrec_key(int64_t day, const char *domain, unsigned char key[TLSREC_KEY_MAX])
{
	size_t n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX || !dns_name_ok(domain, n) || domain[n - 1] == '.')
		return 0;
	wire_put_be64(key, (uint64_t)day);
	for (size_t i = 0; i < n; i++)
		key[8 + i] = (unsigned char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32
		                                                                  : domain[i]);
	return 8 + n;
}

/* A string field of cap bytes (NUL included) holds its NUL. */
static int has_nul(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}

static int detail_ok(const struct tlsrpt_detail *d)
{
	return d->result < TLSRPT_RESULT_COUNT && has_nul(d->sending_ip, sizeof d->sending_ip) &&
	       has_nul(d->receiving_ip, sizeof d->receiving_ip) &&
	       has_nul(d->receiving_mx, sizeof d->receiving_mx) &&
	       has_nul(d->receiving_helo, sizeof d->receiving_helo) &&
	       has_nul(d->reason, sizeof d->reason);
}

/* Could r have been encoded: every count within its cap, every string
 * ended, every type known, the domain a host name?  1 or 0. */
static int report_ok(const struct tlsrpt_report *r)
{
	size_t dl = strnlen(r->domain, sizeof r->domain);

	if (dl == 0 || dl > DNS_NAME_MAX || !dns_name_ok(r->domain, dl) ||
	    r->domain[dl - 1] == '.' || r->day % 86400 != 0 || r->npolicies > TLSRPT_POLICIES_MAX)
		return 0;
	for (size_t i = 0; i < dl; i++)
		if (r->domain[i] >= 'A' && r->domain[i] <= 'Z')
			return 0;
	for (size_t i = 0; i < r->npolicies; i++) {
		const struct tlsrpt_policy *p = &r->policies[i];

		if (p->type > TLSRPT_POLICY_NONE || p->ndetails > TLSRPT_DETAILS_MAX ||
		    !has_nul(p->strings, sizeof p->strings) || !has_nul(p->mx_hosts, sizeof p->mx_hosts))
			return 0;
		for (size_t k = 0; k < p->ndetails; k++)
			if (!detail_ok(&p->details[k]))
				return 0;
	}
	return 1;
}

static void put_detail(struct wire_wr *w, const struct tlsrpt_detail *d)
{
	wire_put_u8(w, d->result);
	wire_put_str(w, d->sending_ip);
	wire_put_str(w, d->receiving_ip);
	wire_put_str(w, d->receiving_mx);
	wire_put_str(w, d->receiving_helo);
	wire_put_str(w, d->reason);
	wire_put_u64(w, d->count);
}

size_t tlsrec_encode(const struct tlsrpt_report *r, unsigned flags, unsigned char *buf,
                     size_t cap)
{
	struct wire_wr w;

	if (!report_ok(r) || flags > TLSREC_SENT)
		return 0;
	wire_wr_init(&w, buf, cap);
	wire_put_u8(&w, TLSREC_VERSION);
	wire_put_u8(&w, (uint8_t)flags);
	wire_put_i64(&w, r->day);
	wire_put_str(&w, r->domain);
	wire_put_u64(&w, r->sessions_dropped);
	wire_put_u8(&w, (uint8_t)r->npolicies);
	for (size_t i = 0; i < r->npolicies; i++) {
		const struct tlsrpt_policy *p = &r->policies[i];

		wire_put_u8(&w, p->type);
		wire_put_str(&w, p->strings);
		wire_put_str(&w, p->mx_hosts);
		wire_put_u64(&w, p->successes);
		wire_put_u64(&w, p->failures);
		wire_put_u64(&w, p->details_dropped);
		wire_put_u8(&w, (uint8_t)p->ndetails);
		for (size_t k = 0; k < p->ndetails; k++)
			put_detail(&w, &p->details[k]);
	}
	return wire_wr_end(&w);
}

static void get_detail(struct wire_rd *rd, struct tlsrpt_detail *d)
{
	d->result = wire_u8(rd);
	wire_str(rd, d->sending_ip, sizeof d->sending_ip - 1);
	wire_str(rd, d->receiving_ip, sizeof d->receiving_ip - 1);
	wire_str(rd, d->receiving_mx, sizeof d->receiving_mx - 1);
	wire_str(rd, d->receiving_helo, sizeof d->receiving_helo - 1);
	wire_str(rd, d->reason, sizeof d->reason - 1);
	d->count = wire_u64(rd);
}

/* One policy's fields; -1 when a count is past its cap. */
static int get_policy(struct wire_rd *rd, struct tlsrpt_policy *p)
{
	p->type = wire_u8(rd);
	wire_str(rd, p->strings, sizeof p->strings - 1);
	wire_str(rd, p->mx_hosts, sizeof p->mx_hosts - 1);
	p->successes = wire_u64(rd);
	p->failures = wire_u64(rd);
	p->details_dropped = wire_u64(rd);
	p->ndetails = wire_u8(rd);
	if (p->ndetails > TLSRPT_DETAILS_MAX)
		return -1;
	for (size_t k = 0; k < p->ndetails && wire_ok(rd) == 0; k++)
		get_detail(rd, &p->details[k]);
	return 0;
}

int tlsrec_decode(const unsigned char *buf, size_t len, struct tlsrpt_report *r,
                  unsigned *flags)
{
	struct wire_rd rd;
	unsigned f;

	memset(r, 0, sizeof *r);
	wire_rd_init(&rd, buf, len);
	if (wire_u8(&rd) != TLSREC_VERSION)
		goto bad;
	f = wire_u8(&rd);
	r->day = wire_i64(&rd);
	wire_str(&rd, r->domain, DNS_NAME_MAX);
	r->sessions_dropped = wire_u64(&rd);
	r->npolicies = wire_u8(&rd);
	if (f > TLSREC_SENT || r->npolicies > TLSRPT_POLICIES_MAX)
		goto bad;
	for (size_t i = 0; i < r->npolicies && wire_ok(&rd) == 0; i++)
		if (get_policy(&rd, &r->policies[i]) != 0)
			goto bad;
	/* Nothing left over, and only what could have been encoded. */
	if (wire_end(&rd) != 0 || !report_ok(r))
		goto bad;
	if (flags != NULL)
		*flags = f;
	return QUEUE_OK;
bad:
	memset(r, 0, sizeof *r);
	if (flags != NULL)
		*flags = 0;
	return QUEUE_ECORRUPT;
}

/* ---- in LMDB ---- */

/* Remove the records of days before keep_from, and say whether day's
 * records number QUEUE_TLSRPT_DOMAINS already (*full). */
static int tidy(MDB_txn *txn, MDB_dbi dbi, int64_t keep_from, int64_t day, int *full)
{
	unsigned char k0[8];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n = 0;
	int rc;

	*full = 0;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size >= 8 && (int64_t)wire_be64(k.mv_data) >= keep_from)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	if (rc == 0 || rc == MDB_NOTFOUND) {
		wire_put_be64(k0, (uint64_t)day);
		k.mv_size = sizeof k0;
		k.mv_data = k0;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < QUEUE_TLSRPT_DOMAINS;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (k.mv_size < 8 || memcmp(k.mv_data, k0, 8) != 0)
				break;
			n++;
		}
		*full = n >= QUEUE_TLSRPT_DOMAINS;
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Merge delta into the stored record of its (day, domain) in txn: the
 * record as it will be is left in *r. */
static int merge_in(MDB_txn *txn, MDB_dbi dbi, unsigned char *key, size_t kl,
                    const struct tlsrpt_report *delta, struct tlsrpt_report *r, unsigned char *rec)
{
	MDB_val k = { kl, key }, v;
	unsigned flags = 0;
	size_t rl;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc == 0 && tlsrec_decode(v.mv_data, v.mv_size, r, &flags) != QUEUE_OK)
		return QUEUE_ECORRUPT;
	if (rc == MDB_NOTFOUND) {
		*r = *delta;
		memset(r->policies, 0, sizeof r->policies);
		r->npolicies = 0;
		r->sessions_dropped = 0;
	} else if (rc != 0) {
		return store_rc(rc);
	}
	if (tlsrpt_merge(r, delta) < 0 || (rl = tlsrec_encode(r, flags, rec, TLSREC_MAX)) == 0)
		return QUEUE_EINVAL;
	v.mv_size = rl;
	v.mv_data = rec;
	return store_rc(mdb_put(txn, dbi, &k, &v, 0));
}

int queue_tlsrpt_add(struct queue *q, const struct tlsrpt_report *delta, int64_t now)
{
	static struct tlsrpt_report r;        /* 40 KiB: off the stack; one thread */
	static unsigned char rec[TLSREC_MAX];
	unsigned char key[TLSREC_KEY_MAX];
	size_t kl = tlsrec_key(delta->day, delta->domain, key);
	MDB_val k = { kl, key }, v;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc, full = 0;

	if (kl == 0 || !report_ok(delta))
		return QUEUE_EINVAL;
	if ((rc = store_tlsrpt_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_write(q, &txn)) != 0)
		return store_rc(rc);
	rc = tidy(txn, dbi, tlsrpt_day(now) - (int64_t)QUEUE_TLSRPT_DAYS * 86400, delta->day, &full);
	if (rc != 0)
		return store_write_end(txn, rc);
	/* A day's domains are capped: a new one past the cap is not kept. */
	if (full && mdb_get(txn, dbi, &k, &v) == MDB_NOTFOUND)
		return store_write_end(txn, 0) == QUEUE_OK ? QUEUE_EFULL : QUEUE_EIO;
	rc = merge_in(txn, dbi, key, kl, delta, &r, rec);
	if (rc != QUEUE_OK) {
		store_write_end(txn, MDB_BAD_TXN);   /* aborted */
		return rc;
	}
	return store_write_end(txn, 0);
}

int queue_tlsrpt_get(struct queue *q, int64_t day, const char *domain, struct tlsrpt_report *r,
                     unsigned *flags)
{
	unsigned char key[TLSREC_KEY_MAX];
	size_t kl = tlsrec_key(day, domain, key);
	MDB_val k = { kl, key }, v;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	memset(r, 0, sizeof *r);
	if (kl == 0)
		return QUEUE_EINVAL;
	if ((rc = store_tlsrpt_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_read(q, &txn)) != 0)
		return store_rc(rc);
	rc = mdb_get(txn, dbi, &k, &v);
	/* Decoded (copied out) before the transaction ends. */
	rc = rc == 0 ? tlsrec_decode(v.mv_data, v.mv_size, r, flags) : store_rc(rc);
	store_read_end(q);
	return rc;
}

/*
 * The first record whose key is at or past key[0..*kl) (after it, when
 * after), with a key starting with prefix[0..plen) and, when unsent, not
 * yet marked sent: decoded into *r, its key into key (length *kl).  QUEUE_OK,
 * QUEUE_ENOTFOUND, or an error.  One read transaction, ended here.
 */
static int seek(struct queue *q, unsigned char *key, size_t *kl, int after,
                const unsigned char *prefix, size_t plen, int unsent, struct tlsrpt_report *r,
                unsigned *flags)
{
	MDB_val k = { *kl, key }, v;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc;

	if ((rc = store_tlsrpt_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_read(q, &txn)) != 0)
		return store_rc(rc);
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		store_read_end(q);
		return store_rc(rc);
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && after && k.mv_size == *kl && memcmp(k.mv_data, key, *kl) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	/* (the sent flag is the record's second byte: no decoding to skip it) */
	while (rc == 0 && unsent && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) <= 0 &&
	       v.mv_size >= 2 && (((const unsigned char *)v.mv_data)[1] & TLSREC_SENT))
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	if (rc == 0 && (k.mv_size < plen || k.mv_size > TLSREC_KEY_MAX ||
	                (unsent ? memcmp(k.mv_data, prefix, plen) > 0
	                        : memcmp(k.mv_data, prefix, plen) != 0)))
		rc = MDB_NOTFOUND;
	if (rc == 0) {
		memcpy(key, k.mv_data, k.mv_size);
		*kl = k.mv_size;
		rc = tlsrec_decode(v.mv_data, v.mv_size, r, flags);
	} else {
		rc = store_rc(rc);
	}
	mdb_cursor_close(cur);
	store_read_end(q);
	return rc;
}

int queue_tlsrpt_list(struct queue *q, int64_t day,
                      int (*fn)(void *arg, const struct tlsrpt_report *r, unsigned flags),
                      void *arg)
{
	struct tlsrpt_report *r = malloc(sizeof *r);
	unsigned char key[TLSREC_KEY_MAX], prefix[8];
	size_t kl = 8;
	unsigned flags = 0;
	int rc, after = 0;

	if (r == NULL)
		return QUEUE_EIO;
	wire_put_be64(prefix, (uint64_t)day);
	memcpy(key, prefix, 8);
	/* One record at a time, no transaction open while fn runs. */
	while ((rc = seek(q, key, &kl, after, prefix, 8, 0, r, &flags)) == QUEUE_OK) {
		after = 1;
		if (fn(arg, r, flags) != 0)
			break;
	}
	free(r);
	return rc == QUEUE_ENOTFOUND ? QUEUE_OK : rc;
}

int queue_tlsrpt_next(struct queue *q, int64_t before, struct tlsrpt_report *r)
{
	unsigned char key[TLSREC_KEY_MAX], last[8];
	size_t kl = 1;

	/* Keys of days before `before`: up to (before - 1) and any domain. */
	wire_put_be64(last, (uint64_t)(before - 1));
	key[0] = 0;
	return seek(q, key, &kl, 0, last, 8, 1, r, NULL);
}

int queue_tlsrpt_mark(struct queue *q, int64_t day, const char *domain)
{
	static unsigned char rec[TLSREC_MAX];
	unsigned char key[TLSREC_KEY_MAX];
	size_t kl = tlsrec_key(day, domain, key);
	MDB_val k = { kl, key }, v;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	if (kl == 0)
		return QUEUE_EINVAL;
	if ((rc = store_tlsrpt_dbi(q, &dbi)) != QUEUE_OK)
		return rc;
	if ((rc = store_write(q, &txn)) != 0)
		return store_rc(rc);
	if ((rc = mdb_get(txn, dbi, &k, &v)) != 0)
		return store_write_end(txn, rc);
	if (v.mv_size < 2 || v.mv_size > sizeof rec || ((unsigned char *)v.mv_data)[0] != TLSREC_VERSION)
		return store_write_end(txn, MDB_CORRUPTED);
	memcpy(rec, v.mv_data, v.mv_size);
	rec[1] |= TLSREC_SENT;
	v.mv_data = rec;
	return store_write_end(txn, mdb_put(txn, dbi, &k, &v, 0));
}
