/* mta/net/qwire.c -- see qwire.h */
#include "mta/net/qwire.h"

#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"
#include "queue/ext.h"
#include "queue/sts.h"
#include "queue/tlsrec.h"

/* ---- frame head ---- */

int qw_head_decode(const unsigned char h[QW_HEAD], uint16_t *type, uint32_t *len)
{
	struct wire_rd r;
	uint16_t pad;

	wire_rd_init(&r, h, QW_HEAD);
	*type = wire_u16(&r);
	pad = wire_u16(&r);
	*len = wire_u32(&r);
	return pad == 0 && *len <= QW_MAX ? 0 : -1;
}

void qw_head_encode(unsigned char h[QW_HEAD], uint16_t type, uint32_t len)
{
	struct wire_wr w;

	wire_wr_init(&w, h, QW_HEAD);
	wire_put_u16(&w, type);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, len);
}

/* ---- output ---- */

/* The writer's grow hook: double the buffer until need more bytes fit. */
static int grow(struct wire_wr *o, size_t need)
{
	size_t cap = o->cap ? o->cap : 4096;
	unsigned char *b;

	while (cap - o->len < need)
		cap *= 2;
	if ((b = realloc(o->buf, cap)) == NULL)
		return -1;
	o->buf = b;
	o->cap = cap;
	return 0;
}

void qw_begin(struct wire_wr *o, uint16_t type)
{
	unsigned char *h;

	o->grow = grow;
	o->max = QW_HEAD + (size_t)QW_MAX;
	o->len = 0;
	o->bad = 0;
	if ((h = wire_put_room(o, QW_HEAD)) != NULL)
		qw_head_encode(h, type, 0);
}

int qw_end(struct wire_wr *o)
{
	if (o->bad || o->len < QW_HEAD)
		return -1;
	qw_head_encode(o->buf, wire_be16(o->buf), (uint32_t)(o->len - QW_HEAD));
	return 0;
}

size_t qw_env_size(const struct queue_envelope *env)
{
	size_t n = envelope_size(env), x = ext_size(env);

	return n == 0 || x == 0 ? 0 : n + x;
}

void qw_env(struct wire_wr *o, const struct queue_envelope *env)
{
	size_t n = envelope_size(env), x = ext_size(env);
	unsigned char *d;

	if (n == 0 || x == 0) {
		o->bad = 1;
		return;
	}
	if ((d = wire_put_room(o, n + x)) != NULL &&
	    (envelope_encode(env, d, n) != n || ext_encode(env, d + n, x) != x))
		o->bad = 1;
}

int qw_env_decode(const unsigned char *p, size_t len, struct queue_envelope *env, size_t *envlen)
{
	size_t n = envelope_span(p, len);
	int rc;

	if (n == 0)
		return QUEUE_ECORRUPT;
	rc = envelope_decode(p, n, env);
	if (rc != QUEUE_OK && rc != QUEUE_EINVAL)
		return rc;
	if (ext_decode(p + n, len - n, env) != QUEUE_OK)
		return QUEUE_ECORRUPT;
	if (envlen != NULL)
		*envlen = n;
	return rc;
}

void qw_free(struct wire_wr *o)
{
	free(o->buf);
	memset(o, 0, sizeof *o);
}

/* ---- input ---- */

/* One COMMIT entry or UPDATE result; 0 or -1. */
static int commit_entry(struct wire_rd *r, uint64_t *draft, const unsigned char **env, size_t *envlen)
{
	uint32_t n;

	*draft = wire_u64(r);
	n = wire_u32(r);
	*env = wire_bytes(r, n);
	*envlen = n;
	return wire_ok(r) != 0 || *draft == 0 || n == 0 ? -1 : 0;
}

static int result_entry(struct wire_rd *r, struct queue_result *res, const unsigned char **err,
                        size_t *errlen)
{
	uint16_t n;

	res->rcpt = wire_u32(r);
	res->state = wire_u8(r);
	res->next_try = wire_i64(r);
	n = wire_u16(r);
	*err = wire_bytes(r, n);
	*errlen = n;
	if (wire_ok(r) != 0 || res->state > QUEUE_RCPT_BOUNCED || n > QUEUE_ERR_MAX ||
	    (n && memchr(*err, 0, n) != NULL))
		return -1;
	return 0;
}

/* A domain (str): a host name of at most DNS_NAME_MAX bytes, or bad. */
static void domain_in(struct wire_rd *r, char out[DNS_NAME_MAX + 1])
{
	wire_str(r, out, DNS_NAME_MAX);
	if (wire_ok(r) == 0 && !dns_name_ok(out, strlen(out)))
		wire_fail(r);
}

/* A record: the rest, 1..max bytes, or bad. */
static void record_in(struct wire_rd *r, const unsigned char **data, size_t *len, size_t max)
{
	*data = wire_rest(r, len);
	if (*len == 0 || *len > max)
		wire_fail(r);
}

/* The MTA-STS and TLS report requests (see qwire.h); 0, or -1 for
 * another type. */
