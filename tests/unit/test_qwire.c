/*
 * tests/unit/test_qwire.c -- the queue role's typed messages (mta/net/qwire.h)
 * and the supervisor link's (mta/net/plink.h): every request and reply type
 * encoded with the qw_* encoders and decoded back field by field, then cut
 * at every length, given one byte too many, sent under every other type
 * number, and with each field out of its range.  The roles drop a link on
 * any frame that does not decode (mta/roles/queue_role.c, mta/net/queue_client.c): these are the
 * decoders they trust.
 */
#include "t.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mta/net/plink.h"
#include "mta/net/qwire.h"
#include "queue/envelope.h"

/* ---- samples ---- */

static struct queue_rcpt rcpts[2];

/* An envelope with two recipients, id as given. */
static struct queue_envelope sample_env(queue_id id)
{
	struct queue_envelope e;

	memset(&e, 0, sizeof e);
	memset(rcpts, 0, sizeof rcpts);
	e.id = id;
	e.received = 1700000000;
	e.flags = QUEUE_ENV_8BITMIME;
	e.size = 4242;
	strcpy(e.sender, "alice@example.test");
	strcpy(e.helo, "client.example.test");
	strcpy(e.client, "192.0.2.7");
	strcpy(rcpts[0].addr, "bob@example.test");
	strcpy(rcpts[1].addr, "carol@example.test");
	rcpts[1].state = QUEUE_RCPT_PENDING;
	rcpts[1].next_try = 1700000600;
	strcpy(rcpts[1].last_error, "451 later");
	rcpts[1].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY;
	strcpy(rcpts[1].orcpt, "rfc822;carol+2Bold@example.test");
	e.dsn_ret = DSN_RET_FULL;
	strcpy(e.dsn_envid, "ENV+2B1");
	e.rcpts = rcpts;
	e.nrcpts = e.rcpt_cap = 2;
	return e;
}

/* The envelope's bytes in buf; their length. */
static size_t env_bytes(queue_id id, unsigned char *buf, size_t cap)
{
	struct queue_envelope e = sample_env(id);
	struct wire_wr w;

	wire_wr_init(&w, buf, cap);
	qw_env(&w, &e);
	return wire_wr_end(&w);
}

static unsigned char pattern[QW_CHUNK_MAX + 1];

static void fill_pattern(void)
{
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)(i * 31 + 7);
}

/* The request types, each with a frame built in a sample. */
static const uint16_t req_types[] = {
	QW_DRAFT_BEGIN, QW_DRAFT_WRITE, QW_DRAFT_ABORT, QW_COMMIT, QW_USAGE, QW_PROBE, QW_OLDEST,
	QW_DUE, QW_GET, QW_BODY_READ, QW_UPDATE, QW_HOLD, QW_RETRY, QW_DELETE
};
#define NREQ (sizeof req_types / sizeof req_types[0])

/* What a request sample should decode to. */
struct want_req {
	struct qw_req q;           /* scalars; data/len: the expected bytes */
	int open_tail;             /* the payload ends with "the rest" */
};

static unsigned char env_a[2048], env_b[2048];
static size_t env_a_len, env_b_len;

/* Build a valid frame of type into o (head included); *w what it says. */
static void build_req(uint16_t type, struct wire_wr *o, struct want_req *w)
{
	memset(w, 0, sizeof *w);
	w->q.type = type;
	qw_begin(o, type);
	switch (type) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		break;
	case QW_DRAFT_WRITE:
		w->q.id = 0x0102030405060708u;
		w->q.data = pattern;
		w->q.len = 100;
		w->open_tail = 1;
		wire_put_u64(o, w->q.id);
		wire_put_bytes(o, pattern, 100);
		break;
	case QW_DRAFT_ABORT:
	case QW_DELETE:
	case QW_RETRY:
		w->q.id = 0xfedcba9876543210u;
		wire_put_u64(o, w->q.id);
		break;
	case QW_COMMIT:
		w->q.n = 2;
		wire_put_u32(o, 2);
		wire_put_u64(o, 11);
		wire_put_u32(o, (uint32_t)env_a_len);
		wire_put_bytes(o, env_a, env_a_len);
		wire_put_u64(o, 12);
		wire_put_u32(o, (uint32_t)env_b_len);
		wire_put_bytes(o, env_b, env_b_len);
		w->q.items_len = 2 * 12 + env_a_len + env_b_len;
		break;
	case QW_USAGE: {
		struct queue_envelope e = sample_env(11);

		qw_env(o, &e);
		w->q.data = env_a;
		w->q.len = env_a_len;
		w->open_tail = 1;
		break;
	}
	case QW_PROBE:
		w->q.now = -1234567;
		wire_put_u64(o, (uint64_t)w->q.now);
		break;
	case QW_DUE:
		w->q.now = 1700000000;
		w->q.cap = QW_DUE_MAX;
		wire_put_u64(o, (uint64_t)w->q.now);
		wire_put_u32(o, w->q.cap);
		break;
	case QW_GET:
		w->q.id = 77;
		w->q.cap = 0xffffffffu;
		wire_put_u64(o, 77);
		wire_put_u32(o, w->q.cap);
		break;
	case QW_BODY_READ:
		w->q.id = 78;
		w->q.off = 0x1122334455667788u;
		w->q.cap = QW_CHUNK_MAX;
		wire_put_u64(o, 78);
		wire_put_u64(o, w->q.off);
		wire_put_u32(o, w->q.cap);
		break;
	case QW_UPDATE:
		w->q.id = 79;
		w->q.flags = QUEUE_ENV_WARNED;
		w->q.dsn = 12;
		w->q.data = env_b;
		w->q.len = env_b_len;
		w->q.n = 2;
		wire_put_u64(o, 79);
		wire_put_u32(o, w->q.flags);
		wire_put_u64(o, 12);
		wire_put_u32(o, (uint32_t)env_b_len);
		wire_put_bytes(o, env_b, env_b_len);
		wire_put_u32(o, 2);
		wire_put_u32(o, 0);
		wire_put_u8(o, QUEUE_RCPT_DELIVERED);
		wire_put_u64(o, 0);
		wire_put_u16(o, 6);
		wire_put_bytes(o, "250 ok", 6);
		wire_put_u32(o, 1);
		wire_put_u8(o, QUEUE_RCPT_BOUNCED);
		wire_put_u64(o, (uint64_t)-1);
		wire_put_u16(o, 0);
		w->q.items_len = 2 * 15 + 6;
		break;
	case QW_HOLD:
		w->q.id = 80;
		w->q.flags = 1;
		wire_put_u64(o, 80);
		wire_put_u8(o, 1);
		break;
	}
}

