/* tests/unit/test_wire.c -- the binary reader and writer (policy/wire.h) */
#include "t.h"

#include <stdlib.h>

#include "policy/wire.h"

/* Every kind of field written, then read back; the bytes are big-endian. */
static void test_round_trip(void)
{
	unsigned char buf[64];
	struct wire_wr w;
	struct wire_rd r;
	char s[8];
	size_t n, len;
	const unsigned char *p;

	wire_wr_init(&w, buf, sizeof buf);
	wire_put_u8(&w, 0xab);
	wire_put_u16(&w, 0x1234);
	wire_put_u32(&w, 0xdeadbeef);
	wire_put_u64(&w, 0x0102030405060708ull);
	wire_put_i32(&w, -2);
	wire_put_i64(&w, -3);
	wire_put_str(&w, "hey");
	wire_put_bytes(&w, "xyz", 3);
	n = wire_wr_end(&w);
	CHECK(n == 1 + 2 + 4 + 8 + 4 + 8 + 2 + 3 + 3);
	CHECK(buf[1] == 0x12 && buf[2] == 0x34 && buf[7] == 0x01 && buf[14] == 0x08);
	CHECK(wire_be16(buf + 1) == 0x1234 && wire_be32(buf + 3) == 0xdeadbeef);
	CHECK(wire_be64(buf + 7) == 0x0102030405060708ull);

	wire_rd_init(&r, buf, n);
	CHECK(wire_u8(&r) == 0xab);
	CHECK(wire_u16(&r) == 0x1234);
	CHECK(wire_u32(&r) == 0xdeadbeef);
	CHECK(wire_u64(&r) == 0x0102030405060708ull);
	CHECK(wire_i32(&r) == -2);
	CHECK(wire_i64(&r) == -3);
	wire_str(&r, s, sizeof s - 1);
	CHECK(strcmp(s, "hey") == 0);
	CHECK(wire_ok(&r) == 0 && wire_end(&r) == -1);   /* "xyz" is left */
	p = wire_rest(&r, &len);
	CHECK(len == 3 && memcmp(p, "xyz", 3) == 0);
	CHECK(wire_end(&r) == 0);
}

/* A read past the end sticks: zeros from then on, and wire_end fails. */
static void test_sticky(void)
{
	const unsigned char b[3] = { 1, 2, 3 };
	struct wire_rd r;
	size_t len;

	wire_rd_init(&r, b, sizeof b);
	CHECK(wire_u16(&r) == 0x0102);
	CHECK(wire_u16(&r) == 0);            /* one byte left: bad */
	CHECK(wire_u8(&r) == 0);             /* sticky, though a byte is there */
	CHECK(wire_bytes(&r, 0) == NULL);
	CHECK(wire_rest(&r, &len) == NULL && len == 0);
	CHECK(wire_ok(&r) == -1 && wire_end(&r) == -1);

	wire_rd_init(&r, b, sizeof b);
	CHECK(wire_bytes(&r, 4) == NULL && wire_ok(&r) == -1);
	wire_rd_init(&r, b, sizeof b);
	(void)wire_u8(&r);
	wire_fail(&r);                       /* a value out of range */
	CHECK(wire_u8(&r) == 0 && wire_end(&r) == -1);
	wire_rd_init(&r, NULL, 5);           /* no buffer: nothing to read */
	CHECK(wire_u8(&r) == 0 && wire_ok(&r) == -1);
}

/* Strings: too long for the field, a NUL inside, a length that lies. */
static void test_strings(void)
{
	const unsigned char ok[] = { 0, 3, 'a', 'b', 'c' };
	const unsigned char nul[] = { 0, 3, 'a', 0, 'c' };
	const unsigned char lie[] = { 0, 9, 'a', 'b' };
	char out[4];
	struct wire_rd r;

	wire_rd_init(&r, ok, sizeof ok);
	wire_str(&r, out, 3);
	CHECK(wire_end(&r) == 0 && strcmp(out, "abc") == 0);
	wire_rd_init(&r, ok, sizeof ok);
	wire_str(&r, out, 2);                /* longer than the field */
	CHECK(wire_ok(&r) == -1 && out[0] == 0);
	wire_rd_init(&r, ok, sizeof ok);
	wire_str(&r, NULL, 3);               /* checked and skipped */
	CHECK(wire_end(&r) == 0);
	wire_rd_init(&r, nul, sizeof nul);
	wire_str(&r, out, 3);
	CHECK(wire_ok(&r) == -1 && out[0] == 0);
	wire_rd_init(&r, lie, sizeof lie);
	wire_str(&r, out, 200);
	CHECK(wire_ok(&r) == -1);
}

/* A writer that runs out of room goes bad and stays bad. */
static void test_writer_bounds(void)
{
	unsigned char buf[5];
	char big[70000];
	struct wire_wr w;

	wire_wr_init(&w, buf, sizeof buf);
	wire_put_u32(&w, 1);
	CHECK(wire_wr_end(&w) == 4);
	wire_put_u16(&w, 2);                 /* 6 > 5 */
	CHECK(wire_wr_end(&w) == 0 && w.bad);
	wire_put_u8(&w, 3);                  /* sticky, though one byte is free */
	CHECK(wire_wr_end(&w) == 0 && w.len == 4);
	CHECK(wire_put_room(&w, 0) == NULL);

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	wire_wr_init(&w, NULL, 0);
	wire_put_str(&w, big);               /* over 65535 bytes */
	CHECK(wire_wr_end(&w) == 0);
}

static int grow_calls;

static int grow(struct wire_wr *w, size_t need)
{
	size_t cap = w->cap ? w->cap * 2 : 2;
	unsigned char *b;

	grow_calls++;
	while (cap - w->len < need)
		cap *= 2;
	if ((b = realloc(w->buf, cap)) == NULL)
		return -1;
	w->buf = b;
	w->cap = cap;
	return 0;
}

/* With a grow hook the buffer follows, up to max. */
static void test_grow(void)
{
	struct wire_wr w;

	wire_wr_init(&w, NULL, 0);
	w.grow = grow;
	w.max = 20;
	for (int i = 0; i < 5; i++)
		wire_put_u32(&w, (uint32_t)i);
	CHECK(wire_wr_end(&w) == 20 && grow_calls > 1 && wire_be32(w.buf + 16) == 4);
	wire_put_u8(&w, 1);                  /* past max */
	CHECK(wire_wr_end(&w) == 0);
	free(w.buf);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_sticky);
	RUN(test_strings);
	RUN(test_writer_bounds);
	RUN(test_grow);
	return t_main_end();
}
