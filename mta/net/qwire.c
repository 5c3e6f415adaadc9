/* mta/net/qwire.c -- see qwire.h */
#include "mta/net/qwire.h"

#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

/* ---- frame head ---- */

int qw_head_decode(const unsigned char h[QW_HEAD], uint16_t *type, uint32_t *len)
{
	*type = (uint16_t)((unsigned)h[0] << 8 | h[1]);
	*len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	return (h[2] | h[3]) == 0 && *len <= QW_MAX ? 0 : -1;
}

void qw_head_encode(unsigned char h[QW_HEAD], uint16_t type, uint32_t len)
{
	h[0] = (unsigned char)(type >> 8);
	h[1] = (unsigned char)type;
	h[2] = h[3] = 0;
	h[4] = (unsigned char)(len >> 24);
	h[5] = (unsigned char)(len >> 16);
	h[6] = (unsigned char)(len >> 8);
	h[7] = (unsigned char)len;
}

/* ---- output ---- */

static unsigned char *room(struct qw_out *o, size_t n)
{
	if (o->failed)
		return NULL;
	if (n > QW_HEAD + (size_t)QW_MAX - o->len) {
		o->failed = 1;
		return NULL;
	}
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		unsigned char *b;

		while (cap < o->len + n)
			cap *= 2;
		if ((b = realloc(o->buf, cap)) == NULL) {
			o->failed = 1;
			return NULL;
		}
		o->buf = b;
		o->cap = cap;
	}
	o->len += n;
	return o->buf + o->len - n;
}

void qw_begin(struct qw_out *o, uint16_t type)
{
	unsigned char *h;

	o->len = 0;
	o->failed = 0;
	if ((h = room(o, QW_HEAD)) != NULL)
		qw_head_encode(h, type, 0);
}

int qw_end(struct qw_out *o)
{
	if (o->failed || o->len < QW_HEAD)
		return -1;
	qw_head_encode(o->buf, (uint16_t)((unsigned)o->buf[0] << 8 | o->buf[1]),
	               (uint32_t)(o->len - QW_HEAD));
	return 0;
}