static int same_req(const struct qw_req *a, const struct qw_req *b)
{
	return a->type == b->type && a->id == b->id && a->now == b->now && a->off == b->off &&
	       a->cap == b->cap && a->n == b->n && a->flags == b->flags && a->dsn == b->dsn &&
	       a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
	       a->items_len == b->items_len;
}

/* Decode a payload expecting failure. */
static int req_bad(uint16_t type, const unsigned char *p, size_t len)
{
	struct qw_req q;

	return qw_req_decode(type, p, len, &q) == -1;
}

static int rep_bad(uint16_t type, const unsigned char *p, size_t len)
{
	struct qw_rep r;

	return qw_rep_decode(type, p, len, &r) == -1;
}

/* Does p[0..len) fail as an envelope? */
static int env_bad(const unsigned char *p, size_t len)
{
	struct queue_envelope e;

	memset(&e, 0, sizeof e);
	return qw_env_decode(p, len, &e, NULL) != QUEUE_OK;
}

/* A copy of p[0..len) with one zero byte more (malloc; NULL fails the test). */
static unsigned char *plus_one(const unsigned char *p, size_t len)
{
	unsigned char *x = malloc(len + 1);

	CHECK(x != NULL);
	if (x != NULL) {
		memcpy(x, p, len);
		x[len] = 0;
	}
	return x;
}

/* ---- the frame head ---- */

/* An envelope on the link: its record, then its DSN parameters. */
static void test_env_codec(void)
{
	static unsigned char buf[4096];
	struct queue_envelope e = sample_env(77), d;
	struct queue_rcpt r[2];
	size_t n = env_bytes(77, buf, sizeof buf), el = 0;

	CHECK(n > 0 && n == qw_env_size(&e) && n > envelope_size(&e));
	memset(&d, 0, sizeof d);
	d.rcpts = r;
	d.rcpt_cap = 2;
	CHECK(qw_env_decode(buf, n, &d, &el) == QUEUE_OK && el == envelope_size(&e));
	CHECK(d.id == 77 && d.nrcpts == 2 && strcmp(r[1].addr, "carol@example.test") == 0);
	CHECK(d.dsn_ret == DSN_RET_FULL && strcmp(d.dsn_envid, "ENV+2B1") == 0);
	CHECK(r[0].notify == 0 && r[0].orcpt[0] == 0);
	CHECK(r[1].notify == (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY));
	CHECK(strcmp(r[1].orcpt, "rfc822;carol+2Bold@example.test") == 0);
	/* Too few places for the recipients: counted, and said. */
	d.rcpt_cap = 1;
	CHECK(qw_env_decode(buf, n, &d, NULL) == QUEUE_EINVAL && d.nrcpts == 2);
	d.rcpt_cap = 2;
	/* Every truncation, the record alone among them, and a byte more. */
	for (size_t cut = 0; cut < n; cut++) {
		unsigned char *h = malloc(cut ? cut : 1);
		memcpy(h, buf, cut);
		CHECKF(qw_env_decode(h, cut, &d, NULL) == QUEUE_ECORRUPT, "cut %zu", cut);
		free(h);
	}
	buf[n] = 0;
	CHECK(qw_env_decode(buf, n + 1, &d, NULL) == QUEUE_ECORRUPT);
}

static void test_head(void)
{
	unsigned char h[QW_HEAD];
	uint16_t t;
	uint32_t l;

	qw_head_encode(h, QW_COMMIT | QW_REPLY, 0x00abcdef);
	CHECK(h[0] == 0x80 && h[1] == QW_COMMIT && h[2] == 0 && h[3] == 0);
	CHECK(qw_head_decode(h, &t, &l) == 0 && t == (QW_COMMIT | QW_REPLY) && l == 0x00abcdef);
	qw_head_encode(h, QW_KICK, 0);
	CHECK(qw_head_decode(h, &t, &l) == 0 && t == QW_KICK && l == 0);
	qw_head_encode(h, 0xffff, QW_MAX);
	CHECK(qw_head_decode(h, &t, &l) == 0 && t == 0xffff && l == QW_MAX);
	/* A payload over QW_MAX, up to the largest u32. */
	qw_head_encode(h, QW_USAGE, QW_MAX + 1);
	CHECK(qw_head_decode(h, &t, &l) == -1);
	qw_head_encode(h, QW_USAGE, 0xffffffffu);
	CHECK(qw_head_decode(h, &t, &l) == -1);
	/* Every nonzero pad. */
	for (unsigned v = 1; v <= 0xffff; v++) {
		qw_head_encode(h, QW_USAGE, 8);
		h[2] = (unsigned char)(v >> 8);
		h[3] = (unsigned char)v;
		CHECKF(qw_head_decode(h, &t, &l) == -1, "pad %04x", v);
	}
}

/* ---- the output buffer ---- */

static void test_out(void)
{
	struct wire_wr o = { 0 };
	struct queue_envelope e = sample_env(5);
	uint16_t t;
	uint32_t l;

	qw_begin(&o, QW_PROBE);
	wire_put_u64(&o, 9);
	CHECK(qw_end(&o) == 0 && o.len == QW_HEAD + 8);
	CHECK(qw_head_decode(o.buf, &t, &l) == 0 && t == QW_PROBE && l == 8);
	/* More than QW_MAX: the frame fails, nothing is copied. */
	qw_begin(&o, QW_DRAFT_WRITE);
	wire_put_bytes(&o, pattern, 1);
	wire_put_bytes(&o, pattern, QW_MAX);
	CHECK(o.bad == 1 && qw_end(&o) == -1);
	/* qw_begin starts afresh. */
	qw_begin(&o, QW_OLDEST);
	CHECK(o.bad == 0 && qw_end(&o) == 0 && o.len == QW_HEAD);
	/* An envelope that does not encode (more recipients than its array). */
	e.nrcpts = 3;
	qw_begin(&o, QW_USAGE);
	qw_env(&o, &e);
	CHECK(qw_end(&o) == -1);
	qw_free(&o);
	CHECK(o.buf == NULL && o.len == 0);
	qw_begin(&o, QW_OLDEST);  /* usable again after qw_free */
	CHECK(qw_end(&o) == 0);
	qw_free(&o);
}

