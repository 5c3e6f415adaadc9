/*
 * mta/cmd/queue_cmd.c -- `moat queue list|show|count|flush|retry|hold|release|
 * delete`.  See queuecmd.h.
 */
#include "mta/cmd/queue_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/ops/control.h"
#include "queue/queue.h"

#define ADMIN_TIMEOUT_MS 10000

static const char *const state_name[] = { "pending", "delivered", "bounced" };

/* The length of the well-formed UTF-8 sequence at s (not a C1 control),
 * or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)      { n = 2; cp = s[0] & 0x1fu; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { n = 3; cp = s[0] & 0x0fu; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { n = 4; cp = s[0] & 0x07u; }
	else return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < 0xa0 || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
	    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Print s for a terminal: controls, '"', '\\' and broken UTF-8 as \xNN. */
static void put_safe(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s != '\0') {
		size_t n = 1;
		if (*s >= 0x80 && (n = utf8_len(s)) > 0) {
			fwrite(s, 1, n, stdout);
			s += n;
			continue;
		}
		if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
			printf("\\x%02x", *s);
		else
			putchar(*s);
		s++;
	}
}

static void put_time(int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		printf("@%lld", (long long)t);
	else
		fputs(buf, stdout);
}

static void put_rcpt(const struct queue_rcpt *r)
{
	putchar('<');
	put_safe(r->addr);
	printf("> %s attempts=%u next=", r->state <= QUEUE_RCPT_BOUNCED
	       ? state_name[r->state] : "?", (unsigned)r->attempts);
	if (r->state != QUEUE_RCPT_PENDING)
		putchar('-');
	else if (r->next_try == 0)
		fputs("now", stdout);
	else
		put_time(r->next_try);
	if (r->last_error[0] != '\0') {
		fputs(" error=\"", stdout);
		put_safe(r->last_error);
		putchar('"');
	}
	putchar('\n');
}

/* After the list, when a server runs: the destinations its delivery role
 * holds back now ("destination KEY throttled: ERROR", "... down NS: ..."). */
static void list_destinations(const char *queue_path)
{
	char text[CONTROL_REPLY_MAX], *line, *next;

	if (control_call(queue_path, ADMIN_NAME, "destinations", text, sizeof text, 2000) != CTL_OK ||
	    strcmp(text, "none") == 0)
		return;
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		printf("destination %s\n", line);
	}
}

static int list_one(void *arg, const struct queue_envelope *env)
{
	char id[QUEUE_ID_TEXT];
	size_t *listed = arg;

	(*listed)++;
	queue_id_format(env->id, id);
	printf("%s ", id);
	put_time(env->received);
	printf(" %llu <", (unsigned long long)env->size);
	put_safe(env->sender);
	fputs(env->flags & QUEUE_ENV_HOLD ? "> held\n" : ">\n", stdout);
	for (size_t i = 0; i < env->nrcpts; i++) {
		fputs("  ", stdout);
		put_rcpt(&env->rcpts[i]);
	}
	return ferror(stdout) ? 1 : 0;
}

static int body_out(void *arg, const void *buf, size_t len)
{
	(void)arg;
	return fwrite(buf, 1, len, stdout) == len ? 0 : 1;
}

static void put_field(const char *name, const char *value)
{
	printf("%s: ", name);
	if (value[0] == '\0')
		putchar('-');
	else
		put_safe(value);
	putchar('\n');
}

static void show_envelope(const struct queue_envelope *env)
{
	char id[QUEUE_ID_TEXT];
	queue_id_format(env->id, id);
	printf("id: %s\nreceived: ", id);
	put_time(env->received);
	printf("\nsize: %llu\nflags:", (unsigned long long)env->size);
	if (env->flags == 0)
		fputs(" -", stdout);
	if (env->flags & QUEUE_ENV_8BITMIME)
		fputs(" 8bitmime", stdout);
	if (env->flags & QUEUE_ENV_SMTPUTF8)
		fputs(" smtputf8", stdout);
	if (env->flags & QUEUE_ENV_HOLD)
		fputs(" hold", stdout);
	fputs("\nsender: <", stdout);
	put_safe(env->sender);
	fputs(">\n", stdout);
	put_field("helo", env->helo);
	put_field("client", env->client);
	put_field("auth", env->auth_user);
	for (size_t i = 0; i < env->nrcpts; i++) {
		fputs("rcpt: ", stdout);
		put_rcpt(&env->rcpts[i]);
	}
	putchar('\n');
}

