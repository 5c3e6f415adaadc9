/*
 * tests/fuzz/fuzz_qwire.c -- the queue role's frames (mta/net/qwire.h) and the
 * supervisor link's messages (mta/net/plink.h) from arbitrary bytes.
 *
 * Input: byte 0 picks what the rest is -- 0 a request, 1 a reply (bytes 1-2:
 * the type, big-endian; then the payload), 2 a plink message (byte 1: how
 * many descriptors came with it; then the packet), 3 a frame head (8 bytes).
 *
 * Invariants: decoding never reads outside the input (ASan); a frame that
 * decodes points inside its payload, keeps every field in its range,
 * walks to exactly its count with the iterators (each COMMIT/UPDATE/USAGE
 * envelope and the GET envelope go through qw_env_decode as the roles
 * do, and encodes back the same) and encodes back with the qw_* encoders to exactly the same bytes;
 * a plink message that decodes encodes and decodes back to the same one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/plink.h"
#include "mta/net/qwire.h"
#include "policy/dns.h"
#include "queue/envelope.h"
#include "queue/sts.h"
#include "queue/tlsrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wire_wr out;

/* As the queue role and rq_get() do: the envelope with up to 8 recipients. */
static void envelope(const unsigned char *p, size_t len)
{
	static struct queue_rcpt r[8];
	struct queue_envelope e;
	int rc;

	memset(&e, 0, sizeof e);
	e.rcpts = r;
	e.rcpt_cap = 8;
	size_t el = 0;

	rc = qw_env_decode(p, len, &e, &el);
	if (rc != QUEUE_OK && rc != QUEUE_ECORRUPT && rc != QUEUE_EINVAL)
		abort();
	if (rc == QUEUE_OK && (qw_env_size(&e) != len || envelope_size(&e) != el))
		abort();
	if (rc == QUEUE_OK) {
		/* Encodes back to the same bytes, the DSN parameters included. */
		static unsigned char b[QW_MAX / 64];
		struct wire_wr w;
		if (len <= sizeof b) {
			wire_wr_init(&w, b, sizeof b);
			qw_env(&w, &e);
			if (wire_wr_end(&w) != len || memcmp(b, p, len) != 0)
				abort();
		}
	}
}

static void inside(const unsigned char *x, size_t n, const unsigned char *p, size_t len)
{
	if (n > 0 && (x < p || x + n > p + len))
		abort();
}

/* The payload built in out equals p[0..len). */
static void same_bytes(uint16_t type, const unsigned char *p, size_t len)
{
	uint16_t t;
	uint32_t l;

	if (qw_end(&out) != 0 || qw_head_decode(out.buf, &t, &l) != 0 || t != type || l != len ||
	    memcmp(out.buf + QW_HEAD, p, len) != 0)
		abort();
}

/* A domain the decoder let through is a host name within DNS_NAME_MAX. */
static void domain(const char *d)
{
	size_t n = strnlen(d, DNS_NAME_MAX + 1);

	if (n > DNS_NAME_MAX || !dns_name_ok(d, n))
		abort();
}

/* The MTA-STS and TLS report requests, re-encoded into out (their
 * records are opaque here: queue/sts.h and queue/tlsrec.h decode them,
 * fuzz_sts and fuzz_tlsrpt attack that). */
static void tls_request(const struct qw_req *q, const unsigned char *p, size_t len)
{
	switch (q->type) {
	case QW_STS_GET:
		domain(q->domain);
		wire_put_str(&out, q->domain);
		break;
	case QW_STS_PUT:
	case QW_TLSRPT_ADD:
		if (q->len == 0 ||
		    q->len > (q->type == QW_STS_PUT ? (size_t)STS_RECORD_MAX : (size_t)TLSREC_MAX))
			abort();
		inside(q->data, q->len, p, len);
		if (q->type == QW_STS_PUT) {
			domain(q->domain);
			wire_put_str(&out, q->domain);
		}
		wire_put_bytes(&out, q->data, q->len);
		break;
	case QW_TLSRPT_NEXT:
		wire_put_u64(&out, (uint64_t)q->now);
		break;
	case QW_TLSRPT_SENT:
		if ((q->id == 0) != (q->len == 0))
			abort();
		domain(q->domain);
		wire_put_u64(&out, (uint64_t)q->now);
		wire_put_str(&out, q->domain);
		wire_put_u64(&out, q->id);
		wire_put_bytes(&out, q->data, q->len);
		break;
	default:
		break;
	}
}

