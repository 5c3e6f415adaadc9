/* mta/init/ntpc.c -- the appliance's SNTP client; see ntpc.h */
#include "mta/init/ntpc.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mta/net/log.h"
#include "policy/sntp.h"

#define TRIES        2
#define WAIT_MS      1000
#define STEP_NS      500000000ll   /* from 0.5 s off, step rather than slew */
#define NS           1000000000ll

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* One server: its offset and delay (ns).  0, or -1 (logged at debug). */
static int ask(const char *server, int64_t *offset, int64_t *delay)
{
	struct addrinfo hints, *ai = NULL;
	unsigned char req[SNTP_PKT_LEN], rep[SNTP_PKT_LEN + 16];
	struct sntp_reply r;
	int fd, rc = -1;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(server, "123", &hints, &ai) != 0 || ai == NULL)
		return -1;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto out;
	for (int t = 0; t < TRIES && rc != 0; t++) {
		sntp_ts cookie;
		if (getrandom(&cookie, sizeof cookie, 0) != (ssize_t)sizeof cookie)
			goto out;
		sntp_request(req, sizeof req, cookie);
		int64_t t1 = real_ns();
		if (send(fd, req, sizeof req, 0) != (ssize_t)sizeof req)
			continue;
		int64_t end = t1 + (int64_t)WAIT_MS * 1000000;
		for (;;) {
			struct pollfd pf = { fd, POLLIN, 0 };
			int64_t left = (end - real_ns()) / 1000000;
			if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
				break;
			ssize_t n = recv(fd, rep, sizeof rep, 0);
			int64_t t4 = real_ns();
			if (n <= 0)
				break;
			enum sntp_status st = sntp_parse(rep, (size_t)n, cookie, &r);
			if (st == SNTP_KISS || st == SNTP_UNSYNCED) {
				log_warn("msg=\"ntp server %s: %s\"", server,
				         st == SNTP_KISS ? r.kiss : "its clock is not synchronized");
				goto out;
			}
			if (st != SNTP_OK)
				continue;   /* not the answer to this request */
			sntp_offset(t1, sntp_to_unix_ns(r.receive), sntp_to_unix_ns(r.transmit), t4, offset,
			            delay);
			rc = 0;
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

static void set_clock(const char *server, int64_t offset, int64_t delay, int step)
{
	char sign = offset < 0 ? '-' : '+';
	int64_t mag = offset < 0 ? -offset : offset;
	const char *how;

	if (step || mag >= STEP_NS) {
		int64_t now = real_ns() + offset;
		struct timespec ts = { (time_t)(now / NS), (long)(now % NS) };
		how = clock_settime(CLOCK_REALTIME, &ts) == 0 ? "step" : "step-failed";
	} else {
		struct timeval tv = { (time_t)(offset / 1000000000), (suseconds_t)(offset % NS / 1000) };
		how = adjtime(&tv, NULL) == 0 ? "slew" : "slew-failed";
	}
	log_event("clock", "server=%s offset=%c%lld.%06llds delay=%lld.%06llds action=%s", server, sign,
	          (long long)(mag / NS), (long long)(mag % NS / 1000), (long long)(delay / NS),
	          (long long)(delay % NS / 1000), how);
}

pid_t ntpc_spawn(const char servers[][NTPC_NAME_MAX + 1], size_t n, int step)
{
	pid_t pid = fork();

	if (pid != 0) {
		if (pid < 0)
			log_warn("msg=\"ntp: fork: %s\"", strerror(errno));
		return pid;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int64_t best_off = 0, best_delay = -1;
	size_t best = 0;
	for (size_t k = 0; k < n; k++) {
		int64_t off, delay;
		if (ask(servers[k], &off, &delay) == 0 && (best_delay < 0 || delay < best_delay)) {
			best_off = off;
			best_delay = delay;
			best = k;
		}
	}
	if (best_delay < 0) {
		char list[512];
		size_t o = 0;
		for (size_t k = 0; k < n && o < sizeof list; k++)
			o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? "," : "", servers[k]);
		log_warn("msg=\"no NTP server answered: the clock stays as it is\" servers=%s", list);
		_exit(1);
	}
	set_clock(servers[best], best_off, best_delay, step);
	_exit(0);
}
