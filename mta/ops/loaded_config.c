/* mta/ops/loaded_config.c -- one loaded configuration; see config.h */
#include "mta/ops/loaded_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define CONF_FILE_MAX (1024 * 1024)

int config_read_conf(const char *path, struct conf *c, char *err, size_t errcap)
{
	size_t len = 0;
	char e[900];
	char *text = file_read(path, CONF_FILE_MAX, &len, e, sizeof e);
	int r;

	if (text == NULL) {
		snprintf(err, errcap, "moat: %s", e);
		return -1;
	}
	conf_defaults(c);
	r = conf_parse(text, len, path, c, err, errcap);
	free(text);
	if (r < 0)
		return -1;
	if (c->hostname[0] == 0) {
		struct utsname u;

		if (uname(&u) == 0)
			snprintf(c->hostname, sizeof c->hostname, "%s", u.nodename);
	}
	return conf_finish(c, path, err, errcap);
}

struct config *config_load(const char *path, char *err, size_t errcap)
{
	struct config *c;

	if (strlen(path) >= sizeof c->path) {
		snprintf(err, errcap, "moat: %.100s...: path too long", path);
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		snprintf(err, errcap, "moat: %s: out of memory", path);
		return NULL;
	}
	memcpy(c->path, path, strlen(path) + 1);
	if (config_read_conf(c->path, &c->conf, err, errcap) != 0 ||
	    tables_load(&c->tables, &c->conf, c->path, err, errcap) != 0) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	c->generation = 1;
	return c;
}

/* The lines of c's effective text that name a directive only a restart
 * applies (the delivery role's; the smtp role's -- DNSBL, verify-* --
 * come with each new generation), malloc'd (NULL when out of memory). */
static char *restart_lines(const struct conf *c)
{
	static const char *const names[] = {
		"delivery", "route", "smarthost", "outbound-tls", "tls-ca-file", "dns-server",
		"dns-timeout", "retry-min", "retry-max", "queue-lifetime", "delay-warning",
		"delivery-concurrency", "destination-concurrency", "timeout-connect",
		"timeout-reply",
	};
	size_t need = conf_format(c, NULL, 0), o = 0;
	char *all = malloc(need + 1), *out = malloc(need + 1), *line, *save = NULL;

	if (all == NULL || out == NULL) {
		free(all);
		free(out);
		return NULL;
	}
	conf_format(c, all, need + 1);
	for (line = strtok_r(all, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t w = strcspn(line, " ");

		for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
			if (strlen(names[k]) == w && memcmp(line, names[k], w) == 0) {
				o += (size_t)sprintf(out + o, "%s\n", line);
				break;
			}
		}
	}
	out[o] = 0;
	free(all);
	return out;
}

int config_same_restart(const struct conf *a, const struct conf *b)
{
	char *x = restart_lines(a), *y = restart_lines(b);
	int same = x != NULL && y != NULL && strcmp(x, y) == 0;

	free(x);
	free(y);
	return same;
}

struct config *config_ref(struct config *c)
{
	c->refs++;
	return c;
}

void config_unref(struct config *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	tables_free(&c->tables);
	free(c);
}
