/* mta/cmd/tls_report_cmd.c -- `moat tls-report`; see tls_report_cmd.h */
#include "mta/cmd/tls_report_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/dns.h"
#include "policy/tlsrpt.h"
#include "queue/queue.h"

#define REPORT_MAX (1024 * 1024)   /* a report's JSON: far past any record's caps */

struct walk {
	const char *hostname;
	const char *date;
	const char *only;          /* a domain, or NULL */
	char       *buf;
	size_t      printed;
	int         failed;
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int tlsreportcmd_date(const char *s, int64_t *day)
{
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y = 0, m = 0, d = 0;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned v = (unsigned)(s[i] - '0');
		if (i < 4)
			y = y * 10 + v;
		else if (i < 7)
			m = m * 10 + v;
		else
			d = d * 10 + v;
	}
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
	    (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return -1;
	*day = days_from_civil(y, m, d) * 86400;
	return 0;
}

static int print_one(void *arg, const struct tlsrpt_report *r, unsigned flags)
{
	struct walk *w = arg;
	char contact[DNS_NAME_MAX + 16], id[DNS_NAME_MAX * 2 + 32];
	struct tlsrpt_meta m = { w->hostname, contact, id };
	size_t n;

	(void)flags;
	if (w->only != NULL && strcmp(w->only, r->domain) != 0)
		return 0;
	snprintf(contact, sizeof contact, "postmaster@%s", w->hostname);
	snprintf(id, sizeof id, "%s.%s@%s", w->date, r->domain, w->hostname);
	n = tlsrpt_json(r, &m, w->buf, REPORT_MAX);
	if (n >= REPORT_MAX) {
		fprintf(stderr, "moat tls-report: %s: the report does not fit %d bytes\n", r->domain,
		        REPORT_MAX);
		w->failed = 1;
		return 1;
	}
	fputs(w->buf, stdout);
	if (n == 0 || w->buf[n - 1] != '\n')
		fputc('\n', stdout);
	w->printed++;
	return 0;
}

int tlsreportcmd_main(const char *queue_path, uint64_t map_size, const char *hostname, int argc,
                      char **argv)
{
	struct queue_options opt = { map_size, QUEUE_RDONLY };
	struct walk w = { hostname, NULL, NULL, NULL, 0, 0 };
	struct queue *q;
	char err[512], only[DNS_NAME_MAX + 1];
	int64_t day;
	int rc;

	if (argc < 1 || argc > 2 || tlsreportcmd_date(argv[0], &day) != 0) {
		fputs("usage: moat tls-report [-c FILE] YYYY-MM-DD [DOMAIN]\n", stderr);
		return 100;
	}
	w.date = argv[0];
	if (argc == 2) {
		size_t len = strlen(argv[1]);

		if (len > DNS_NAME_MAX || !dns_name_ok(argv[1], len)) {
			fprintf(stderr, "moat tls-report: %s: not a domain name\n", argv[1]);
			return 100;
		}
		for (size_t i = 0; i <= len; i++)
			only[i] = (char)(argv[1][i] >= 'A' && argv[1][i] <= 'Z' ? argv[1][i] + 32
			                                                       : argv[1][i]);
		w.only = only;
	}
	if ((w.buf = malloc(REPORT_MAX)) == NULL)
		return 111;
	if ((q = queue_open(queue_path, &opt, err, sizeof err)) == NULL) {
		fprintf(stderr, "moat tls-report: %s\n", err);
		free(w.buf);
		return 111;
	}
	rc = queue_tlsrpt_list(q, day, print_one, &w);
	queue_close(q);
	free(w.buf);
	if (rc != QUEUE_OK) {
		fprintf(stderr, "moat tls-report: %s\n", queue_strerror(rc));
		return 111;
	}
	if (fflush(stdout) != 0 || w.failed)
		return 111;
	if (w.only != NULL && w.printed == 0) {
		fprintf(stderr, "moat tls-report: no report for %s on %s\n", w.only, w.date);
		return 1;
	}
	return 0;
}
