/*
 * mta/ops/config_files.h -- what the config names in other files: the TLS
 * certificate and key, the users file, the recipient lists, the
 * smarthost's credentials, the CA bundle for `tls verify`, and the DKIM
 * keys (each checked by a sign-and-verify self test: mta/ops/dkim_key.h).
 *
 * Loaded by `moat serve` and `moat check` after the config parses; an
 * error names the directive that pointed at the file:
 *   "moat.conf:12: tls-cert: /etc/moat/cert.pem: No such file or directory"
 * The caller owns struct tables (tables_free()).  A reload reads them all
 * again into a new struct config (mta/ops/loaded_config.h).  The roles get
 * them with their config when they are forked (they can open no file), and
 * each forgets the secrets it has no use for (tables_forget()).
 */
#ifndef MOAT_MTA_OPS_CONFIG_FILES_H
#define MOAT_MTA_OPS_CONFIG_FILES_H

#include <stddef.h>

#include "mta/net/tls.h"
#include "mta/ops/dkim_key.h"
#include "policy/conf.h"
#include "policy/rcptdb.h"
#include "policy/users.h"

struct tables {
	const char       *conf_path;  /* for messages; must outlive the tables */
	struct tls_creds *creds;      /* NULL without tls-cert; one reference held */
	struct users     *users;      /* NULL without users */
	struct rcptdb     rcpts;
	/* `smarthost ... auth FILE`: its one line "user:password". */
	int               have_auth;
	char              auth_user[256], auth_pass[256];
	/* tls-ca-file, loaded when a destination asks for `tls verify`. */
	struct tls_anchors *anchors;
	struct dkim_key  *dkim[CONF_MAX_DKIM]; /* one per dkim-sign line, in order */
};

/* Load everything c names.  Returns 0, or -1 with err set (t is then
 * left empty, nothing to free). */
int tables_load(struct tables *t, const struct conf *c, const char *conf_path, char *err,
                size_t errcap);

void tables_free(struct tables *t);

/* Wipe the smarthost password from this process's memory (a role that
 * does not deliver: explicit_bzero). */
void tables_forget_auth(struct tables *t);
/* Wipe the DKIM private keys, keep their public halves (every role but
 * the key role: the smtp role checks the key role's signatures). */
void tables_forget_dkim(struct tables *t);

/* Read a whole regular file of at most max bytes into a malloc'd buffer
 * (NUL-terminated, *len without the NUL).  NULL with "PATH: why" in err. */
char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errcap);

#endif
