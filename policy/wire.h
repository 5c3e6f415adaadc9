/*
 * policy/wire.h -- the one reader and writer of moat's binary records and
 * messages: the queue's envelope and usage records and keys, the queue
 * link's frames (mta/net/qwire.h), the supervisor link (mta/net/plink.h),
 * the key role's messages (mta/net/keymsg.h).  Pure: no I/O; the writer
 * never allocates (a caller that wants a growing buffer gives a hook).
 *
 * Every integer is big-endian.  A string is a 16-bit length and the
 * bytes, without NUL.
 *
 * Errors stick, in the manner of BearSSL's decoders and OpenSMTPD's
 * m_get_* / m_end: a read past the end, a string too long for its field
 * or holding a NUL, or a field the caller finds out of range
 * (wire_fail()) marks the reader bad; every later read returns zeros and
 * the check is made once, at the end: wire_end() fails a bad reader and
 * one with bytes left over.  So a decoder is a straight list of reads,
 * and a record cannot be read past its end or half-believed.
 *
 * Lifetimes: a reader points into the caller's buffer, and so do the
 * pointers wire_bytes() and wire_rest() return: valid while it is.
 */
#ifndef MOAT_POLICY_WIRE_H
#define MOAT_POLICY_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* ---- random access, for formats read by offset (DNS, LMDB keys) ---- */

static inline uint16_t wire_be16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t wire_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t wire_be64(const unsigned char *p)
{
	return (uint64_t)wire_be32(p) << 32 | wire_be32(p + 4);
}

static inline void wire_put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void wire_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline void wire_put_be64(unsigned char *p, uint64_t v)
{
	wire_put_be32(p, (uint32_t)(v >> 32));
	wire_put_be32(p + 4, (uint32_t)v);
}

/* ---- the reader ---- */

struct wire_rd {
	const unsigned char *p;   /* the next byte */
	size_t left;              /* bytes from p to the end */
	int bad;                  /* sticky */
};

void wire_rd_init(struct wire_rd *r, const void *buf, size_t len);

uint8_t  wire_u8(struct wire_rd *r);
uint16_t wire_u16(struct wire_rd *r);
uint32_t wire_u32(struct wire_rd *r);
uint64_t wire_u64(struct wire_rd *r);
/* Two's complement, as written by wire_put_i32/i64. */
int32_t  wire_i32(struct wire_rd *r);
int64_t  wire_i64(struct wire_rd *r);

/* The next n bytes (a pointer into the buffer), or NULL (bad) when fewer
 * are left.  n 0: a non-NULL pointer, nothing read. */
const unsigned char *wire_bytes(struct wire_rd *r, size_t n);

/* A string into out[0..max] (max bytes and the NUL); out NULL checks and
 * skips it.  Longer than max, or holding a NUL: bad (out[0] = NUL). */
void wire_str(struct wire_rd *r, char *out, size_t max);

/* Everything left (possibly 0 bytes): *n and the pointer; reads it all. */
const unsigned char *wire_rest(struct wire_rd *r, size_t *n);

/* Mark the reader bad: a value read is out of its range. */
void wire_fail(struct wire_rd *r);

/* 0 when nothing failed and nothing is left, else -1. */
int wire_end(const struct wire_rd *r);
/* 0 when nothing failed so far (bytes may be left), else -1. */
int wire_ok(const struct wire_rd *r);

/* ---- the writer ---- */

struct wire_wr;
/* Make room for need more bytes past w->len (w->buf and w->cap may
 * change): 0, or -1 (the writer goes bad). */
typedef int wire_grow_fn(struct wire_wr *w, size_t need);

struct wire_wr {
	unsigned char *buf;
	size_t len, cap;
	size_t max;            /* never more than this many bytes in all */
	int bad;               /* sticky: out of room (or the grow hook failed) */
	wire_grow_fn *grow;    /* NULL: the buffer is all there is */
	void *arg;             /* the grow hook's */
};

/* Write into buf[0..cap), at most cap bytes. */
void wire_wr_init(struct wire_wr *w, void *buf, size_t cap);

void wire_put_u8(struct wire_wr *w, uint8_t v);
void wire_put_u16(struct wire_wr *w, uint16_t v);
void wire_put_u32(struct wire_wr *w, uint32_t v);
void wire_put_u64(struct wire_wr *w, uint64_t v);
void wire_put_i32(struct wire_wr *w, int32_t v);
void wire_put_i64(struct wire_wr *w, int64_t v);
void wire_put_bytes(struct wire_wr *w, const void *p, size_t n);
/* A string: its length (u16) and bytes; over 65535 bytes: bad. */
void wire_put_str(struct wire_wr *w, const char *s);
/* n bytes of room at the end, for the caller to fill (NULL: bad). */
unsigned char *wire_put_room(struct wire_wr *w, size_t n);

/* The bytes written, or 0 when the writer went bad. */
size_t wire_wr_end(const struct wire_wr *w);

#endif