static int tls_req_decode(struct wire_rd *r, struct qw_req *q)
{
	switch (q->type) {
	case QW_STS_GET:
		domain_in(r, q->domain);
		return 0;
	case QW_STS_PUT:
		domain_in(r, q->domain);
		record_in(r, &q->data, &q->len, STS_RECORD_MAX);
		return 0;
	case QW_TLSRPT_ADD:
		record_in(r, &q->data, &q->len, TLSREC_MAX);
		return 0;
	case QW_TLSRPT_NEXT:
		q->now = wire_i64(r);
		return 0;
	case QW_TLSRPT_SENT:
		q->now = wire_i64(r);
		domain_in(r, q->domain);
		q->id = wire_u64(r);
		q->data = wire_rest(r, &q->len);
		if ((q->id == 0) != (q->len == 0))
			wire_fail(r);
		return 0;
	default:
		return -1;
	}
}

/* A COMMIT's drafts: their count, then each entry checked (qw_commit_next
 * walks them again for the queue role).  0, or -1. */
static int commit_decode(struct wire_rd *r, struct qw_req *q)
{
	q->n = wire_u32(r);
	if (wire_ok(r) != 0 || q->n == 0 || q->n > QW_BATCH_MAX)
		return -1;
	q->items = r->p;
	q->items_len = r->left;
	for (uint32_t i = 0; i < q->n; i++) {
		uint64_t d;
		const unsigned char *e;
		size_t el;

		if (commit_entry(r, &d, &e, &el) != 0)
			return -1;
	}
	return 0;
}

/* An UPDATE: the message, flags, the report's draft and envelope (both or
 * neither), then each recipient's result checked.  0, or -1. */
static int update_decode(struct wire_rd *r, struct qw_req *q)
{
	uint32_t el;

	q->id = wire_u64(r);
	q->flags = wire_u32(r);
	q->dsn = wire_u64(r);
	el = wire_u32(r);
	q->data = wire_bytes(r, el);
	q->len = el;
	q->n = wire_u32(r);
	if (wire_ok(r) != 0 || (q->dsn == 0) != (el == 0) || q->n == 0)
		return -1;
	q->items = r->p;
	q->items_len = r->left;
	for (uint32_t i = 0; i < q->n; i++) {
		struct queue_result res;
		const unsigned char *e;
		size_t n;

		if (result_entry(r, &res, &e, &n) != 0)
			return -1;
	}
	return 0;
}

int qw_req_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_req *q)
{
	struct wire_rd r;

	wire_rd_init(&r, p, len);
	memset(q, 0, sizeof *q);
	q->type = type;
	switch (type) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		break;
	case QW_DRAFT_WRITE:
		q->id = wire_u64(&r);
		q->data = wire_rest(&r, &q->len);
		if (q->len == 0 || q->len > QW_CHUNK_MAX)
			return -1;
		break;
	case QW_DRAFT_ABORT:
	case QW_DELETE:
	case QW_RETRY:
		q->id = wire_u64(&r);
		break;
	case QW_DRAFT_PREPEND:
		q->id = wire_u64(&r);
		q->data = wire_rest(&r, &q->len);
		if (q->len == 0 || q->len > QUEUE_PREFIX_MAX)
			return -1;
		break;
	case QW_COMMIT:
		if (commit_decode(&r, q) != 0)
			return -1;
		break;
	case QW_USAGE:
		q->data = wire_rest(&r, &q->len);
		break;
	case QW_PROBE:
		q->now = wire_i64(&r);
		break;
	case QW_DUE:
		q->now = wire_i64(&r);
		q->cap = wire_u32(&r);
		if (q->cap == 0 || q->cap > QW_DUE_MAX)
			return -1;
		break;
	case QW_GET:
		q->id = wire_u64(&r);
		q->cap = wire_u32(&r);
		break;
	case QW_BODY_READ:
		q->id = wire_u64(&r);
		q->off = wire_u64(&r);
		q->cap = wire_u32(&r);
		if (q->cap == 0 || q->cap > QW_CHUNK_MAX)
			return -1;
		break;
	case QW_UPDATE:
		if (update_decode(&r, q) != 0)
			return -1;
		break;
	case QW_HOLD:
		q->id = wire_u64(&r);
		q->flags = wire_u8(&r);
		if (q->flags > 1)
			return -1;
		break;
	default:
		if (tls_req_decode(&r, q) != 0)
			return -1;
		break;
	}
	return wire_end(&r);
}

int qw_commit_next(const struct qw_req *q, size_t *pos, uint64_t *draft,
                   const unsigned char **env, size_t *envlen)
{
	struct wire_rd r;

	if (*pos >= q->items_len)
		return 0;
	wire_rd_init(&r, q->items + *pos, q->items_len - *pos);
	if (commit_entry(&r, draft, env, envlen) != 0)
		return 0;
	*pos = q->items_len - r.left;
	return 1;
}

