/* tests/unit/test_quota.c -- policy/quota.c: the verdict table, each quota
 * at its boundary (exactly at the limit, one byte past it), the order in
 * which they are checked, saturation on absurd figures, and the map-size
 * rule.  Limits come from a real conf_parse() + conf_finish(). */
#include "t.h"

#include <stdint.h>

#include "policy/quota.h"

#define KB (UINT64_C(1) << 10)
#define MB (UINT64_C(1) << 20)
#define GB (UINT64_C(1) << 30)

/* queue-max-bytes 1M, 10 messages, min free 1M and 10%, client share 50%. */
static const char conf_text[] =
	"domain example.org\n"
	"max-message-size 512K\n"
	"queue-max-bytes 1M\n"
	"queue-max-messages 10\n"
	"queue-min-free 1M\n"
	"queue-min-free-percent 10\n"
	"queue-client-share 50\n";

static struct conf conf;

static void load(struct conf *c, const char *text)
{
	char err[256];

	conf_defaults(c);
	CHECKF(conf_parse(text, strlen(text), "t.conf", c, err, sizeof err) == 0, "%s", err);
	CHECKF(conf_finish(c, "t.conf", err, sizeof err) == 0, "%s", err);
}

/* An empty queue on a 100 MiB filesystem with 50 MiB free and a big map. */
#define ROOMY { 0, 0, 0, 50 * MB, 100 * MB, 1 * GB }

struct vcase {
	const char *name;
	struct quota_usage u;
	uint64_t size;
	enum quota_verdict want;
};

static const struct vcase vcases[] = {
	{ "empty queue, no size", ROOMY, 0, QUOTA_OK },
	{ "empty queue, 100K", ROOMY, 100 * KB, QUOTA_OK },
	/* messages: at most 10 */
	{ "9 queued", { 9, 0, 0, 50 * MB, 100 * MB, GB }, 1, QUOTA_OK },
	{ "10 queued", { 10, 0, 0, 50 * MB, 100 * MB, GB }, 0, QUOTA_MESSAGES },
	/* bytes: at most 1M in all; share: at most 512K a client */
	{ "bytes to exactly 1M", { 1, 600 * KB, 0, 50 * MB, 100 * MB, GB }, 424 * KB, QUOTA_OK },
	{ "bytes 1 past 1M", { 1, 600 * KB, 0, 50 * MB, 100 * MB, GB }, 424 * KB + 1, QUOTA_BYTES },
	{ "bytes full, no size", { 1, MB, 0, 50 * MB, 100 * MB, GB }, 0, QUOTA_OK },
	{ "bytes over, no size", { 1, MB + 1, 0, 50 * MB, 100 * MB, GB }, 0, QUOTA_BYTES },
	{ "client to exactly 512K", { 1, 100 * KB, 100 * KB, 50 * MB, 100 * MB, GB }, 412 * KB,
	  QUOTA_OK },
	{ "client 1 past 512K", { 1, 100 * KB, 100 * KB, 50 * MB, 100 * MB, GB }, 412 * KB + 1,
	  QUOTA_CLIENT },
	/* disk: after the message (size + size/16 + 8K), 10 MiB (10% of 100 MiB)
	 * and 1 MiB must stay free; 10% is the larger here */
	{ "disk: 10M + need free", { 0, 0, 0, 10 * MB + 8 * KB + 68 * KB, 100 * MB, GB }, 64 * KB,
	  QUOTA_OK },
	{ "disk: one byte short", { 0, 0, 0, 10 * MB + 8 * KB + 68 * KB - 1, 100 * MB, GB },
	  64 * KB, QUOTA_DISK },
	{ "disk: min-free bytes bind on a small fs", { 0, 0, 0, MB + 8 * KB, 4 * MB, GB }, 0,
	  QUOTA_OK },
	{ "disk: min-free bytes, one short", { 0, 0, 0, MB + 8 * KB - 1, 4 * MB, GB }, 0,
	  QUOTA_DISK },
	{ "disk: need beyond free", { 0, 0, 0, 4 * KB, 0, GB }, 0, QUOTA_DISK },
	{ "disk: full fs", { 0, 0, 0, 0, 100 * MB, GB }, 0, QUOTA_DISK },
	/* map: room for need */
	{ "map: exactly need", { 0, 0, 0, 50 * MB, 100 * MB, 64 * KB + 4 * KB + 8 * KB }, 64 * KB,
	  QUOTA_OK },
	{ "map: one short", { 0, 0, 0, 50 * MB, 100 * MB, 64 * KB + 4 * KB + 8 * KB - 1 }, 64 * KB,
	  QUOTA_MAP },
	/* order: disk before map before messages before bytes before client */
	{ "all hit: disk", { 10, 2 * MB, 2 * MB, 0, 100 * MB, 0 }, MB, QUOTA_DISK },
	{ "map, messages, bytes, client hit: map", { 10, 2 * MB, 2 * MB, 50 * MB, 100 * MB, 0 },
	  MB, QUOTA_MAP },
	{ "messages, bytes, client hit: messages", { 10, 2 * MB, 2 * MB, 50 * MB, 100 * MB, GB },
	  MB, QUOTA_MESSAGES },
	{ "bytes and client hit: bytes", { 9, 2 * MB, 2 * MB, 50 * MB, 100 * MB, GB }, MB,
	  QUOTA_BYTES },
	/* absurd figures saturate instead of wrapping around to "fits" */
	{ "size UINT64_MAX", ROOMY, UINT64_MAX, QUOTA_DISK },
	{ "bytes UINT64_MAX", { 0, UINT64_MAX, 0, 50 * MB, 100 * MB, GB }, 1, QUOTA_BYTES },
	{ "client UINT64_MAX", { 0, 0, UINT64_MAX, 50 * MB, 100 * MB, GB }, 1, QUOTA_CLIENT },
	{ "disk unknown (max free, total 0)", { 0, 0, 0, UINT64_MAX, 0, UINT64_MAX }, MB / 2,
	  QUOTA_OK },
};