/* ---- requests ---- */

static void test_req_roundtrip(void)
{
	struct wire_wr o = { 0 };

	for (size_t i = 0; i < NREQ; i++) {
		struct want_req w;
		struct qw_req q;
		uint16_t t;
		uint32_t l;
		const unsigned char *p;
		size_t len;

		build_req(req_types[i], &o, &w);
		CHECKF(qw_end(&o) == 0, "type %u", req_types[i]);
		CHECKF(qw_head_decode(o.buf, &t, &l) == 0 && t == req_types[i] &&
		       l == o.len - QW_HEAD, "type %u", req_types[i]);
		p = o.buf + QW_HEAD;
		len = o.len - QW_HEAD;
		CHECKF(qw_req_decode(req_types[i], p, len, &q) == 0, "type %u", req_types[i]);
		CHECKF(same_req(&q, &w.q), "type %u", req_types[i]);
		/* Every truncation. */
		for (size_t cut = 0; cut < len; cut++) {
			int rc = qw_req_decode(req_types[i], p, cut, &q);

			if (!w.open_tail) {
				CHECKF(rc == -1, "type %u cut %zu", req_types[i], cut);
			} else if (req_types[i] == QW_DRAFT_WRITE) {
				/* A shorter write, down to one byte after the id. */
				CHECKF(rc == (cut > 8 ? 0 : -1), "type %u cut %zu", req_types[i], cut);
			} else {
				/* USAGE: "the rest" is an envelope, which then fails
				 * (the queue role drops the link), or nothing. */
				CHECKF(rc == 0 && q.len == cut, "cut %zu", cut);
				CHECKF(cut == 0 || env_bad(q.data, q.len), "cut %zu", cut);
			}
		}
		/* One byte left over. */
		unsigned char *x = plus_one(p, len);

		if (x != NULL && !w.open_tail) {
			CHECKF(req_bad(req_types[i], x, len + 1), "type %u", req_types[i]);
		} else if (x != NULL && req_types[i] == QW_USAGE) {
			CHECK(qw_req_decode(QW_USAGE, x, len + 1, &q) == 0 && q.len == len + 1);
			CHECK(env_bad(q.data, q.len));
		}
		free(x);
	}
	qw_free(&o);
}

/* The iterators give back what was encoded, and stop at the end. */
static void test_req_iterators(void)
{
	struct wire_wr o = { 0 };
	struct want_req w;
	struct qw_req q;
	struct queue_result r;
	char err[QUEUE_ERR_MAX + 1];
	uint64_t d;
	const unsigned char *e;
	size_t el, pos = 0;

	build_req(QW_COMMIT, &o, &w);
	CHECK(qw_end(&o) == 0);
	CHECK(qw_req_decode(QW_COMMIT, o.buf + QW_HEAD, o.len - QW_HEAD, &q) == 0);
	CHECK(qw_commit_next(&q, &pos, &d, &e, &el) == 1);
	CHECK(d == 11 && el == env_a_len && memcmp(e, env_a, el) == 0);
	CHECK(qw_commit_next(&q, &pos, &d, &e, &el) == 1);
	CHECK(d == 12 && el == env_b_len && memcmp(e, env_b, el) == 0);
	CHECK(pos == q.items_len);
	CHECK(qw_commit_next(&q, &pos, &d, &e, &el) == 0);

	build_req(QW_UPDATE, &o, &w);
	CHECK(qw_end(&o) == 0);
	CHECK(qw_req_decode(QW_UPDATE, o.buf + QW_HEAD, o.len - QW_HEAD, &q) == 0);
	pos = 0;
	CHECK(qw_result_next(&q, &pos, &r, err) == 1);
	CHECK(r.rcpt == 0 && r.state == QUEUE_RCPT_DELIVERED && r.next_try == 0 &&
	      strcmp(r.error, "250 ok") == 0 && r.error == err);
	CHECK(qw_result_next(&q, &pos, &r, err) == 1);
	CHECK(r.rcpt == 1 && r.state == QUEUE_RCPT_BOUNCED && r.next_try == -1 &&
	      strcmp(r.error, "") == 0);
	CHECK(pos == q.items_len);
	CHECK(qw_result_next(&q, &pos, &r, err) == 0);
	qw_free(&o);
}

/* Every type number that is not a request, with every sample payload. */
static void test_req_unknown_types(void)
{
	struct wire_wr o[NREQ];
	struct want_req w;
	unsigned bad = 0;

	memset(o, 0, sizeof o);
	for (size_t i = 0; i < NREQ; i++) {
		build_req(req_types[i], &o[i], &w);
		CHECK(qw_end(&o[i]) == 0);
	}
	for (unsigned t = 0; t <= 0xffff; t++) {
		if (t >= QW_DRAFT_BEGIN && t < QW_NTYPES)
			continue;
		if (!req_bad((uint16_t)t, NULL, 0))
			bad++;
		for (size_t i = 0; i < NREQ; i++)
			if (!req_bad((uint16_t)t, o[i].buf + QW_HEAD, o[i].len - QW_HEAD))
				bad++;
	}
	CHECKF(bad == 0, "%u decoded", bad);
	/* And each sample under its own number still decodes. */
	for (size_t i = 0; i < NREQ; i++)
		CHECK(!req_bad(req_types[i], o[i].buf + QW_HEAD, o[i].len - QW_HEAD));
	for (size_t i = 0; i < NREQ; i++)
		qw_free(&o[i]);
}

/* A COMMIT with n entries of a 1-byte envelope (the decoder does not read
 * envelopes; the queue role does). */
static int commit_n(struct wire_wr *o, uint32_t n, uint32_t entries)
{
	qw_begin(o, QW_COMMIT);
	wire_put_u32(o, n);
	for (uint32_t i = 0; i < entries; i++) {
		wire_put_u64(o, i + 1);
		wire_put_u32(o, 1);
		wire_put_u8(o, 0x5a);
	}
	return qw_end(o);
}