int qw_result_next(const struct qw_req *q, size_t *pos, struct queue_result *res,
                   char errbuf[QUEUE_ERR_MAX + 1])
{
	struct wire_rd r;
	const unsigned char *e;
	size_t n;

	if (*pos >= q->items_len)
		return 0;
	wire_rd_init(&r, q->items + *pos, q->items_len - *pos);
	if (result_entry(&r, res, &e, &n) != 0)
		return 0;
	if (n)
		memcpy(errbuf, e, n);
	errbuf[n] = 0;
	res->error = errbuf;
	*pos = q->items_len - r.left;
	return 1;
}

/* ---- replies ---- */

/* A COMMIT reply: its count, then a result per message. */
static int rep_commit(struct wire_rd *r, struct qw_rep *q)
{
	q->rc = 0;
	q->n = wire_u32(r);
	if (wire_ok(r) != 0 || q->n == 0 || q->n > QW_BATCH_MAX)
		return -1;
	q->data = wire_bytes(r, (size_t)q->n * QW_COMMIT_RESULT);
	q->len = (size_t)q->n * QW_COMMIT_RESULT;
	return 0;
}

static void rep_usage(struct wire_rd *r, struct qw_rep *q)
{
	q->usage.messages = wire_u64(r);
	q->usage.bytes = wire_u64(r);
	q->usage.client_messages = wire_u64(r);
	q->usage.client_bytes = wire_u64(r);
	q->space.fs_avail = wire_u64(r);
	q->space.fs_total = wire_u64(r);
	q->space.file_free = wire_u64(r);
	q->space.map_free = wire_u64(r);
}

/* The largest record a STS_GET or TLSRPT_NEXT reply may carry. */
static size_t rep_record_max(uint16_t type)
{
	return (type & ~QW_REPLY) == QW_STS_GET ? STS_RECORD_MAX : TLSREC_MAX;
}

int qw_rep_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_rep *q)
{
	struct wire_rd r;

	wire_rd_init(&r, p, len);
	memset(q, 0, sizeof *q);
	q->type = type;
	if (!(type & QW_REPLY))
		return -1;
	q->rc = wire_i32(&r);
	switch (type & ~QW_REPLY) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		q->id = wire_u64(&r);
		break;
	case QW_COMMIT:
		/* No rc: the head is the count.  Read again from the start. */
		wire_rd_init(&r, p, len);
		if (rep_commit(&r, q) != 0)
			return -1;
		break;
	case QW_USAGE:
		rep_usage(&r, q);
		break;
	case QW_PROBE:
	case QW_HOLD:
	case QW_DELETE:
		break;
	case QW_DUE:
		q->next = wire_i64(&r);
		q->n = wire_u32(&r);
		if (q->n > QW_DUE_MAX)
			return -1;
		q->data = wire_bytes(&r, (size_t)q->n * 8);
		q->len = (size_t)q->n * 8;
		break;
	case QW_GET:
		q->n = wire_u32(&r);
		q->data = wire_rest(&r, &q->len);
		if (q->rc != QUEUE_OK && q->len != 0)
			return -1;
		break;
	case QW_BODY_READ:
		q->data = wire_rest(&r, &q->len);
		if (q->len > QW_CHUNK_MAX || (q->rc != QUEUE_OK && q->len != 0))
			return -1;
		break;
	case QW_UPDATE:
		q->n = wire_u32(&r);
		q->gone = wire_u8(&r);
		q->id = wire_u64(&r);
		q->received = wire_i64(&r);
		q->size = wire_u64(&r);
		if (q->gone > 1)
			return -1;
		break;
	case QW_RETRY:
		q->count = wire_u64(&r);
		break;
	case QW_STS_PUT:
	case QW_TLSRPT_ADD:
		break;
	case QW_STS_GET:
	case QW_TLSRPT_NEXT:
		/* The record, only with rc 0. */
		q->data = wire_rest(&r, &q->len);
		if (q->rc == QUEUE_OK ? q->len == 0 || q->len > rep_record_max(type) : q->len != 0)
			return -1;
		break;
	case QW_TLSRPT_SENT:
		q->id = wire_u64(&r);
		break;
	default:
		return -1;
	}
	if (q->rc > 0 || q->rc < QUEUE_ECORRUPT)
		return -1;
	return wire_end(&r);
}

uint64_t qw_due_id(const struct qw_rep *r, size_t i)
{
	return wire_be64(r->data + i * 8);
}

void qw_commit_result(const struct qw_rep *r, size_t i, int *rc, uint64_t *id, int64_t *received,
                      uint64_t *size)
{
	struct wire_rd d;
	int32_t v;

	wire_rd_init(&d, r->data + i * QW_COMMIT_RESULT, QW_COMMIT_RESULT);
	v = wire_i32(&d);
	*rc = v > 0 || v < QUEUE_ECORRUPT ? QUEUE_EIO : v;
	*id = wire_u64(&d);
	*received = wire_i64(&d);
	*size = wire_u64(&d);
}
