/* mta/cmd/status_cmd.c -- moat status, moat reload; see status_cmd.h */
#include "mta/cmd/status_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mta/ops/control.h"

/* A reload reads every file the config names: give it time. */
#define OPSCMD_TIMEOUT_MS 10000

/* What the delivery role knows of its destinations: "destination KEY
 * STATE..." lines, nothing when none is throttled or down (or the
 * delivery role does not answer: status says what the smtp role knows). */
static void print_destinations(const char *queue_path)
{
	char text[CONTROL_REPLY_MAX], *line, *next;

	if (control_call(queue_path, ADMIN_NAME, "destinations", text, sizeof text,
	                 OPSCMD_TIMEOUT_MS) != CTL_OK || strcmp(text, "none") == 0)
		return;
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		printf("destination %s\n", line);
	}
}

int opscmd_main(const char *verb, const char *queue_path)
{
	char text[CONTROL_REPLY_MAX];
	int code = control_call(queue_path, CONTROL_NAME, verb, text, sizeof text, OPSCMD_TIMEOUT_MS);

	if (code < 0 && (errno == ENOENT || errno == ECONNREFUSED)) {
		fprintf(stderr, "moat %s: no server is running with the queue %s (nothing answers on "
		        "%s/%s: %s)\n", verb, queue_path, queue_path, CONTROL_NAME, strerror(errno));
		return 111;
	}
	if (code < 0) {
		fprintf(stderr, "moat %s: no server answers on %s/%s: %s\n", verb, queue_path,
		        CONTROL_NAME, strerror(errno));
		return 111;
	}
	if (code != CTL_OK) {
		fprintf(stderr, "moat %s: %s\n", verb, text);
		return code == CTL_FAILED ? 1 : 111;
	}
	printf("%s\n", text);
	if (strcmp(verb, "status") == 0)
		print_destinations(queue_path);
	return fflush(stdout) == 0 ? 0 : 111;
}