/* An UPDATE of one result; dsn and its envelope as given. */
static void update_one(struct wire_wr *o, uint64_t dsn, size_t envlen, uint8_t state,
                       const char *err, size_t errlen)
{
	qw_begin(o, QW_UPDATE);
	wire_put_u64(o, 5);
	wire_put_u32(o, 0);
	wire_put_u64(o, dsn);
	wire_put_u32(o, (uint32_t)envlen);
	wire_put_bytes(o, env_a, envlen);
	wire_put_u32(o, 1);
	wire_put_u32(o, 0);
	wire_put_u8(o, state);
	wire_put_u64(o, 0);
	wire_put_u16(o, (uint16_t)errlen);
	wire_put_bytes(o, err, errlen);
	qw_end(o);
}

static int out_ok(uint16_t type, const struct wire_wr *o)
{
	struct qw_req q;

	return !o->bad && qw_req_decode(type, o->buf + QW_HEAD, o->len - QW_HEAD, &q) == 0;
}

static void test_req_ranges(void)
{
	struct wire_wr o = { 0 };
	static char longerr[QUEUE_ERR_MAX + 2];

	/* DRAFT_WRITE: 1..QW_CHUNK_MAX bytes. */
	for (size_t n = 0; n <= QW_CHUNK_MAX + 1; n += (n < 4 || n > QW_CHUNK_MAX - 4) ? 1 : 4093) {
		qw_begin(&o, QW_DRAFT_WRITE);
		wire_put_u64(&o, 1);
		wire_put_bytes(&o, pattern, n);
		CHECK(qw_end(&o) == 0);
		CHECKF(out_ok(QW_DRAFT_WRITE, &o) == (n >= 1 && n <= QW_CHUNK_MAX), "n %zu", n);
	}
	/* COMMIT: 1..QW_BATCH_MAX entries, as many as it says. */
	CHECK(commit_n(&o, 0, 0) == 0 && !out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, 1, 1) == 0 && out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, QW_BATCH_MAX, QW_BATCH_MAX) == 0 && out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, QW_BATCH_MAX + 1, QW_BATCH_MAX + 1) == 0 && !out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, 0xffffffffu, 1) == 0 && !out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, 2, 1) == 0 && !out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, 1, 2) == 0 && !out_ok(QW_COMMIT, &o));
	CHECK(commit_n(&o, 3, 0) == 0 && !out_ok(QW_COMMIT, &o));
	/* An entry with draft 0, or an empty envelope, or one longer than the frame. */
	qw_begin(&o, QW_COMMIT);
	wire_put_u32(&o, 1);
	wire_put_u64(&o, 0);
	wire_put_u32(&o, 1);
	wire_put_u8(&o, 1);
	CHECK(qw_end(&o) == 0 && !out_ok(QW_COMMIT, &o));
	qw_begin(&o, QW_COMMIT);
	wire_put_u32(&o, 1);
	wire_put_u64(&o, 7);
	wire_put_u32(&o, 0);
	CHECK(qw_end(&o) == 0 && !out_ok(QW_COMMIT, &o));
	qw_begin(&o, QW_COMMIT);
	wire_put_u32(&o, 1);
	wire_put_u64(&o, 7);
	wire_put_u32(&o, 0xffffffffu);
	wire_put_u8(&o, 1);
	CHECK(qw_end(&o) == 0 && !out_ok(QW_COMMIT, &o));
	/* HOLD: 0 or 1. */
	for (unsigned f = 0; f <= 0xff; f++) {
		qw_begin(&o, QW_HOLD);
		wire_put_u64(&o, 3);
		wire_put_u8(&o, (uint8_t)f);
		CHECK(qw_end(&o) == 0);
		CHECKF(out_ok(QW_HOLD, &o) == (f <= 1), "hold %u", f);
	}
	/* DUE: cap 1..QW_DUE_MAX. */
	{
		static const uint32_t caps[] = { 0, 1, QW_DUE_MAX, QW_DUE_MAX + 1, 0xffffffffu };

		for (size_t i = 0; i < 5; i++) {
			qw_begin(&o, QW_DUE);
			wire_put_u64(&o, 100);
			wire_put_u32(&o, caps[i]);
			CHECK(qw_end(&o) == 0);
			CHECKF(out_ok(QW_DUE, &o) == (caps[i] >= 1 && caps[i] <= QW_DUE_MAX), "cap %u",
			       caps[i]);
		}
	}
	/* BODY_READ: cap 1..QW_CHUNK_MAX. */
	{
		static const uint32_t caps[] = { 0, 1, QW_CHUNK_MAX, QW_CHUNK_MAX + 1 };

		for (size_t i = 0; i < 4; i++) {
			qw_begin(&o, QW_BODY_READ);
			wire_put_u64(&o, 1);
			wire_put_u64(&o, 0);
			wire_put_u32(&o, caps[i]);
			CHECK(qw_end(&o) == 0);
			CHECKF(out_ok(QW_BODY_READ, &o) == (caps[i] >= 1 && caps[i] <= QW_CHUNK_MAX),
			       "cap %u", caps[i]);
		}
	}
	/* UPDATE: a state past BOUNCED, an error with a NUL or too long, a
	 * bounce draft without its envelope or the other way round, no results. */
	update_one(&o, 0, 0, QUEUE_RCPT_BOUNCED, "550 no", 6);
	CHECK(out_ok(QW_UPDATE, &o));
	update_one(&o, 9, env_a_len, QUEUE_RCPT_BOUNCED, "550 no", 6);
	CHECK(out_ok(QW_UPDATE, &o));
	for (unsigned s = 3; s <= 0xff; s++) {
		update_one(&o, 0, 0, (uint8_t)s, "x", 1);
		CHECKF(!out_ok(QW_UPDATE, &o), "state %u", s);
	}
	update_one(&o, 0, 0, QUEUE_RCPT_PENDING, "550\0no", 6);
	CHECK(!out_ok(QW_UPDATE, &o));
	update_one(&o, 0, 0, QUEUE_RCPT_PENDING, "\0", 1);
	CHECK(!out_ok(QW_UPDATE, &o));
	memset(longerr, 'e', sizeof longerr);
	update_one(&o, 0, 0, QUEUE_RCPT_PENDING, longerr, QUEUE_ERR_MAX);
	CHECK(out_ok(QW_UPDATE, &o));
	update_one(&o, 0, 0, QUEUE_RCPT_PENDING, longerr, QUEUE_ERR_MAX + 1);
	CHECK(!out_ok(QW_UPDATE, &o));
	update_one(&o, 9, 0, QUEUE_RCPT_BOUNCED, "550 no", 6);       /* dsn id, no envelope */
	CHECK(!out_ok(QW_UPDATE, &o));
	update_one(&o, 0, env_a_len, QUEUE_RCPT_BOUNCED, "550 no", 6); /* envelope, no dsn id */
	CHECK(!out_ok(QW_UPDATE, &o));
	qw_begin(&o, QW_UPDATE);
	wire_put_u64(&o, 5);
	wire_put_u32(&o, 0);
	wire_put_u64(&o, 0);
	wire_put_u32(&o, 0);
	wire_put_u32(&o, 0);
	CHECK(qw_end(&o) == 0 && !out_ok(QW_UPDATE, &o));           /* n = 0 */
	qw_begin(&o, QW_UPDATE);
	wire_put_u64(&o, 5);
	wire_put_u32(&o, 0);
	wire_put_u64(&o, 0);
	wire_put_u32(&o, 0);
	wire_put_u32(&o, 2);
	wire_put_u32(&o, 0);
	wire_put_u8(&o, 0);
	wire_put_u64(&o, 0);
	wire_put_u16(&o, 0);
	CHECK(qw_end(&o) == 0 && !out_ok(QW_UPDATE, &o));           /* n = 2, one result */
	qw_free(&o);
}

