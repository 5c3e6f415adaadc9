/*
 * mta/net/plink.h -- the link between the supervisor and each role: a
 * SOCK_SEQPACKET socketpair carrying fixed-size typed messages, and with
 * PLINK_FD exactly one descriptor (SCM_RIGHTS).
 *
 *   PLINK_FD        supervisor -> role: a new link of kind (enum plink_kind)
 *                   -- the queue role was restarted, a key role (its TLS
 *                   and its DKIM link, one message each), a client
 *   PLINK_DRAIN     supervisor -> smtp: a new generation took over: stop
 *                   accepting, finish the open sessions, exit; and
 *                   smtp -> supervisor: done, no connection is taken here
 *                   any more (the reload is said done only then)
 *   PLINK_RELOAD    smtp -> supervisor: `moat reload` was asked
 *   PLINK_RELOADED  supervisor -> smtp: its answer (status 0 or -1, text)
 *
 * Every message is PLINK_SIZE bytes; a message of another size, an
 * unknown type or kind, text not NUL-terminated, or descriptors where
 * none belong (or none where one does) does not decode: the receiver
 * treats the link as broken (a role exits; the supervisor ends that role).
 */
#ifndef MOAT_MTA_NET_PLINK_H
#define MOAT_MTA_NET_PLINK_H

#include <stddef.h>
#include <stdint.h>

enum plink_type { PLINK_FD = 1, PLINK_DRAIN, PLINK_RELOAD, PLINK_RELOADED };
enum plink_kind {
	PLINK_NONE = 0,
	PLINK_QUEUE,          /* to smtp or delivery: your link to the queue role */
	PLINK_KEY,            /* to smtp: your TLS link to the key role */
	PLINK_SMTP_CLIENT,    /* to queue: a link from an smtp role */
	PLINK_DELIVERY_CLIENT,/* to queue: a link from the delivery role */
	PLINK_DKIM            /* to smtp or delivery: your DKIM link to a key role
	                         (mta/net/dkim_client.h) */
};

#define PLINK_TEXT 500
#define PLINK_SIZE (12 + PLINK_TEXT)

struct plink_msg {
	uint32_t type;
	uint32_t kind;     /* PLINK_FD */
	int32_t  status;   /* PLINK_RELOADED */
	char     text[PLINK_TEXT];
};

/* Pure: decode buf[0..len) that came with nfds descriptors.  0 or -1. */
int plink_decode(const unsigned char *buf, size_t len, int nfds, struct plink_msg *m);
void plink_encode(const struct plink_msg *m, unsigned char out[PLINK_SIZE]);

/* Send m (with fd for PLINK_FD, else -1).  0 or -1. */
int plink_send(int sock, const struct plink_msg *m, int fd);
/* Receive one message: 1 (with *fd for PLINK_FD, else -1), 0 nothing yet
 * (non-blocking), -1 the link is closed, -2 it sent something that does
 * not decode (descriptors that came with it are closed). */
int plink_recv(int sock, struct plink_msg *m, int *fd);

#endif
