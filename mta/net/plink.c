/* mta/net/plink.c -- see plink.h */
#include "mta/net/plink.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy/wire.h"

int plink_decode(const unsigned char *buf, size_t len, int nfds, struct plink_msg *m)
{
	struct wire_rd r;
	const unsigned char *text;

	memset(m, 0, sizeof *m);
	wire_rd_init(&r, buf, len);
	m->type = wire_u32(&r);
	m->kind = wire_u32(&r);
	m->status = wire_i32(&r);
	if ((text = wire_bytes(&r, PLINK_TEXT)) == NULL || wire_end(&r) != 0)
		return -1;
	memcpy(m->text, text, PLINK_TEXT);
	if (memchr(m->text, 0, PLINK_TEXT) == NULL)
		return -1;
	switch (m->type) {
	case PLINK_FD:
		return nfds == 1 && m->kind >= PLINK_QUEUE && m->kind <= PLINK_DKIM &&
		               m->status == 0 && m->text[0] == 0 ? 0 : -1;
	case PLINK_DRAIN:
	case PLINK_RELOAD:
		return nfds == 0 && m->kind == 0 && m->status == 0 && m->text[0] == 0 ? 0 : -1;
	case PLINK_RELOADED:
		return nfds == 0 && m->kind == 0 && (m->status == 0 || m->status == -1) ? 0 : -1;
	default:
		return -1;
	}
}

void plink_encode(const struct plink_msg *m, unsigned char out[PLINK_SIZE])
{
	struct wire_wr w;
	unsigned char *text;

	wire_wr_init(&w, out, PLINK_SIZE);
	wire_put_u32(&w, m->type);
	wire_put_u32(&w, m->kind);
	wire_put_i32(&w, m->status);
	if ((text = wire_put_room(&w, PLINK_TEXT)) != NULL) {
		memset(text, 0, PLINK_TEXT);
		memcpy(text, m->text, strnlen(m->text, PLINK_TEXT - 1));
	}
}

int plink_send(int sock, const struct plink_msg *m, int fd)
{
	unsigned char buf[PLINK_SIZE];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh;

	plink_encode(m, buf);
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof u);
		mh.msg_control = u.b;
		mh.msg_controllen = sizeof u.b;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n == (ssize_t)sizeof buf)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

int plink_recv(int sock, struct plink_msg *m, int *fd)
{
	unsigned char buf[PLINK_SIZE + 1];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh;
	struct cmsghdr *c;
	int fds[4], nfds = 0, i;
	ssize_t n;

	*fd = -1;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.b;
	mh.msg_controllen = sizeof u.b;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k + sizeof(int) <= c->cmsg_len - CMSG_LEN(0); k += sizeof(int)) {
			int f;

			memcpy(&f, CMSG_DATA(c) + k, sizeof f);
			if (nfds < 4)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    plink_decode(buf, (size_t)n, nfds, m) != 0) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return n <= 0 ? -1 : -2;
	}
	if (nfds == 1)
		*fd = fds[0];
	return 1;
}