/* ---- replies ---- */

static const uint16_t rep_types[] = {
	QW_DRAFT_BEGIN, QW_COMMIT, QW_USAGE, QW_PROBE, QW_OLDEST, QW_DUE, QW_GET, QW_BODY_READ,
	QW_UPDATE, QW_HOLD, QW_RETRY, QW_DELETE, QW_STS_GET, QW_STS_PUT, QW_TLSRPT_ADD,
	QW_TLSRPT_NEXT, QW_TLSRPT_SENT
};
#define NREP (sizeof rep_types / sizeof rep_types[0])

struct want_rep {
	struct qw_rep r;
	int open_tail;
};

static void build_rep(uint16_t type, struct wire_wr *o, struct want_rep *w)
{
	uint16_t rt = (uint16_t)(type | QW_REPLY);

	memset(w, 0, sizeof *w);
	w->r.type = rt;
	qw_begin(o, rt);
	switch (type) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		w->r.id = 0x0123456789abcdefu;
		wire_put_u32(o, QUEUE_OK);
		wire_put_u64(o, w->r.id);
		break;
	case QW_COMMIT: {
		static unsigned char res[2 * QW_COMMIT_RESULT];
		struct wire_wr t = { 0 };

		w->r.n = 2;
		wire_put_u32(o, 2);
		qw_begin(&t, 0);
		wire_put_u32(&t, QUEUE_OK);
		wire_put_u64(&t, 1001);
		wire_put_u64(&t, 1700000001);
		wire_put_u64(&t, 4096);
		wire_put_u32(&t, (uint32_t)QUEUE_EFULL);
		wire_put_u64(&t, 0);
		wire_put_u64(&t, 0);
		wire_put_u64(&t, 0);
		memcpy(res, t.buf + QW_HEAD, sizeof res);
		qw_free(&t);
		wire_put_bytes(o, res, sizeof res);
		w->r.data = res;
		w->r.len = sizeof res;
		break;
	}
	case QW_USAGE:
		w->r.rc = QUEUE_EFULL;
		w->r.usage = (struct queue_usage){ 1, 2, 3, 4 };
		w->r.space = (struct queue_space){ 5, 6, 7, 0xffffffffffffffffu };
		wire_put_u32(o, (uint32_t)QUEUE_EFULL);
		wire_put_u64(o, 1);
		wire_put_u64(o, 2);
		wire_put_u64(o, 3);
		wire_put_u64(o, 4);
		wire_put_u64(o, 5);
		wire_put_u64(o, 6);
		wire_put_u64(o, 7);
		wire_put_u64(o, 0xffffffffffffffffu);
		break;
	case QW_PROBE:
	case QW_HOLD:
	case QW_DELETE:
	case QW_STS_PUT:
	case QW_TLSRPT_ADD:
		w->r.rc = QUEUE_ECORRUPT;
		wire_put_u32(o, (uint32_t)QUEUE_ECORRUPT);
		break;
	case QW_DUE: {
		static unsigned char ids[3 * 8];

		for (size_t i = 0; i < sizeof ids; i++)
			ids[i] = (unsigned char)(i / 8 + 1 + (i % 8 == 7 ? 0x10 : 0));
		w->r.next = 1700009999;
		w->r.n = 3;
		w->r.data = ids;
		w->r.len = sizeof ids;
		wire_put_u32(o, QUEUE_OK);
		wire_put_u64(o, (uint64_t)w->r.next);
		wire_put_u32(o, 3);
		wire_put_bytes(o, ids, sizeof ids);
		break;
	}
	case QW_GET:
		w->r.n = 2;
		w->r.data = env_a;
		w->r.len = env_a_len;
		w->open_tail = 1;
		wire_put_u32(o, QUEUE_OK);
		wire_put_u32(o, 2);
		wire_put_bytes(o, env_a, env_a_len);
		break;
	case QW_BODY_READ:
		w->r.data = pattern;
		w->r.len = 50;
		w->open_tail = 1;
		wire_put_u32(o, QUEUE_OK);
		wire_put_bytes(o, pattern, 50);
		break;
	case QW_UPDATE:
		w->r.n = 2;
		w->r.gone = 1;
		w->r.id = 333;
		w->r.received = -7;
		w->r.size = 99;
		wire_put_u32(o, QUEUE_OK);
		wire_put_u32(o, 2);
		wire_put_u8(o, 1);
		wire_put_u64(o, 333);
		wire_put_u64(o, (uint64_t)-7);
		wire_put_u64(o, 99);
		break;
	case QW_RETRY:
		w->r.rc = QUEUE_ENOTFOUND;
		w->r.count = 0x8000000000000001u;
		wire_put_u32(o, (uint32_t)QUEUE_ENOTFOUND);
		wire_put_u64(o, w->r.count);
		break;
	case QW_STS_GET:
	case QW_TLSRPT_NEXT:
		/* (the record is opaque here: queue/sts.h and queue/tlsrec.h
		 * decode it, and their own tests attack it) */
		w->r.data = pattern;
		w->r.len = 40;
		w->open_tail = 1;
		wire_put_u32(o, QUEUE_OK);
		wire_put_bytes(o, pattern, 40);
		break;
	case QW_TLSRPT_SENT:
		w->r.id = 0x0102030405060708u;
		wire_put_u32(o, QUEUE_OK);
		wire_put_u64(o, w->r.id);
		break;
	}
}

