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
#include "mta/cmd/conf_path.h"
#include "mta/cmd/status_cmd.h"
#include "mta/cmd/passwd.h"
#include "mta/cmd/queue_cmd.h"
#include "mta/cmd/tls_report_cmd.h"
#include "mta/cmd/relay_test.h"
#include "mta/cmd/dkim_keygen.h"
#include "mta/roles/supervisor.h"
#include "mta/ops/config_files.h"
#include "policy/conf.h"
#include "policy/rules.h"

#define MOAT_VERSION "moat 0.1"

/* Every command, as docs/operations.md and docs/moat.8 list them (a test
 * checks that each is in both). */
static void usage(FILE *f)
{
	fputs("usage: moat serve [-c FILE]            run the server (foreground, logs to stderr)\n"
	      "       moat check [-c FILE]            check the config, print the effective one\n"
	      "       moat status [-c FILE]           what the running server is doing\n"
	      "       moat reload [-c FILE]           the running server reads its config again\n"
	      "       moat queue list [-c FILE]       list queued messages\n"
	      "       moat queue show [-c FILE] ID    print one message's envelope and body\n"
	      "       moat queue count [-c FILE]      messages, bytes, map used and map size\n"
	      "       moat queue flush [-c FILE]      every waiting message due now\n"
	      "       moat queue retry [-c FILE] ID   that message due now\n"
	      "       moat queue hold [-c FILE] ID    never due until released\n"
	      "       moat queue release [-c FILE] ID due again\n"
	      "       moat queue delete [-c FILE] ID  removed\n"
	      "       moat tls-report [-c FILE] DATE [DOMAIN]\n"
	      "                                       the day's TLS reports (RFC 8460 JSON), a line each\n"
	      "       moat passwd [-5] [-r ROUNDS]    read a password on stdin, print its $6$ (or $5$) hash\n"
	      "       moat relay-test [-d OURDOMAIN] [-t FOREIGN] HOST[:PORT]\n"
	      "                                       probe a server with relay tricks (never DATA)\n"
	      "       moat dkim-keygen [-o KEYFILE] [-pkcs1] SELECTOR DOMAIN [BITS]\n"
	      "                                       a DKIM key and the DNS record to publish\n"
	      "       moat init                       the appliance's process 1 (image/)\n"
	      "       moat upgrade FILE               the appliance: FILE (moat-boot.img) into the other\n"
	      "                                       boot slot, tried at the next boot\n"
	      "       moat version | -V | --version   print the version\n"
	      "       moat help | -h | --help         this text\n"
	      "Without -c: $MOAT_CONF, else " CONFPATH_DEFAULT "; status, reload and queue also\n"
	      "find the config of the one moat serve running here (the demo of make run).\n"
	      "Exit: 0 done, 1 bad config or no such message, 100 usage, 111 system failure.\n", f);
}

/* Take "-c FILE" out of argv (anywhere after the subcommand) into *path
 * (NULL when absent); -1 when -c has no FILE. */
static int take_conf_arg(int *argc, char **argv, const char **path)
{
	int i, j;

	*path = NULL;
	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "-c") != 0)
			continue;
		if (i + 1 >= *argc)
			return -1;
		*path = argv[i + 1];
		for (j = i; j + 2 <= *argc; j++)
			argv[j] = argv[j + 2];
		*argc -= 2;
		break;
	}
	return 0;
}

/* The config for cmd (conf_path.h); NULL after saying what to pass.  A
 * config found from the running server is named on stderr, so that the
 * operator knows which server answered. */
static const char *config_path(const char *given, int admin, const char *cmd)
{
	static char path[CONFPATH_MAX], err[2 * CONFPATH_MAX + 256];
	int found;

	if (confpath_find(given, admin, cmd, path, sizeof path, &found, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	if (found)
		fprintf(stderr, "moat %s: the running server's config: %s\n", cmd, path);
	else if (given == NULL && strcmp(path, CONFPATH_DEFAULT) == 0 && access(path, F_OK) != 0) {
		fprintf(stderr, "moat %s: " CONFPATH_DEFAULT " does not exist; pass -c FILE (or set "
		        "MOAT_CONF=FILE)\n", cmd);
		return NULL;
	}
	return path;
}

/* moat check (the effective config and the relay matrix) or moat serve. */
static int check_or_serve(const char *cmd, int argc, const char *path)
{
	struct config *cfg;
	char err[1024];

	if (argc != 1) {
		usage(stderr);
		return 100;
	}
	if ((path = config_path(path, 0, cmd)) == NULL)
		return 1;
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
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		puts(MOAT_VERSION);
		return fflush(stdout) == 0 ? 0 : 111;
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
	if (strcmp(cmd, "dkim-keygen") == 0)
		return dkimkeygen_main(argc, argv);
	if (take_conf_arg(&argc, argv, &path) < 0) {
		fprintf(stderr, "moat %s: -c needs a FILE\n", cmd);
		return 100;
	}
	if (strcmp(cmd, "check") == 0 || strcmp(cmd, "serve") == 0)
		return check_or_serve(cmd, argc, path);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0) {
		if (argc != 1) {
			usage(stderr);
			return 100;
		}
		if ((path = config_path(path, 1, cmd)) == NULL)
			return 1;
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
		if ((path = config_path(path, 1, cmd)) == NULL)
			return 1;
		if (config_read_conf(path, &conf, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return queuecmd_main(conf.queue_path, conf.queue_map_size, argc - 1, argv + 1);
	}
	if (strcmp(cmd, "tls-report") == 0) {
		if ((path = config_path(path, 1, cmd)) == NULL)
			return 1;
		if (config_read_conf(path, &conf, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return tlsreportcmd_main(conf.queue_path, conf.queue_map_size, conf.hostname, argc - 1,
		                         argv + 1);
	}
	usage(stderr);
	return 100;
}
