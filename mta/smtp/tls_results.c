/* mta/smtp/tls_results.c -- TLS results to the queue role; see tls_results.h */
#include "mta/smtp/tls_results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/net/log.h"
#include "queue/tlsrec.h"

/* The delta and its record, in one allocation (too big for the stack). */
struct delta {
	struct tlsrpt_report r;
	char                 strings[TLSRPT_STRINGS_MAX];
	char                 mx[TLSRPT_MXHOSTS_MAX];
	unsigned char        rec[TLSREC_MAX];
};

/* The MTA-STS policy as the report describes it: its text, and its mx
 * patterns one a line. */
static void sts_describe(const struct mtasts_policy *p, struct delta *x)
{
	size_t o = 0;

	x->strings[0] = x->mx[0] = '\0';
	if (p == NULL)
		return;
	(void)mtasts_policy_format(p, x->strings, sizeof x->strings);
	for (size_t i = 0; i < p->nmx; i++) {
		size_t need = strlen(p->mx[i]) + (o ? 1 : 0);

		if (o + need >= sizeof x->mx)
			break;     /* whole patterns only */
		o += (size_t)snprintf(x->mx + o, sizeof x->mx - o, "%s%s", o ? "\n" : "", p->mx[i]);
	}
}

static int send_delta(struct qc *q, struct delta *x)
{
	size_t len = tlsrec_encode(&x->r, 0, x->rec, sizeof x->rec);

	if (len == 0 || qc_tlsrpt_add(q, x->rec, len, NULL, NULL) == 0) {
		log_warn("msg=\"cannot pass TLS results of %s to the queue: not in its report\"",
		         x->r.domain);
		return -1;
	}
	return 0;
}

int tlsres_sessions(struct qc *q, const char *domain, const struct mtasts_policy *sts,
                    const struct client_session *s, size_t n, int64_t now)
{
	struct delta *x;
	int rc;

	if (n == 0)
		return 0;
	if ((x = malloc(sizeof *x)) == NULL)
		return -1;
	if (tlsrpt_init(&x->r, domain, now) != 0) {
		free(x);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct client_session *c = &s[i];
		int dane = c->policy == CLIENT_TLS_DANE || c->policy == CLIENT_TLS_DANE_ENCRYPT;
		struct tlsrpt_policy_in pol;
		struct tlsrpt_failure_in f;

		if (dane) {
			snprintf(x->strings, sizeof x->strings, "%s", c->tlsa);
			x->mx[0] = '\0';
		} else {
			sts_describe(sts, x);
		}
		pol.type = dane ? TLSRPT_POLICY_TLSA : TLSRPT_POLICY_STS;
		pol.strings = x->strings;
		pol.mx_hosts = x->mx;
		memset(&f, 0, sizeof f);
		f.result = (unsigned)c->result;
		f.sending_ip = c->local;
		f.receiving_ip = c->ip;
		f.receiving_mx = c->mx;
		f.receiving_helo = c->helo;
		f.reason = c->reason;
		(void)tlsrpt_add(&x->r, &pol, c->result < 0 ? NULL : &f, now);
	}
	rc = send_delta(q, x);
	free(x);
	return rc;
}

int tlsres_fetch_failed(struct qc *q, const char *domain, unsigned result, const char *reason,
                        int64_t now)
{
	struct delta *x = malloc(sizeof *x);
	struct tlsrpt_policy_in pol = { TLSRPT_POLICY_STS, "", "" };
	struct tlsrpt_failure_in f = { result, "", "", "", "", reason };
	int rc;

	if (x == NULL)
		return -1;
	if (tlsrpt_init(&x->r, domain, now) != 0 || tlsrpt_add(&x->r, &pol, &f, now) < 0) {
		free(x);
		return -1;
	}
	rc = send_delta(q, x);
	free(x);
	return rc;
}