static void put_be(struct qw_out *o, uint64_t v, size_t n)
{
	unsigned char *p = room(o, n);

	if (p == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

void qw_u8(struct qw_out *o, uint8_t v) { put_be(o, v, 1); }
void qw_u16(struct qw_out *o, uint16_t v) { put_be(o, v, 2); }
void qw_u32(struct qw_out *o, uint32_t v) { put_be(o, v, 4); }
void qw_u64(struct qw_out *o, uint64_t v) { put_be(o, v, 8); }

void qw_bytes(struct qw_out *o, const void *p, size_t n)
{
	unsigned char *d = n ? room(o, n) : NULL;

	if (d != NULL)
		memcpy(d, p, n);
}

void qw_env(struct qw_out *o, const struct queue_envelope *env)
{
	size_t n = envelope_size(env);
	unsigned char *d;

	if (n == 0) {
		o->failed = 1;
		return;
	}
	if ((d = room(o, n)) != NULL && envelope_encode(env, d, n) != n)
		o->failed = 1;
}

void qw_free(struct qw_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof *o);
}

/* ---- input: a cursor that fails for good at the first bad read ---- */

struct rd {
	const unsigned char *p;
	size_t len, off;
	int bad;
};

static uint64_t get_be(struct rd *r, size_t n)
{
	uint64_t v = 0;

	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->p[r->off + i];
	r->off += n;
	return v;
}

static uint8_t g8(struct rd *r) { return (uint8_t)get_be(r, 1); }
static uint16_t g16(struct rd *r) { return (uint16_t)get_be(r, 2); }
static uint32_t g32(struct rd *r) { return (uint32_t)get_be(r, 4); }
static uint64_t g64(struct rd *r) { return get_be(r, 8); }

static const unsigned char *gbytes(struct rd *r, size_t n)
{
	const unsigned char *p;

	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

/* What is left, taken whole. */
static const unsigned char *grest(struct rd *r, size_t *n)
{
	*n = r->bad ? 0 : r->len - r->off;
	return gbytes(r, *n);
}

/* Read and consumed exactly. */
static int done(const struct rd *r)
{
	return !r->bad && r->off == r->len ? 0 : -1;
}

/* One COMMIT entry or UPDATE result; 0 or -1. */
static int commit_entry(struct rd *r, uint64_t *draft, const unsigned char **env, size_t *envlen)
{
	uint32_t n;

	*draft = g64(r);
	n = g32(r);
	*env = gbytes(r, n);
	*envlen = n;
	return r->bad || *draft == 0 || n == 0 ? -1 : 0;
}

static int result_entry(struct rd *r, struct queue_result *res, const unsigned char **err,
                        size_t *errlen)
{
	uint16_t n;

	res->rcpt = g32(r);
	res->state = g8(r);
	res->next_try = (int64_t)g64(r);
	n = g16(r);
	*err = gbytes(r, n);
	*errlen = n;
	if (r->bad || res->state > QUEUE_RCPT_BOUNCED || n > QUEUE_ERR_MAX ||
	    (n && memchr(*err, 0, n) != NULL))
		return -1;
	return 0;
}

int qw_req_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_req *q)
{
	struct rd r = { p, len, 0, 0 };
	uint32_t i;

	memset(q, 0, sizeof *q);
	q->type = type;
	switch (type) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		break;
	case QW_DRAFT_WRITE:
		q->id = g64(&r);
		q->data = grest(&r, &q->len);
		if (q->len == 0 || q->len > QW_CHUNK_MAX)
			return -1;
		break;
	case QW_DRAFT_ABORT:
	case QW_DELETE:
	case QW_RETRY:
		q->id = g64(&r);
		break;
	case QW_COMMIT:
		q->n = g32(&r);
		if (r.bad || q->n == 0 || q->n > QW_BATCH_MAX)
			return -1;
		q->items = p + r.off;
		q->items_len = len - r.off;
		for (i = 0; i < q->n; i++) {
			uint64_t d;
			const unsigned char *e;
			size_t el;

			if (commit_entry(&r, &d, &e, &el) != 0)
				return -1;
		}
		break;
	case QW_USAGE:
		q->data = grest(&r, &q->len);
		break;
	case QW_PROBE:
		q->now = (int64_t)g64(&r);
		break;
	case QW_DUE:
		q->now = (int64_t)g64(&r);
		q->cap = g32(&r);
		if (q->cap == 0 || q->cap > QW_DUE_MAX)
			return -1;
		break;
	case QW_GET:
		q->id = g64(&r);
		q->cap = g32(&r);
		break;
	case QW_BODY_READ:
		q->id = g64(&r);
		q->off = g64(&r);
		q->cap = g32(&r);
		if (q->cap == 0 || q->cap > QW_CHUNK_MAX)
			return -1;
		break;
	case QW_UPDATE: {
		uint32_t el;

		q->id = g64(&r);
		q->flags = g32(&r);
		q->dsn = g64(&r);
		el = g32(&r);
		q->data = gbytes(&r, el);
		q->len = el;
		q->n = g32(&r);
		if (r.bad || (q->dsn == 0) != (el == 0) || q->n == 0)
			return -1;
		q->items = p + r.off;
		q->items_len = len - r.off;
		for (i = 0; i < q->n; i++) {
			struct queue_result res;
			const unsigned char *e;
			size_t n;

			if (result_entry(&r, &res, &e, &n) != 0)
				return -1;
		}
		break;
	}
	case QW_HOLD:
		q->id = g64(&r);
		q->flags = g8(&r);
		if (q->flags > 1)
			return -1;
		break;
	default:
		return -1;
	}
	return done(&r);
}

