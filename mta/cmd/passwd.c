/* mta/cmd/passwd.c -- moat passwd; see passwd.h */
#include "mta/cmd/passwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "mta/net/tls.h"
#include "policy/shacrypt.h"

#define PASS_MAX 1024

static const char salt_chars[] =
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int passwd_main(int argc, char **argv)
{
	char pass[PASS_MAX + 2], setting[64], out[SHACRYPT_MAX];
	unsigned char rnd[SHACRYPT_SALT_MAX];
	char salt[SHACRYPT_SALT_MAX + 1];
	unsigned long rounds = 0;
	struct termios old, quiet;
	int variant = 6, tty = isatty(0), i;
	size_t len;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-5") == 0) {
			variant = 5;
		} else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
			char *end;
			rounds = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || rounds < SHACRYPT_ROUNDS_MIN || rounds > SHACRYPT_ROUNDS_MAX) {
				fprintf(stderr, "moat passwd: rounds must be %d..%lu\n", SHACRYPT_ROUNDS_MIN,
				        SHACRYPT_ROUNDS_MAX);
				return 100;
			}
		} else {
			fprintf(stderr, "usage: moat passwd [-5] [-r ROUNDS] < password\n");
			return 100;
		}
	}
	if (tty) {
		fputs("Password: ", stderr);
		if (tcgetattr(0, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(0, TCSAFLUSH, &quiet);
		}
	}
	if (fgets(pass, sizeof pass, stdin) == NULL)
		pass[0] = '\0';
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputs("\n", stderr);
	}
	len = strlen(pass);
	if (len > PASS_MAX) {
		fprintf(stderr, "moat passwd: password longer than %d bytes\n", PASS_MAX);
		return 1;
	}
	while (len > 0 && (pass[len - 1] == '\n' || pass[len - 1] == '\r'))
		pass[--len] = '\0';
	if (len == 0) {
		fprintf(stderr, "moat passwd: empty password\n");
		return 1;
	}
	if (tls_entropy(rnd, sizeof rnd) != 0) {
		fprintf(stderr, "moat passwd: no entropy from the kernel\n");
		return 111;
	}
	for (size_t k = 0; k < sizeof rnd; k++)
		salt[k] = salt_chars[rnd[k] & 63];
	salt[sizeof rnd] = '\0';
	if (rounds)
		snprintf(setting, sizeof setting, "$%d$rounds=%lu$%s", variant, rounds, salt);
	else
		snprintf(setting, sizeof setting, "$%d$%s", variant, salt);
	if (shacrypt(pass, len, setting, strlen(setting), out, sizeof out) == 0) {
		fprintf(stderr, "moat passwd: cannot hash\n");
		return 111;
	}
	memset(pass, 0, sizeof pass);
	puts(out);
	return 0;
}
