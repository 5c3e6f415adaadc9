/* policy/wire.c -- the binary reader and writer; see wire.h */
#include "policy/wire.h"

#include <string.h>

void wire_rd_init(struct wire_rd *r, const void *buf, size_t len)
{
	r->p = buf;
	r->left = buf != NULL ? len : 0;
	r->bad = 0;
}

/* n bytes, or NULL (and bad) when they are not there. */
static const unsigned char *take(struct wire_rd *r, size_t n)
{
	const unsigned char *p;

	if (r->bad || n > r->left) {
		r->bad = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t wire_u8(struct wire_rd *r)
{
	const unsigned char *p = take(r, 1);

	return p ? p[0] : 0;
}

uint16_t wire_u16(struct wire_rd *r)
{
	const unsigned char *p = take(r, 2);

	return p ? wire_be16(p) : 0;
}

uint32_t wire_u32(struct wire_rd *r)
{
	const unsigned char *p = take(r, 4);

	return p ? wire_be32(p) : 0;
}

uint64_t wire_u64(struct wire_rd *r)
{
	const unsigned char *p = take(r, 8);

	return p ? wire_be64(p) : 0;
}

int32_t wire_i32(struct wire_rd *r)
{
	uint32_t v = wire_u32(r);
	int32_t s;

	memcpy(&s, &v, sizeof s);
	return s;
}

int64_t wire_i64(struct wire_rd *r)
{
	uint64_t v = wire_u64(r);
	int64_t s;

	memcpy(&s, &v, sizeof s);
	return s;
}

const unsigned char *wire_bytes(struct wire_rd *r, size_t n)
{
	return take(r, n);
}

void wire_str(struct wire_rd *r, char *out, size_t max)
{
	size_t n = wire_u16(r);
	const unsigned char *p;

	if (out != NULL)
		out[0] = '\0';
	if (n > max) {
		r->bad = 1;
		return;
	}
	if ((p = take(r, n)) == NULL)
		return;
	if (memchr(p, 0, n) != NULL) {
		r->bad = 1;
		return;
	}
	if (out != NULL) {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

const unsigned char *wire_rest(struct wire_rd *r, size_t *n)
{
	*n = r->bad ? 0 : r->left;
	return take(r, *n);
}

void wire_fail(struct wire_rd *r)
{
	r->bad = 1;
}

int wire_end(const struct wire_rd *r)
{
	return r->bad || r->left != 0 ? -1 : 0;
}

int wire_ok(const struct wire_rd *r)
{
	return r->bad ? -1 : 0;
}

void wire_wr_init(struct wire_wr *w, void *buf, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->buf = buf;
	w->cap = cap;
	w->max = cap;
}

unsigned char *wire_put_room(struct wire_wr *w, size_t n)
{
	if (w->bad || n > w->max - w->len) {
		w->bad = 1;
		return NULL;
	}
	if (n > w->cap - w->len && (w->grow == NULL || w->grow(w, n) != 0 ||
	                            n > w->cap - w->len)) {
		w->bad = 1;
		return NULL;
	}
	w->len += n;
	return w->buf + w->len - n;
}

void wire_put_u8(struct wire_wr *w, uint8_t v)
{
	unsigned char *p = wire_put_room(w, 1);

	if (p != NULL)
		p[0] = v;
}

void wire_put_u16(struct wire_wr *w, uint16_t v)
{
	unsigned char *p = wire_put_room(w, 2);

	if (p != NULL)
		wire_put_be16(p, v);
}

void wire_put_u32(struct wire_wr *w, uint32_t v)
{
	unsigned char *p = wire_put_room(w, 4);

	if (p != NULL)
		wire_put_be32(p, v);
}

void wire_put_u64(struct wire_wr *w, uint64_t v)
{
	unsigned char *p = wire_put_room(w, 8);

	if (p != NULL)
		wire_put_be64(p, v);
}

void wire_put_i32(struct wire_wr *w, int32_t v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof u);
	wire_put_u32(w, u);
}

void wire_put_i64(struct wire_wr *w, int64_t v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	wire_put_u64(w, u);
}

void wire_put_bytes(struct wire_wr *w, const void *p, size_t n)
{
	unsigned char *d;

	if (n == 0)
		return;
	if ((d = wire_put_room(w, n)) != NULL)
		memcpy(d, p, n);
}

void wire_put_str(struct wire_wr *w, const char *s)
{
	size_t n = strlen(s);

	if (n > UINT16_MAX) {
		w->bad = 1;
		return;
	}
	wire_put_u16(w, (uint16_t)n);
	wire_put_bytes(w, s, n);
}

size_t wire_wr_end(const struct wire_wr *w)
{
	return w->bad ? 0 : w->len;
}