static int cmd_show(struct queue *q, queue_id id)
{
	struct queue_envelope env;
	size_t cap = 16;
	int rc;

	memset(&env, 0, sizeof env);
	for (;;) {
		struct queue_rcpt *r = realloc(env.rcpts, cap * sizeof *r);
		if (r == NULL) {
			free(env.rcpts);
			fprintf(stderr, "moat queue: %s\n", strerror(errno));
			return QUEUECMD_SYSTEM;
		}
		env.rcpts = r;
		env.rcpt_cap = cap;
		rc = queue_get(q, id, &env);
		if (rc != QUEUE_EINVAL || env.nrcpts <= cap)
			break;
		cap = env.nrcpts;
	}
	if (rc == QUEUE_OK) {
		show_envelope(&env);
		rc = queue_body(q, id, body_out, NULL);
	}
	free(env.rcpts);
	if (rc == QUEUE_ENOTFOUND) {
		char text[QUEUE_ID_TEXT];
		queue_id_format(id, text);
		fprintf(stderr, "moat queue: %s: no such message\n", text);
		return QUEUECMD_NOTFOUND;
	}
	if (rc != QUEUE_OK) {
		fprintf(stderr, "moat queue: show: %s\n", ferror(stdout)
		        ? "cannot write output" : queue_strerror(rc));
		return QUEUECMD_SYSTEM;
	}
	return QUEUECMD_OK;
}

static int cmd_count(struct queue *q)
{
	struct queue_stats st;
	int rc = queue_stats(q, &st);
	if (rc != QUEUE_OK) {
		fprintf(stderr, "moat queue: count: %s\n", queue_strerror(rc));
		return QUEUECMD_SYSTEM;
	}
	printf("messages %llu\nbytes %llu\nmap_used %llu\nmap_size %llu\n",
	       (unsigned long long)st.messages, (unsigned long long)st.bytes,
	       (unsigned long long)st.map_used, (unsigned long long)st.map_size);
	return QUEUECMD_OK;
}

static int usage(void)
{
	fputs("usage: moat queue list | show ID | count | flush | retry ID | hold ID | release ID"
	      " | delete ID [-c FILE]\n", stderr);
	return QUEUECMD_USAGE;
}

/* The same operation on the queue itself, when no server runs; the
 * answer is worded as the server words it (mta/smtp/queue_runner.c,
 * deliver_admin), and says how it was done. */
static int admin_offline(const char *queue_path, uint64_t map_size, const char *verb, queue_id id,
                         char *text, size_t cap)
{
	static const char how[] = " (no server running: done on the queue directly)";
	struct queue_options opt = { map_size, 0 };
	struct queue *q;
	char err[512], idtext[QUEUE_ID_TEXT];
	size_t count = 0;
	int rc;

	if ((q = queue_open(queue_path, &opt, err, sizeof err)) == NULL) {
		snprintf(text, cap, "the server does not answer on %s/%s, and the queue cannot be "
		         "opened: %s", queue_path, ADMIN_NAME, err);
		return CTL_FAILED;
	}
	switch (verb[0]) {
	case 'f': rc = queue_retry(q, 0, &count); break;
	case 'r': rc = verb[2] == 't' ? queue_retry(q, id, &count) : queue_hold(q, id, 0); break;
	case 'h': rc = queue_hold(q, id, 1); break;
	default:  rc = queue_delete(q, id); break;
	}
	queue_close(q);
	queue_id_format(id, idtext);
	if (rc == QUEUE_ENOTFOUND) {
		snprintf(text, cap, "%s: no such message", idtext);
		return CTL_NOTFOUND;
	}
	if (rc != QUEUE_OK) {
		snprintf(text, cap, "%s", queue_strerror(rc));
		return CTL_FAILED;
	}
	if (verb[0] == 'f')
		snprintf(text, cap, "%zu waiting message%s due now%s", count, count == 1 ? "" : "s", how);
	else if (verb[0] == 'r' && verb[2] == 't')
		snprintf(text, cap, count ? "%s due now%s" : "%s is held: release it first%s", idtext, how);
	else
		snprintf(text, cap, "%s %s%s", idtext, verb[0] == 'h' ? "held" : verb[0] == 'd'
		         ? "deleted" : "released", how);
	return CTL_OK;
}