int qw_commit_next(const struct qw_req *q, size_t *pos, uint64_t *draft,
                   const unsigned char **env, size_t *envlen)
{
	struct rd r = { q->items, q->items_len, *pos, 0 };

	if (*pos >= q->items_len || commit_entry(&r, draft, env, envlen) != 0)
		return 0;
	*pos = r.off;
	return 1;
}

int qw_result_next(const struct qw_req *q, size_t *pos, struct queue_result *res,
                   char errbuf[QUEUE_ERR_MAX + 1])
{
	struct rd r = { q->items, q->items_len, *pos, 0 };
	const unsigned char *e;
	size_t n;

	if (*pos >= q->items_len || result_entry(&r, res, &e, &n) != 0)
		return 0;
	if (n)
		memcpy(errbuf, e, n);
	errbuf[n] = 0;
	res->error = errbuf;
	*pos = r.off;
	return 1;
}

/* ---- replies ---- */

int qw_rep_decode(uint16_t type, const unsigned char *p, size_t len, struct qw_rep *q)
{
	struct rd r = { p, len, 0, 0 };

	memset(q, 0, sizeof *q);
	q->type = type;
	if (!(type & QW_REPLY))
		return -1;
	q->rc = (int32_t)g32(&r);
	switch (type & ~QW_REPLY) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		q->id = g64(&r);
		break;
	case QW_COMMIT:
		/* No rc: the head is the count.  Undo the read above. */
		r.off = 0;
		r.bad = 0;
		q->rc = 0;
		q->n = g32(&r);
		if (r.bad || q->n == 0 || q->n > QW_BATCH_MAX)
			return -1;
		q->data = gbytes(&r, (size_t)q->n * QW_COMMIT_RESULT);
		q->len = (size_t)q->n * QW_COMMIT_RESULT;
		break;
	case QW_USAGE:
		q->usage.messages = g64(&r);
		q->usage.bytes = g64(&r);
		q->usage.client_messages = g64(&r);
		q->usage.client_bytes = g64(&r);
		q->space.fs_avail = g64(&r);
		q->space.fs_total = g64(&r);
		q->space.file_free = g64(&r);
		q->space.map_free = g64(&r);
		break;
	case QW_PROBE:
	case QW_HOLD:
	case QW_DELETE:
		break;
	case QW_DUE:
		q->next = (int64_t)g64(&r);
		q->n = g32(&r);
		if (q->n > QW_DUE_MAX)
			return -1;
		q->data = gbytes(&r, (size_t)q->n * 8);
		q->len = (size_t)q->n * 8;
		break;
	case QW_GET:
		q->n = g32(&r);
		q->data = grest(&r, &q->len);
		if (q->rc != QUEUE_OK && q->len != 0)
			return -1;
		break;
	case QW_BODY_READ:
		q->data = grest(&r, &q->len);
		if (q->len > QW_CHUNK_MAX || (q->rc != QUEUE_OK && q->len != 0))
			return -1;
		break;
	case QW_UPDATE:
		q->n = g32(&r);
		q->gone = g8(&r);
		q->id = g64(&r);
		q->received = (int64_t)g64(&r);
		q->size = g64(&r);
		if (q->gone > 1)
			return -1;
		break;
	case QW_RETRY:
		q->count = g64(&r);
		break;
	default:
		return -1;
	}
	if (q->rc > 0 || q->rc < QUEUE_ECORRUPT)
		return -1;
	return done(&r);
}

uint64_t qw_due_id(const struct qw_rep *r, size_t i)
{
	struct rd d = { r->data + i * 8, 8, 0, 0 };

	return g64(&d);
}

void qw_commit_result(const struct qw_rep *r, size_t i, int *rc, uint64_t *id, int64_t *received,
                      uint64_t *size)
{
	struct rd d = { r->data + i * QW_COMMIT_RESULT, QW_COMMIT_RESULT, 0, 0 };
	int32_t v = (int32_t)g32(&d);

	*rc = v > 0 || v < QUEUE_ECORRUPT ? QUEUE_EIO : v;
	*id = g64(&d);
	*received = (int64_t)g64(&d);
	*size = g64(&d);
}
