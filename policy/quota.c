/* policy/quota.c -- the queue quota decision; see quota.h */
#include "quota.h"

#define MIB (UINT64_C(1) << 20)

/* LMDB keeps a 64 KiB chunk in 17 pages of 4 KiB (the value and a page
 * header), so body bytes cost 17/16 of their size; a message also has an
 * envelope record, a last partial chunk and its share of B-tree pages. */
#define PER_MESSAGE (UINT64_C(8) * 1024)

uint64_t quota_need(uint64_t size)
{
	uint64_t extra = size / 16 + PER_MESSAGE;

	return size > UINT64_MAX - extra ? UINT64_MAX : size + extra;
}

/* a + b, saturating: usage figures come from outside and must not wrap. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int disk_ok(const struct conf *c, const struct quota_usage *u, uint64_t need)
{
	uint64_t left;

	if (need > u->disk_free)
		return 0;
	left = u->disk_free - need;
	if (left < c->queue_min_free)
		return 0;
	/* left >= total * percent / 100, rounded up, without overflow. */
	return left >= u->disk_total / 100 * c->queue_min_free_percent +
	               (u->disk_total % 100 * c->queue_min_free_percent + 99) / 100;
}

enum quota_verdict quota_check(const struct conf *c, const struct quota_usage *u,
                               uint64_t size)
{
	uint64_t need = quota_need(size);
	uint64_t share = c->queue_max_bytes / 100 * c->queue_client_share +
	                 c->queue_max_bytes % 100 * c->queue_client_share / 100;

	if (!disk_ok(c, u, need))
		return QUOTA_DISK;
	if (need > u->map_free)
		return QUOTA_MAP;
	if (u->messages >= c->queue_max_messages)
		return QUOTA_MESSAGES;
	if (add_sat(u->bytes, size) > c->queue_max_bytes)
		return QUOTA_BYTES;
	if (add_sat(u->client_bytes, size) > share)
		return QUOTA_CLIENT;
	return QUOTA_OK;
}

const char *quota_name(enum quota_verdict v)
{
	switch (v) {
	case QUOTA_OK:       return "ok";
	case QUOTA_DISK:     return "disk";
	case QUOTA_MAP:      return "map";
	case QUOTA_MESSAGES: return "messages";
	case QUOTA_BYTES:    return "bytes";
	case QUOTA_CLIENT:   return "client";
	default:             return "unknown";
	}
}

uint64_t quota_map_size(uint64_t max_bytes, uint64_t max_messages)
{
	uint64_t m = add_sat(add_sat(add_sat(max_bytes, max_bytes),
	                             max_messages > UINT64_MAX / 4096 ? UINT64_MAX
	                                                              : max_messages * 4096),
	                     64 * MIB);

	return m > UINT64_MAX - (MIB - 1) ? UINT64_MAX : (m + MIB - 1) / MIB * MIB;
}