static int same_rep(const struct qw_rep *a, const struct qw_rep *b)
{
	return a->type == b->type && a->rc == b->rc && a->id == b->id && a->count == b->count &&
	       a->next == b->next && a->received == b->received && a->size == b->size &&
	       a->n == b->n && a->gone == b->gone &&
	       memcmp(&a->usage, &b->usage, sizeof a->usage) == 0 &&
	       memcmp(&a->space, &b->space, sizeof a->space) == 0 && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void test_rep_roundtrip(void)
{
	struct wire_wr o = { 0 };

	for (size_t i = 0; i < NREP; i++) {
		uint16_t rt = (uint16_t)(rep_types[i] | QW_REPLY);
		struct want_rep w;
		struct qw_rep r;
		const unsigned char *p;
		size_t len;

		build_rep(rep_types[i], &o, &w);
		CHECKF(qw_end(&o) == 0, "type %u", rep_types[i]);
		p = o.buf + QW_HEAD;
		len = o.len - QW_HEAD;
		CHECKF(qw_rep_decode(rt, p, len, &r) == 0, "type %u", rep_types[i]);
		CHECKF(same_rep(&r, &w.r), "type %u", rep_types[i]);
		/* A reply is never a request, and a request type is never a reply. */
		CHECKF(req_bad(rt, p, len), "type %u", rep_types[i]);
		CHECKF(rep_bad(rep_types[i], p, len), "type %u", rep_types[i]);
		for (size_t cut = 0; cut < len; cut++) {
			int rc = qw_rep_decode(rt, p, cut, &r);

			if (!w.open_tail) {
				CHECKF(rc == -1, "type %u cut %zu", rep_types[i], cut);
			} else if (rep_types[i] == QW_BODY_READ) {
				CHECKF(rc == (cut >= 4 ? 0 : -1), "cut %zu", cut);
			} else if (rep_types[i] != QW_GET) {
				/* STS_GET, TLSRPT_NEXT: rc 0 comes with a record
				 * of one byte or more. */
				CHECKF(rc == (cut >= 5 ? 0 : -1), "cut %zu", cut);
			} else {
				/* GET: the envelope is the rest; rq_get() decodes it. */
				CHECKF(rc == (cut >= 8 ? 0 : -1), "cut %zu", cut);
				CHECKF(cut < 8 || env_bad(r.data, r.len), "cut %zu", cut);
			}
		}
		unsigned char *x = plus_one(p, len);

		if (x != NULL && !w.open_tail) {
			CHECKF(rep_bad(rt, x, len + 1), "type %u", rep_types[i]);
		} else if (x != NULL && rep_types[i] == QW_GET) {
			CHECK(qw_rep_decode(rt, x, len + 1, &r) == 0);
			CHECK(env_bad(r.data, r.len));
		}
		free(x);
	}
	qw_free(&o);
}

static void test_rep_arrays(void)
{
	struct wire_wr o = { 0 };
	struct want_rep w;
	struct qw_rep r;
	int rc;
	uint64_t id, size;
	int64_t rcv;

	build_rep(QW_COMMIT, &o, &w);
	CHECK(qw_end(&o) == 0);
	CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, o.buf + QW_HEAD, o.len - QW_HEAD, &r) == 0);
	CHECK(r.n == 2 && r.rc == 0);
	qw_commit_result(&r, 0, &rc, &id, &rcv, &size);
	CHECK(rc == QUEUE_OK && id == 1001 && rcv == 1700000001 && size == 4096);
	qw_commit_result(&r, 1, &rc, &id, &rcv, &size);
	CHECK(rc == QUEUE_EFULL && id == 0 && rcv == 0 && size == 0);
	/* A result code out of range reads as QUEUE_EIO. */
	o.buf[QW_HEAD + 4 + 3] = 1;
	CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, o.buf + QW_HEAD, o.len - QW_HEAD, &r) == 0);
	qw_commit_result(&r, 0, &rc, &id, &rcv, &size);
	CHECK(rc == QUEUE_EIO);
	o.buf[QW_HEAD + 4] = 0x80;   /* a large negative code */
	CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, o.buf + QW_HEAD, o.len - QW_HEAD, &r) == 0);
	qw_commit_result(&r, 0, &rc, &id, &rcv, &size);
	CHECK(rc == QUEUE_EIO);

	build_rep(QW_DUE, &o, &w);
	CHECK(qw_end(&o) == 0);
	CHECK(qw_rep_decode(QW_DUE | QW_REPLY, o.buf + QW_HEAD, o.len - QW_HEAD, &r) == 0);
	CHECK(qw_due_id(&r, 0) == 0x0101010101010111u);
	CHECK(qw_due_id(&r, 2) == 0x0303030303030313u);
	qw_free(&o);
}

static void test_rep_unknown_types(void)
{
	struct wire_wr o[NREP];
	struct want_rep w;
	unsigned bad = 0;
	static const unsigned char zeros[64];

	memset(o, 0, sizeof o);
	for (size_t i = 0; i < NREP; i++) {
		build_rep(rep_types[i], &o[i], &w);
		CHECK(qw_end(&o[i]) == 0);
	}
	for (unsigned t = 0; t <= 0xffff; t++) {
		int valid = 0;

		for (size_t i = 0; i < NREP; i++)
			if (t == (rep_types[i] | QW_REPLY))
				valid = 1;
		if (valid)
			continue;
		for (size_t l = 0; l <= sizeof zeros; l += 4)
			if (!rep_bad((uint16_t)t, zeros, l))
				bad++;
		for (size_t i = 0; i < NREP; i++)
			if (!rep_bad((uint16_t)t, o[i].buf + QW_HEAD, o[i].len - QW_HEAD))
				bad++;
	}
	CHECKF(bad == 0, "%u decoded", bad);
	for (size_t i = 0; i < NREP; i++)
		qw_free(&o[i]);
}

