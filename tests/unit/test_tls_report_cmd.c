/* tests/unit/test_tls_report_cmd.c -- `moat tls-report`'s DATE
 * (mta/cmd/tls_report_cmd.c tlsreportcmd_date): real days only, checked
 * against the C library's own calendar (timegm). */
#include "mta/cmd/tls_report_cmd.h"
#include "tests/unit/t.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t by_libc(int y, int m, int d)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return (int64_t)timegm(&tm);
}

/* Every day of 1970..2100 (leap years, 1900-like 2100) as timegm says. */
static void test_every_day(void)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	char text[48];
	int64_t day;

	for (int y = 1970; y <= 2100; y++)
		for (int m = 1; m <= 12; m++) {
			int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
			int last = mdays[m - 1] + (m == 2 && leap);

			for (int d = 1; d <= last + 1; d++) {
				snprintf(text, sizeof text, "%04d-%02d-%02d", y, m, d);
				if (d > last) {
					CHECKF(tlsreportcmd_date(text, &day) == -1, "%s", text);
					continue;
				}
				day = 0;
				CHECKF(tlsreportcmd_date(text, &day) == 0 && day == by_libc(y, m, d),
				       "%s: %lld", text, (long long)day);
			}
		}
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"", "2026-12-7", "2026-1-07", "26-12-07", "2026/12/07", "2026-12-07 ", " 2026-12-07",
		"2026-12-07T00:00:00Z", "2026-00-10", "2026-13-10", "2026-12-00", "2026-12-32",
		"1969-12-31", "0000-01-01", "2026-+2-07", "2026-12--7", "20261207xx", "2026-02-29",
		"2100-02-29", "2026-12-0\xff",
	};
	int64_t day = 42;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECKF(tlsreportcmd_date(bad[i], &day) == -1 && day == 42, "%s", bad[i]);
	CHECK(tlsreportcmd_date("2000-02-29", &day) == 0 && day == 951782400);
	CHECK(tlsreportcmd_date("1970-01-01", &day) == 0 && day == 0);
	CHECK(tlsreportcmd_date("9999-12-31", &day) == 0 && day == 253402214400);
}

int main(void)
{
	RUN(test_every_day);
	RUN(test_malformed);
	return t_main_end();
}
