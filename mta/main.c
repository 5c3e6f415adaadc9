/*
 * mta/main.c -- the moat command: subcommands and start-up.
 *
 * Exit codes (a documented protocol, as in skarnet's tools):
 *   0    success
 *   1    the config is invalid, or (queue) no such message
 *   100  usage error
 *   111  system failure (cannot open a socket, the queue, ...)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mta/ops/loaded_config.h"
#include "mta/init/init.h"
#include "mta/init/upgrade.h"
#include "mta/net/log.h"
#include "mta/cmd/status_cmd.h"
#include "mta/cmd/passwd.h"
#include "mta/cmd/queue_cmd.h"
#include "mta/cmd/relay_test.h"
#include "mta/roles/supervisor.h"
#include "mta/ops/config_files.h"
#include "policy/conf.h"
#include "policy/rules.h"

#define DEFAULT_CONF "/etc/moat/moat.conf"

static void usage(FILE *f)
{
	fputs("usage: moat serve [-c FILE]          run the server (foreground, logs to stderr)\n"
	      "       moat check [-c FILE]          check the config, print the effective one\n"
	      "       moat queue list [-c FILE]     list queued messages\n"
	      "       moat queue show [-c FILE] ID  print one message's envelope and body\n"
	      "       moat queue flush [-c FILE]    every waiting message due now\n"
	      "       moat queue retry|hold|release|delete [-c FILE] ID\n"
	      "       moat status [-c FILE]         what the running server is doing\n"
	      "       moat reload [-c FILE]         the running server reads its config again\n"
	      "       moat passwd [-5] [-r ROUNDS]  read a password on stdin, print its $6$ (or $5$) hash\n"
	      "       moat relay-test [-d OURDOMAIN] [-t FOREIGN] HOST[:PORT]\n"
	      "                                     probe a server with relay tricks (never DATA)\n"
	      "       moat version\n"
	      "       moat init                     the appliance's process 1 (image/)\n"
	      "       moat upgrade FILE             the appliance: FILE (moat-boot.img) into the other\n"
	      "                                     boot slot, tried at the next boot\n"
	      "FILE defaults to " DEFAULT_CONF ".\n", f);
}

/* Take "-c FILE" out of argv (anywhere after the subcommand). */
static const char *take_conf_arg(int *argc, char **argv)
{
	const char *path = DEFAULT_CONF;
	int i, j;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < *argc) {
			path = argv[i + 1];
			for (j = i; j + 2 <= *argc; j++)
				argv[j] = argv[j + 2];
			*argc -= 2;
			break;
		}
	}
	return path;
}

int main(int argc, char **argv)
{
	static struct conf conf; /* large: keep it off the stack */
	char err[1024];
	const char *cmd, *path;

	log_init("moat", LOG_INFO);
	/* The appliance's /init: the kernel starts us as process 1 with no
	 * subcommand.  (In a container, "moat serve" may be process 1 too.) */
	if ((getpid() == 1 && (argc == 1 || strcmp(argv[0], "/init") == 0)) ||
	    (argc == 2 && strcmp(argv[1], "init") == 0))
		return init_main();
	if (argc < 2) {
		usage(stderr);
		return 100;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "version") == 0) {
		puts("moat 0.1");
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "passwd") == 0)
		return passwd_main(argc, argv);
	if (strcmp(cmd, "relay-test") == 0)
		return relaytest_main(argc, argv);
	if (strcmp(cmd, "upgrade") == 0)
		return upgrade_main(argc, argv);
	path = take_conf_arg(&argc, argv);
	if (strcmp(cmd, "check") == 0 || strcmp(cmd, "serve") == 0) {
		struct config *cfg;

		if (argc != 1) {
			usage(stderr);
			return 100;
		}
		if ((cfg = config_load(path, err, sizeof err)) == NULL) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		if (strcmp(cmd, "check") == 0) {
			size_t need = conf_format(&cfg->conf, NULL, 0);
			size_t mneed = rules_matrix_format(&cfg->conf, NULL, 0);
			char *out = malloc(need + 1), *matrix = malloc(mneed + 1);

			if (out == NULL || matrix == NULL)
				return 111;
			conf_format(&cfg->conf, out, need + 1);
			rules_matrix_format(&cfg->conf, matrix, mneed + 1);
			fputs(out, stdout);
			fputs(matrix, stdout);
			free(out);
			free(matrix);
			config_unref(cfg);
			return 0;
		}
		return supervisor_run(cfg);
	}
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0) {
		if (argc != 1) {
			usage(stderr);
			return 100;
		}
		if (config_read_conf(path, &conf, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return opscmd_main(cmd, conf.queue_path);
	}
	if (strcmp(cmd, "queue") == 0) {
		if (argc < 2) {
			usage(stderr);
			return 100;
		}
		if (config_read_conf(path, &conf, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return queuecmd_main(conf.queue_path, conf.queue_map_size, argc - 1, argv + 1);
	}
	usage(stderr);
	return 100;
}
