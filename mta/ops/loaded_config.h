/*
 * mta/ops/loaded_config.h -- one loaded configuration: the config file, parsed and
 * checked (policy/conf.h), and the files it names (mta/ops/config_files.h), as one
 * reference-counted object.
 *
 * The server holds the current one.  Each session takes a reference to the
 * one it started with and keeps it to the end, so a reload (SIGHUP, `moat
 * reload`) gives new sessions the new configuration while open sessions
 * finish with theirs, users, recipient lists and certificate included.
 * The last config_unref() frees it.  Single-threaded (the event loop):
 * the count is a plain integer.
 */
#ifndef MOAT_MTA_OPS_LOADED_CONFIG_H
#define MOAT_MTA_OPS_LOADED_CONFIG_H

#include <stddef.h>

#include "mta/ops/config_files.h"
#include "policy/conf.h"

struct config {
	unsigned      refs;
	unsigned      generation;         /* 1 at start, +1 per reload (logs, status) */
	char          path[CONF_PATH_MAX]; /* the file it was read from */
	struct conf   conf;
	struct tables tables;             /* tables.conf_path points at path */
};

/*
 * Read, parse and check the file at path (hostname from uname when the
 * file does not set it) into *c.  Returns 0, or -1 with the message in err:
 * "FILE:LINE: what is wrong", or "moat: PATH: why" when it cannot be read.
 * The files the config names are not read (config_load() does that).
 */
int config_read_conf(const char *path, struct conf *c, char *err, size_t errcap);

/* config_read_conf() and tables_load(): a config with one reference, or
 * NULL with err set as above (or "FILE:LINE: DIRECTIVE: PATH: why"). */
struct config *config_load(const char *path, char *err, size_t errcap);

/* Do a and b say the same about what only a restart applies: delivery
 * (delivery, route, smarthost, outbound-tls, tls-ca-file, dns-*, retry-*,
 * queue-lifetime, delay-warning, *-concurrency, timeout-connect,
 * timeout-reply)?  The delivery role keeps the config it started with (a
 * reload starts a new smtp role only): the supervisor warns. */
int config_same_restart(const struct conf *a, const struct conf *b);

/* Take a reference (returns c); drop one (frees at zero; NULL is fine). */
struct config *config_ref(struct config *c);
void config_unref(struct config *c);

#endif