static void request(uint16_t type, const unsigned char *p, size_t len)
{
	struct qw_req q;
	struct queue_result r;
	char err[QUEUE_ERR_MAX + 1];
	size_t pos = 0, k = 0;

	if (qw_req_decode(type, p, len, &q) != 0)
		return;
	if (type < QW_DRAFT_BEGIN || type >= QW_NTYPES || q.type != type)
		abort();
	inside(q.data, q.len, p, len);
	inside(q.items, q.items_len, p, len);
	qw_begin(&out, type);
	switch (type) {
	case QW_DRAFT_WRITE:
		if (q.len == 0 || q.len > QW_CHUNK_MAX)
			abort();
		wire_put_u64(&out, q.id);
		wire_put_bytes(&out, q.data, q.len);
		break;
	case QW_DRAFT_ABORT:
	case QW_DELETE:
	case QW_RETRY:
		wire_put_u64(&out, q.id);
		break;
	case QW_DRAFT_PREPEND:
		if (q.len == 0 || q.len > QUEUE_PREFIX_MAX)
			abort();
		wire_put_u64(&out, q.id);
		wire_put_bytes(&out, q.data, q.len);
		break;
	case QW_COMMIT: {
		uint64_t d;
		const unsigned char *e;
		size_t el;

		if (q.n == 0 || q.n > QW_BATCH_MAX)
			abort();
		while (qw_commit_next(&q, &pos, &d, &e, &el)) {
			if (d == 0 || el == 0)
				abort();
			inside(e, el, q.items, q.items_len);
			envelope(e, el);
			k++;
		}
		if (k != q.n || pos != q.items_len)
			abort();
		wire_put_u32(&out, q.n);
		wire_put_bytes(&out, q.items, q.items_len);
		break;
	}
	case QW_USAGE:
		if (q.len)
			envelope(q.data, q.len);
		wire_put_bytes(&out, q.data, q.len);
		break;
	case QW_PROBE:
		wire_put_u64(&out, (uint64_t)q.now);
		break;
	case QW_DUE:
		if (q.cap == 0 || q.cap > QW_DUE_MAX)
			abort();
		wire_put_u64(&out, (uint64_t)q.now);
		wire_put_u32(&out, q.cap);
		break;
	case QW_GET:
		wire_put_u64(&out, q.id);
		wire_put_u32(&out, q.cap);
		break;
	case QW_BODY_READ:
		if (q.cap == 0 || q.cap > QW_CHUNK_MAX)
			abort();
		wire_put_u64(&out, q.id);
		wire_put_u64(&out, q.off);
		wire_put_u32(&out, q.cap);
		break;
	case QW_UPDATE:
		if (q.n == 0 || (q.dsn == 0) != (q.len == 0))
			abort();
		if (q.len)
			envelope(q.data, q.len);
		while (qw_result_next(&q, &pos, &r, err)) {
			if (r.state > QUEUE_RCPT_BOUNCED || r.error != err ||
			    strlen(err) > QUEUE_ERR_MAX)
				abort();
			k++;
		}
		if (k != q.n || pos != q.items_len)
			abort();
		wire_put_u64(&out, q.id);
		wire_put_u32(&out, q.flags);
		wire_put_u64(&out, q.dsn);
		wire_put_u32(&out, (uint32_t)q.len);
		wire_put_bytes(&out, q.data, q.len);
		wire_put_u32(&out, q.n);
		wire_put_bytes(&out, q.items, q.items_len);
		break;
	case QW_HOLD:
		if (q.flags > 1)
			abort();
		wire_put_u64(&out, q.id);
		wire_put_u8(&out, (uint8_t)q.flags);
		break;
	default:
		tls_request(&q, p, len);
		break;
	}
	same_bytes(type, p, len);
}

/* The MTA-STS and TLS report replies, re-encoded into out. */
static void tls_reply(uint16_t base, const struct qw_rep *r)
{
	switch (base) {
	case QW_STS_GET:
	case QW_TLSRPT_NEXT:
		if ((r->rc == QUEUE_OK) != (r->len > 0) ||
		    r->len > (base == QW_STS_GET ? (size_t)STS_RECORD_MAX : (size_t)TLSREC_MAX))
			abort();
		wire_put_bytes(&out, r->data, r->len);
		break;
	case QW_TLSRPT_SENT:
		wire_put_u64(&out, r->id);
		break;
	default:
		break;
	}
}