/* flush, retry, hold, release, delete: through the server's control
 * socket, or on the queue itself if no server runs. */
static int cmd_admin(const char *queue_path, uint64_t map_size, int argc, char **argv)
{
	char request[64], text[CONTROL_REPLY_MAX];
	queue_id id = 0;
	int code;

	if (argc != (strcmp(argv[0], "flush") == 0 ? 1 : 2))
		return usage();
	if (argc == 2 && queue_id_parse(argv[1], &id) != 0) {
		fputs("moat queue: an ID is 16 hex digits\n", stderr);
		return QUEUECMD_USAGE;
	}
	snprintf(request, sizeof request, "%s%s%s", argv[0], argc == 2 ? " " : "",
	         argc == 2 ? argv[1] : "");
	code = control_call(queue_path, ADMIN_NAME, request, text, sizeof text, ADMIN_TIMEOUT_MS);
	if (code < 0 && (errno == ENOENT || errno == ECONNREFUSED))
		code = admin_offline(queue_path, map_size, argv[0], id, text, sizeof text);
	else if (code < 0)
		snprintf(text, sizeof text, "the server on %s/%s: %s", queue_path, ADMIN_NAME,
		         strerror(errno));
	if (code == CTL_OK) {
		printf("%s\n", text);
		return fflush(stdout) == 0 ? QUEUECMD_OK : QUEUECMD_SYSTEM;
	}
	/* The ID once: the server's answer may name it already. */
	if (argc == 2 && strncasecmp(text, argv[1], strlen(argv[1])) != 0)
		fprintf(stderr, "moat queue: %s: %s\n", argv[1], text);
	else
		fprintf(stderr, "moat queue: %s\n", text);
	return code == CTL_NOTFOUND ? QUEUECMD_NOTFOUND : code == CTL_BAD ? QUEUECMD_USAGE
	       : QUEUECMD_SYSTEM;
}

int queuecmd_main(const char *queue_path, uint64_t map_size, int argc, char **argv)
{
	struct queue_options opt = { map_size, QUEUE_RDONLY };
	struct queue *q;
	char err[512];
	queue_id id = 0;
	size_t listed = 0;
	int rc;

	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "flush") == 0 || strcmp(argv[0], "retry") == 0 ||
	    strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0 ||
	    strcmp(argv[0], "delete") == 0)
		return cmd_admin(queue_path, map_size, argc, argv);
	if (strcmp(argv[0], "show") == 0) {
		if (argc != 2)
			return usage();
		if (queue_id_parse(argv[1], &id) != 0) {
			fputs("moat queue: an ID is 16 hex digits\n", stderr);
			return QUEUECMD_USAGE;
		}
	} else if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "count") != 0) {
		return usage();
	} else if (argc != 1) {
		return usage();
	}

	if ((q = queue_open(queue_path, &opt, err, sizeof err)) == NULL) {
		fprintf(stderr, "moat queue: %s\n", err);
		return QUEUECMD_SYSTEM;
	}
	if (argv[0][0] == 's') {
		rc = cmd_show(q, id);
	} else if (argv[0][0] == 'c') {
		rc = cmd_count(q);
	} else if ((rc = queue_list(q, list_one, &listed)) != QUEUE_OK) {
		fprintf(stderr, "moat queue: list: %s\n", ferror(stdout)
		        ? "cannot write output" : queue_strerror(rc));
		rc = QUEUECMD_SYSTEM;
	} else if (listed == 0) {
		puts("Mail queue is empty"); /* Postfix's words: a blank answer looks broken */
	}
	if (argv[0][0] == 'l' && rc == QUEUECMD_OK)
		list_destinations(queue_path);
	queue_close(q);
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == QUEUECMD_OK) {
		fputs("moat queue: cannot write output\n", stderr);
		rc = QUEUECMD_SYSTEM;
	}
	return rc;
}