static void test_verdicts(void)
{
	for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
		const struct vcase *v = &vcases[i];
		enum quota_verdict got = quota_check(&conf, &v->u, v->size);
		CHECKF(got == v->want, "%s: want %s, got %s", v->name, quota_name(v->want),
		       quota_name(got));
	}
}

static void test_percent_and_share_rounding(void)
{
	struct conf c;
	struct quota_usage u = { 0, 0, 0, 0, 0, UINT64_MAX };

	/* A total that is not a multiple of 100: 1% of 12345 bytes is 123.45,
	 * so 123 bytes left is too few and 124 enough. */
	load(&c, "domain a.org\nqueue-min-free 0\nqueue-min-free-percent 1\n");
	u.disk_total = 12345;
	u.disk_free = quota_need(0) + 123;
	CHECK(quota_check(&c, &u, 0) == QUOTA_DISK);
	u.disk_free = quota_need(0) + 124;
	CHECK(quota_check(&c, &u, 0) == QUOTA_OK);
	/* Both 0: the disk may fill to the last byte the message needs. */
	load(&c, "domain a.org\nqueue-min-free 0\nqueue-min-free-percent 0\n");
	u.disk_total = 100 * MB;
	u.disk_free = quota_need(1000);
	CHECK(quota_check(&c, &u, 1000) == QUOTA_OK);
	u.disk_free--;
	CHECK(quota_check(&c, &u, 1000) == QUOTA_DISK);
	/* A huge filesystem: the percentage does not overflow. */
	u.disk_total = UINT64_MAX;
	u.disk_free = UINT64_MAX;
	load(&c, "domain a.org\nqueue-min-free-percent 50\n");
	CHECK(quota_check(&c, &u, 0) == QUOTA_OK);
	u.disk_free = UINT64_MAX / 2;
	CHECK(quota_check(&c, &u, 0) == QUOTA_DISK);
	/* Share 100%: a client may fill the whole queue, and no more. */
	load(&c, "domain a.org\nmax-message-size 1M\nqueue-max-bytes 1M\nqueue-client-share 100\n"
	         "queue-min-free 0\n");
	u.disk_free = 50 * MB;
	u.disk_total = 100 * MB;
	u.client_bytes = u.bytes = MB - 10;
	CHECK(quota_check(&c, &u, 10) == QUOTA_OK);
	CHECK(quota_check(&c, &u, 11) == QUOTA_BYTES);
	/* Share 33% of 10000000 bytes is 3300000. */
	load(&c, "domain a.org\nmax-message-size 1000\nqueue-max-bytes 10000000\n"
	         "queue-client-share 33\nqueue-min-free 0\n");
	u.bytes = u.client_bytes = 3300000 - 5;
	CHECK(quota_check(&c, &u, 5) == QUOTA_OK);
	CHECK(quota_check(&c, &u, 6) == QUOTA_CLIENT);
}

