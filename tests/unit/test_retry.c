/* tests/unit/test_retry.c -- the retry schedule (policy/retry.c). */
#include "policy/retry.h"
#include "tests/unit/t.h"

static const struct retry_policy postfixish = { 300, 3600, 5 * 86400, 4 * 3600 };

static void test_backoff(void)
{
	int64_t next = 0, t0 = 1000000;
	static const int64_t want[] = { 300, 600, 1200, 2400, 3600, 3600, 3600 };

	for (unsigned n = 1; n <= 7; n++) {
		CHECK(retry_next(&postfixish, n, t0, t0 + 10, &next) == RETRY_LATER);
		CHECKF(next == t0 + 10 + want[n - 1], "attempt %u: +%lld", n,
		       (long long)(next - t0 - 10));
	}
	/* Huge attempt counts do not overflow. */
	CHECK(retry_next(&postfixish, 65535, t0, t0 + 10, &next) == RETRY_LATER);
	CHECK(next == t0 + 10 + 3600);
	CHECK(retry_next(&postfixish, 0, t0, t0, &next) == RETRY_LATER && next == t0 + 300);
}

static void test_lifetime(void)
{
	int64_t next = 0, t0 = 50;
	int64_t deadline = t0 + 5 * 86400;

	/* Never scheduled past the deadline: the last try is at it. */
	CHECK(retry_next(&postfixish, 9, t0, deadline - 100, &next) == RETRY_LATER);
	CHECK(next == deadline);
	CHECK(retry_next(&postfixish, 9, t0, deadline - 1, &next) == RETRY_LATER);
	CHECK(next == deadline);
	/* At or after it: expired. */
	CHECK(retry_next(&postfixish, 10, t0, deadline, &next) == RETRY_EXPIRED);
	CHECK(retry_next(&postfixish, 10, t0, deadline + 99999, &next) == RETRY_EXPIRED);
	/* A clock that went back is not an expiry. */
	CHECK(retry_next(&postfixish, 1, t0, t0 - 1000, &next) == RETRY_LATER);
}

static void test_short(void)
{
	static const struct retry_policy p = { 1, 2, 10, 0 };
	int64_t next = 0;

	CHECK(retry_next(&p, 1, 0, 0, &next) == RETRY_LATER && next == 1);
	CHECK(retry_next(&p, 2, 0, 1, &next) == RETRY_LATER && next == 3);
	CHECK(retry_next(&p, 3, 0, 3, &next) == RETRY_LATER && next == 5);
	CHECK(retry_next(&p, 9, 0, 9, &next) == RETRY_LATER && next == 10);
	CHECK(retry_next(&p, 10, 0, 10, &next) == RETRY_EXPIRED);
}

static void test_warn(void)
{
	CHECK(!retry_warn_due(&postfixish, 0, 4 * 3600 - 1));
	CHECK(retry_warn_due(&postfixish, 0, 4 * 3600));
	CHECK(retry_warn_due(&postfixish, 0, 5 * 86400 - 1));
	CHECK(!retry_warn_due(&postfixish, 0, 5 * 86400));   /* bounced by then */
	static const struct retry_policy off = { 300, 3600, 86400, 0 };
	CHECK(!retry_warn_due(&off, 0, 80000));
}

int main(void)
{
	RUN(test_backoff);
	RUN(test_lifetime);
	RUN(test_short);
	RUN(test_warn);
	return t_main_end();
}
