/*
 * tests/fuzz/fuzz_conf.c -- the config parser fed arbitrary files.
 * Invariants: the error message is always NUL-terminated within its buffer;
 * a file that passes conf_parse and conf_finish formats to text whose length
 * conf_format reports, and that text parses again to the same configuration
 * (its own format is a fixed point).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large: off the stack. */
static struct conf conf, again;
static char text[256 * 1024], text2[256 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[96];

	memset(err, 'Z', sizeof err);
	conf_defaults(&conf);
	if (conf_parse((const char *)data, size, "f.conf", &conf, err, sizeof err) != 0 ||
	    conf_finish(&conf, "f.conf", err, sizeof err) != 0) {
		if (memchr(err, '\0', sizeof err) == NULL || err[0] != 'f')
			abort();
		return 0;
	}
	size_t n = conf_format(&conf, text, sizeof text);
	if (n >= sizeof text || strlen(text) != n)
		abort();
	conf_defaults(&again);
	if (conf_parse(text, n, "again.conf", &again, err, sizeof err) != 0 ||
	    conf_finish(&again, "again.conf", err, sizeof err) != 0)
		abort();
	size_t n2 = conf_format(&again, text2, sizeof text2);
	if (n2 != n || memcmp(text, text2, n) != 0)
		abort();
	if (again.nlisteners != conf.nlisteners || again.ndomains != conf.ndomains ||
	    again.nrelay_nets != conf.nrelay_nets)
		abort();
	return 0;
}