static void reply(uint16_t type, const unsigned char *p, size_t len)
{
	struct qw_rep r;
	uint16_t base = (uint16_t)(type & ~QW_REPLY);

	if (qw_rep_decode(type, p, len, &r) != 0)
		return;
	if (!(type & QW_REPLY) || base < QW_DRAFT_BEGIN || base >= QW_NTYPES ||
	    base == QW_DRAFT_WRITE || base == QW_DRAFT_ABORT || r.rc > 0 || r.rc < QUEUE_ECORRUPT)
		abort();
	inside(r.data, r.len, p, len);
	qw_begin(&out, type);
	if (base != QW_COMMIT)
		wire_put_u32(&out, (uint32_t)r.rc);
	switch (base) {
	case QW_DRAFT_BEGIN:
	case QW_OLDEST:
		wire_put_u64(&out, r.id);
		break;
	case QW_COMMIT:
		if (r.n == 0 || r.n > QW_BATCH_MAX || r.len != (size_t)r.n * QW_COMMIT_RESULT)
			abort();
		for (size_t i = 0; i < r.n; i++) {
			int rc;
			uint64_t id, sz;
			int64_t rcv;

			qw_commit_result(&r, i, &rc, &id, &rcv, &sz);
			if (rc > 0 || rc < QUEUE_ECORRUPT)
				abort();
		}
		wire_put_u32(&out, r.n);
		wire_put_bytes(&out, r.data, r.len);
		break;
	case QW_USAGE:
		wire_put_u64(&out, r.usage.messages);
		wire_put_u64(&out, r.usage.bytes);
		wire_put_u64(&out, r.usage.client_messages);
		wire_put_u64(&out, r.usage.client_bytes);
		wire_put_u64(&out, r.space.fs_avail);
		wire_put_u64(&out, r.space.fs_total);
		wire_put_u64(&out, r.space.file_free);
		wire_put_u64(&out, r.space.map_free);
		break;
	case QW_DUE:
		if (r.n > QW_DUE_MAX || r.len != (size_t)r.n * 8)
			abort();
		for (size_t i = 0; i < r.n; i++)
			(void)qw_due_id(&r, i);
		wire_put_u64(&out, (uint64_t)r.next);
		wire_put_u32(&out, r.n);
		wire_put_bytes(&out, r.data, r.len);
		break;
	case QW_GET:
		if (r.rc != QUEUE_OK && r.len != 0)
			abort();
		if (r.len)
			envelope(r.data, r.len);
		wire_put_u32(&out, r.n);
		wire_put_bytes(&out, r.data, r.len);
		break;
	case QW_BODY_READ:
		if (r.len > QW_CHUNK_MAX || (r.rc != QUEUE_OK && r.len != 0))
			abort();
		wire_put_bytes(&out, r.data, r.len);
		break;
	case QW_UPDATE:
		if (r.gone > 1)
			abort();
		wire_put_u32(&out, r.n);
		wire_put_u8(&out, r.gone);
		wire_put_u64(&out, r.id);
		wire_put_u64(&out, (uint64_t)r.received);
		wire_put_u64(&out, r.size);
		break;
	case QW_RETRY:
		wire_put_u64(&out, r.count);
		break;
	default:
		tls_reply(base, &r);
		break;
	}
	same_bytes(type, p, len);
}

static void plink(int nfds, const unsigned char *p, size_t len)
{
	struct plink_msg m, m2;
	unsigned char b[PLINK_SIZE];

	if (plink_decode(p, len, nfds, &m) != 0)
		return;
	if (len != PLINK_SIZE || memchr(m.text, 0, sizeof m.text) == NULL ||
	    (m.type == PLINK_FD) != (nfds == 1) ||
	    (m.type == PLINK_FD && (m.kind < PLINK_QUEUE || m.kind > PLINK_DKIM)) ||
	    (m.type != PLINK_FD && m.kind != 0))
		abort();
	plink_encode(&m, b);
	if (plink_decode(b, sizeof b, nfds, &m2) != 0 || m2.type != m.type || m2.kind != m.kind ||
	    m2.status != m.status || strcmp(m2.text, m.text) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t type;
	uint32_t len;

	if (size < 2)
		return 0;
	switch (data[0] & 3) {
	case 0:
	case 1:
		if (size < 3)
			return 0;
		type = (uint16_t)(data[1] << 8 | data[2]);
		if (data[0] & 1)
			reply(type, data + 3, size - 3);
		else
			request(type, data + 3, size - 3);
		break;
	case 2:
		plink(data[1] & 3, data + 2, size - 2);
		break;
	default:
		if (size >= 1 + QW_HEAD && qw_head_decode(data + 1, &type, &len) == 0 &&
		    (len > QW_MAX || data[3] != 0 || data[4] != 0))
			abort();
		break;
	}
	return 0;
}
