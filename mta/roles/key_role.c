/* mta/roles/key_role.c -- the key role; see key_role.h */
#include "mta/roles/key_role.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "mta/net/keymsg.h"
#include "mta/net/log.h"
#include "mta/net/tls.h"
#include "mta/roles/roles.h"

/* ---- the key role --------------------------------------------------------- */

int key_role_serve(int fd, struct tls_creds *creds)
{
	unsigned char in[KEYMSG_MAX], out[KEYMSG_MAX];
	unsigned char work[KEYMSG_MAX];
	void *sctx;
	const struct tls_signer *s = tls_creds_signer(creds, &sctx);
	size_t modlen = tls_creds_modlen(creds);
	const char *why = NULL;
	int rc = 111;

	for (;;) {
		struct keymsg q, r;
		ssize_t n = keymsg_recv(fd, in, &why);
		size_t olen;

		if (n == 0) {
			rc = 0;
			break;
		}
		if (n < 0)
			break;
		if (keymsg_decode(in, (size_t)n, modlen, &q, &why) != 0)
			break;
		memset(&r, 0, sizeof r);
		r.id = q.id;
		if (q.type == KEYMSG_SIGN_REQ) {
			size_t sl = s->sign(sctx, q.hash_id, q.data, q.len, work, KEYMSG_SIG_MAX);

			r.type = KEYMSG_SIGN_REP;
			r.ok = sl > 0 && sl <= KEYMSG_SIG_MAX;
			r.data = work;
			r.len = r.ok ? sl : 0;
		} else if (q.type == KEYMSG_DECRYPT_REQ && s->rsa_decrypt != NULL) {
			memcpy(work, q.data, q.len);
			r.type = KEYMSG_DECRYPT_REP;
			r.ok = s->rsa_decrypt(sctx, work, q.len) & 1;
			r.data = work;
			r.len = KEYMSG_PMS;
		} else {
			why = "unexpected type";
			break;
		}
		olen = keymsg_encode(out, sizeof out, modlen, &r);
		if (olen == 0) {
			why = "cannot encode the reply";
			break;
		}
		if (keymsg_send(fd, out, olen, &why) != 0) {
			if (errno == EPIPE || errno == ECONNRESET)
				rc = 0; /* the smtp role went away (or gave up waiting) */
			break;
		}
		explicit_bzero(work, sizeof work);
		explicit_bzero(out, sizeof out);
	}
	explicit_bzero(work, sizeof work);
	explicit_bzero(out, sizeof out);
	explicit_bzero(in, sizeof in);
	if (rc != 0)
		log_warn("role=key key-link=broken why=\"%s\"", why ? why : "?");
	return rc;
}

int key_role_main(struct config *cfg, int kfd)
{
	sigset_t mask;

	/* SIGTERM ends it like EOF does; SIGHUP is the supervisor's. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cfg->tables.creds == NULL || role_enter(ROLE_KEY, cfg, NULL) != 0)
		return 111;
	return key_role_serve(kfd, cfg->tables.creds);
}