static void test_need(void)
{
	CHECK(quota_need(0) == 8 * KB);
	CHECK(quota_need(64 * KB) == 64 * KB + 4 * KB + 8 * KB);
	CHECK(quota_need(16 * MB) == 17 * MB + 8 * KB);
	CHECK(quota_need(UINT64_MAX) == UINT64_MAX);
	CHECK(quota_need(UINT64_MAX - 8 * KB) == UINT64_MAX);
}

static void test_map_size(void)
{
	/* 2 x bytes + 4K x messages + 64M, rounded up to a MiB. */
	CHECK(quota_map_size(2 * GB, 100000) == 4 * GB + 391 * MB + 64 * MB);
	CHECK(quota_map_size(MB, 1) == 2 * MB + MB + 64 * MB);
	CHECK(quota_map_size(MB, 256) == 2 * MB + MB + 64 * MB);
	CHECK(quota_map_size(MB, 257) == 2 * MB + 2 * MB + 64 * MB);
	CHECK(quota_map_size(UINT64_MAX, 1) == UINT64_MAX);
	CHECK(quota_map_size(0, UINT64_MAX) == UINT64_MAX);
	/* The largest configurable quotas still give a map queue-map-size takes. */
	CHECK(quota_map_size(256 * GB, 10000000) < (UINT64_C(1) << 40));
}

static void test_conf_map_size(void)
{
	struct conf c;
	char err[256];
	static const char small_map[] = "domain a.org\nqueue-map-size 16M\n";

	/* Not set: sized from the quotas (the defaults: 2G, 100000). */
	load(&c, "domain a.org\n");
	CHECK(c.queue_map_size == quota_map_size(2 * GB, 100000));
	load(&c, "domain a.org\nmax-message-size 1M\nqueue-max-bytes 10M\nqueue-max-messages 100\n");
	CHECK(c.queue_map_size == 20 * MB + MB + 64 * MB);
	/* Set and big enough: kept. */
	load(&c, "domain a.org\nqueue-map-size 8G\n");
	CHECK(c.queue_map_size == 8 * GB);
	/* Set and too small: refused, saying what it must be. */
	conf_defaults(&c);
	CHECK(conf_parse(small_map, strlen(small_map), "t.conf", &c, err, sizeof err) == 0);
	CHECK(conf_finish(&c, "t.conf", err, sizeof err) == -1);
	CHECKF(strcmp(err, "t.conf: queue-map-size 16M is below 4551M, what queue-max-bytes 2G "
	                   "and queue-max-messages 100000 need (leave queue-map-size out to have "
	                   "it sized for them)") == 0, "%s", err);
}

static void test_names(void)
{
	CHECK(strcmp(quota_name(QUOTA_OK), "ok") == 0);
	CHECK(strcmp(quota_name(QUOTA_DISK), "disk") == 0);
	CHECK(strcmp(quota_name(QUOTA_MAP), "map") == 0);
	CHECK(strcmp(quota_name(QUOTA_MESSAGES), "messages") == 0);
	CHECK(strcmp(quota_name(QUOTA_BYTES), "bytes") == 0);
	CHECK(strcmp(quota_name(QUOTA_CLIENT), "client") == 0);
	CHECK(strcmp(quota_name((enum quota_verdict)99), "unknown") == 0);
}

int main(void)
{
	load(&conf, conf_text);
	RUN(test_verdicts);
	RUN(test_percent_and_share_rounding);
	RUN(test_need);
	RUN(test_map_size);
	RUN(test_conf_map_size);
	RUN(test_names);
	return t_main_end();
}