/* A reply of rc and then the bytes given. */
static int rep_ok(uint16_t type, int32_t rc, const void *rest, size_t n)
{
	unsigned char b[256];
	struct qw_rep r;

	b[0] = (unsigned char)((uint32_t)rc >> 24);
	b[1] = (unsigned char)((uint32_t)rc >> 16);
	b[2] = (unsigned char)((uint32_t)rc >> 8);
	b[3] = (unsigned char)rc;
	memcpy(b + 4, rest, n);
	return qw_rep_decode((uint16_t)(type | QW_REPLY), b, 4 + n, &r) == 0;
}

static void test_rep_ranges(void)
{
	static const unsigned char z[64];
	static unsigned char big[4 + QW_CHUNK_MAX + 1];
	struct qw_rep r;

	/* rc: QUEUE_OK down to QUEUE_ECORRUPT, nothing else. */
	CHECK(rep_ok(QW_PROBE, QUEUE_OK, z, 0));
	CHECK(rep_ok(QW_PROBE, QUEUE_ECORRUPT, z, 0));
	CHECK(!rep_ok(QW_PROBE, QUEUE_ECORRUPT - 1, z, 0));
	CHECK(!rep_ok(QW_PROBE, 1, z, 0));
	CHECK(!rep_ok(QW_PROBE, INT32_MIN, z, 0));
	CHECK(!rep_ok(QW_RETRY, 1, z, 8));
	/* GET: an error carries no envelope; EINVAL says how many recipients. */
	CHECK(rep_ok(QW_GET, QUEUE_EINVAL, "\0\0\0\x09", 4));
	CHECK(!rep_ok(QW_GET, QUEUE_EINVAL, "\0\0\0\x09x", 5));
	CHECK(!rep_ok(QW_GET, QUEUE_ENOTFOUND, "\0\0\0\0\x01", 5));
	/* BODY_READ: at most QW_CHUNK_MAX bytes; none with an error. */
	memset(big, 0, sizeof big);
	CHECK(qw_rep_decode(QW_BODY_READ | QW_REPLY, big, 4 + QW_CHUNK_MAX, &r) == 0 &&
	      r.len == QW_CHUNK_MAX);
	CHECK(qw_rep_decode(QW_BODY_READ | QW_REPLY, big, 4 + QW_CHUNK_MAX + 1, &r) == -1);
	CHECK(rep_ok(QW_BODY_READ, QUEUE_ENOTFOUND, z, 0));
	CHECK(!rep_ok(QW_BODY_READ, QUEUE_ENOTFOUND, z, 1));
	/* UPDATE: gone is 0 or 1. */
	{
		unsigned char u[4 + 1 + 24];

		memset(u, 0, sizeof u);
		CHECK(rep_ok(QW_UPDATE, QUEUE_OK, u, sizeof u));
		u[4] = 2;
		CHECK(!rep_ok(QW_UPDATE, QUEUE_OK, u, sizeof u));
		u[4] = 0xff;
		CHECK(!rep_ok(QW_UPDATE, QUEUE_OK, u, sizeof u));
	}
	/* DUE: n at most QW_DUE_MAX, and as many IDs as it says. */
	{
		static unsigned char d[4 + 8 + 4 + 8 * (QW_DUE_MAX + 1)];
		size_t l;

		memset(d, 0, sizeof d);
		d[14] = QW_DUE_MAX >> 8;    /* n = QW_DUE_MAX */
		l = 16 + 8 * (size_t)QW_DUE_MAX;
		CHECK(qw_rep_decode(QW_DUE | QW_REPLY, d, l, &r) == 0 && r.n == QW_DUE_MAX);
		CHECK(qw_rep_decode(QW_DUE | QW_REPLY, d, l - 8, &r) == -1);
		CHECK(qw_rep_decode(QW_DUE | QW_REPLY, d, l + 8, &r) == -1);
		d[15] = 1;                  /* n = QW_DUE_MAX + 1 */
		CHECK(qw_rep_decode(QW_DUE | QW_REPLY, d, l + 8, &r) == -1);
		d[12] = 0xff;               /* n huge */
		CHECK(qw_rep_decode(QW_DUE | QW_REPLY, d, l + 8, &r) == -1);
	}
	/* COMMIT: 1..QW_BATCH_MAX results, each QW_COMMIT_RESULT bytes. */
	{
		static unsigned char c[4 + QW_COMMIT_RESULT * (QW_BATCH_MAX + 1)];
		size_t l = 4 + QW_COMMIT_RESULT * (size_t)QW_BATCH_MAX;

		memset(c, 0, sizeof c);
		CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, c, 4, &r) == -1);   /* n = 0 */
		c[2] = QW_BATCH_MAX >> 8;
		CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, c, l, &r) == 0 && r.n == QW_BATCH_MAX);
		CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, c, l - 1, &r) == -1);
		CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, c, l + 1, &r) == -1);
		c[3] = 1;
		CHECK(qw_rep_decode(QW_COMMIT | QW_REPLY, c, l + QW_COMMIT_RESULT, &r) == -1);
	}
	/* The requests without a reply (body bytes and aborts are not answered). */
	CHECK(!rep_ok(QW_DRAFT_WRITE, QUEUE_OK, z, 0));
	CHECK(!rep_ok(QW_DRAFT_ABORT, QUEUE_OK, z, 0));
	CHECK(!rep_ok(QW_KICK, QUEUE_OK, z, 0));
	CHECK(qw_rep_decode(QW_KICK, NULL, 0, &r) == -1);
}

/* ---- plink ---- */

static void plink_raw(unsigned char b[PLINK_SIZE], uint32_t type, uint32_t kind, int32_t status,
                      const char *text)
{
	struct plink_msg m;

	memset(&m, 0, sizeof m);
	m.type = type;
	m.kind = kind;
	m.status = status;
	if (text)
		strncpy(m.text, text, sizeof m.text - 1);
	plink_encode(&m, b);
}

static void test_plink_codec(void)
{
	unsigned char b[PLINK_SIZE + 1];
	struct plink_msg m;

	/* Round trips. */
	for (uint32_t k = PLINK_QUEUE; k <= PLINK_DKIM; k++) {
		plink_raw(b, PLINK_FD, k, 0, NULL);
		CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == 0 && m.type == PLINK_FD && m.kind == k);
		/* Exactly one descriptor. */
		CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
		CHECK(plink_decode(b, PLINK_SIZE, 2, &m) == -1);
	}
	plink_raw(b, PLINK_DRAIN, 0, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && m.type == PLINK_DRAIN);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_RELOAD, 0, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && m.type == PLINK_RELOAD);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_RELOADED, 0, -1, "moat.conf:3: no such directive");
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && m.type == PLINK_RELOADED &&
	      m.status == -1 && strcmp(m.text, "moat.conf:3: no such directive") == 0);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_RELOADED, 0, 0, "");
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && m.status == 0);
	/* Exact size only. */
	for (size_t l = 0; l <= PLINK_SIZE + 1; l++)
		CHECKF((plink_decode(b, l, 0, &m) == 0) == (l == PLINK_SIZE), "len %zu", l);
	/* Unknown types. */
	{
		static const uint32_t types[] = { 0, PLINK_RELOADED + 1, 0x100, 0x80000001u,
		                                  0xffffffffu };

		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			for (int n = 0; n <= 1; n++) {
				plink_raw(b, types[i], n ? PLINK_QUEUE : 0, 0, NULL);
				CHECKF(plink_decode(b, PLINK_SIZE, n, &m) == -1, "type %u", types[i]);
			}
	}
	/* Kinds out of range; kinds where none belong. */
	plink_raw(b, PLINK_FD, PLINK_NONE, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_FD, PLINK_DKIM + 1, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_FD, 0xffffffffu, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_DRAIN, PLINK_QUEUE, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	plink_raw(b, PLINK_RELOADED, PLINK_KEY, 0, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	/* Status and text only where they belong. */
	plink_raw(b, PLINK_FD, PLINK_QUEUE, 1, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_FD, PLINK_QUEUE, 0, "x");
	CHECK(plink_decode(b, PLINK_SIZE, 1, &m) == -1);
	plink_raw(b, PLINK_DRAIN, 0, 0, "x");
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	plink_raw(b, PLINK_RELOAD, 0, -1, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	plink_raw(b, PLINK_RELOADED, 0, 1, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	plink_raw(b, PLINK_RELOADED, 0, -2, NULL);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	/* Text not NUL-terminated: every byte of it set. */
	plink_raw(b, PLINK_RELOADED, 0, 0, NULL);
	memset(b + 12, 'a', PLINK_TEXT);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == -1);
	b[12 + PLINK_TEXT - 1] = 0;
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && strlen(m.text) == PLINK_TEXT - 1);
	/* The encoder never writes an unterminated text. */
	memset(&m, 'b', sizeof m);
	m.type = PLINK_RELOADED;
	m.kind = 0;
	m.status = 0;
	plink_encode(&m, b);
	CHECK(plink_decode(b, PLINK_SIZE, 0, &m) == 0 && strlen(m.text) == PLINK_TEXT - 1);
}

/* plink_send/plink_recv over a real SOCK_SEQPACKET pair: a descriptor
 * passes; a packet of the wrong size, a descriptor where none belongs or
 * none where one does is -2 (and what came with it is closed). */
static void test_plink_socket(void)
{
	int sv[2], sp[2], fd = -2;
	struct plink_msg m, got;
	unsigned char b[PLINK_SIZE + 1];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	CHECK(plink_recv(sv[1], &got, &fd) == 0 && fd == -1);  /* nothing yet */
	memset(&m, 0, sizeof m);
	m.type = PLINK_FD;
	m.kind = PLINK_SMTP_CLIENT;
	CHECK(plink_send(sv[0], &m, sp[0]) == 0);
	CHECK(plink_recv(sv[1], &got, &fd) == 1 && got.type == PLINK_FD &&
	      got.kind == PLINK_SMTP_CLIENT && fd >= 0);
	if (fd >= 0) {
		char c = 0;

		CHECK(write(fd, "z", 1) == 1 && read(sp[1], &c, 1) == 1 && c == 'z');
		close(fd);
	}
	/* PLINK_FD without its descriptor. */
	CHECK(plink_send(sv[0], &m, -1) == 0);
	CHECK(plink_recv(sv[1], &got, &fd) == -2 && fd == -1);
	/* DRAIN with one: the descriptor is closed by plink_recv. */
	m.type = PLINK_DRAIN;
	m.kind = 0;
	CHECK(plink_send(sv[0], &m, sp[0]) == 0);
	close(sp[0]);
	CHECK(plink_recv(sv[1], &got, &fd) == -2 && fd == -1);
	{
		char c;

		CHECK(recv(sp[1], &c, 1, MSG_DONTWAIT) == 0);   /* no copy of sp[0] left open */
	}
	/* Too long, too short. */
	plink_raw(b, PLINK_DRAIN, 0, 0, NULL);
	b[PLINK_SIZE] = 0;
	CHECK(send(sv[0], b, PLINK_SIZE + 1, 0) == PLINK_SIZE + 1);
	CHECK(plink_recv(sv[1], &got, &fd) == -2);
	CHECK(send(sv[0], b, PLINK_SIZE - 1, 0) == PLINK_SIZE - 1);
	CHECK(plink_recv(sv[1], &got, &fd) == -2);
	CHECK(send(sv[0], b, PLINK_SIZE, 0) == PLINK_SIZE);
	CHECK(plink_recv(sv[1], &got, &fd) == 1 && got.type == PLINK_DRAIN);
	close(sv[0]);
	CHECK(plink_recv(sv[1], &got, &fd) == -1);
	close(sv[1]);
	close(sp[1]);
}

int main(void)
{
	fill_pattern();
	env_a_len = env_bytes(11, env_a, sizeof env_a);
	env_b_len = env_bytes(12, env_b, sizeof env_b);
	if (env_a_len == 0 || env_b_len == 0) {
		printf("FAIL: sample envelopes\n");
		return 1;
	}
	RUN(test_env_codec);
	RUN(test_head);
	RUN(test_out);
	RUN(test_req_roundtrip);
	RUN(test_req_iterators);
	RUN(test_req_unknown_types);
	RUN(test_req_ranges);
	RUN(test_rep_roundtrip);
	RUN(test_rep_arrays);
	RUN(test_rep_unknown_types);
	RUN(test_rep_ranges);
	RUN(test_plink_codec);
	RUN(test_plink_socket);
	return t_main_end();
}
