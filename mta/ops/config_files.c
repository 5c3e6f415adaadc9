/* mta/ops/config_files.c -- files the config names; see config_files.h */
#include "mta/ops/config_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/net/log.h"

#define PEM_FILE_MAX (1024 * 1024)

char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errcap)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		if (!S_ISREG(st.st_mode))
			snprintf(err, errcap, "%s: not a regular file", path);
		else
			snprintf(err, errcap, "%s: larger than %zu %s", path,
			         max >= 1024 * 1024 ? max >> 20 : max, max >= 1024 * 1024 ? "MiB" : "bytes");
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errcap, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errcap, "%s: %s", path, strerror(errno));
			close(fd);
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	*len = got;
	return buf;
}

/* Read the file a directive names; on error err is
 * "CONF:LINE: DIRECTIVE: PATH: why".  name gets "CONF:LINE: DIRECTIVE: PATH"
 * for later messages about the contents (NULL: not wanted). */
static char *read_for(const char *conf_path, size_t line, const char *directive, const char *path,
                      size_t max, size_t *len, char *name, size_t namecap, char *err, size_t errcap)
{
	char e[CONF_PATH_MAX + 100], where[CONF_PATH_MAX + 64];
	char *text = file_read(path, max, len, e, sizeof e);

	if (line > 0)
		snprintf(where, sizeof where, "%s:%zu: %s", conf_path, line, directive);
	else
		snprintf(where, sizeof where, "%s: %s", conf_path, directive);
	if (text == NULL)
		snprintf(err, errcap, "%s: %s", where, e);
	if (name != NULL)
		snprintf(name, namecap, "%s: %s", where, path);
	return text;
}

static int load_creds(const struct conf *c, const char *conf_path, struct tls_creds **out,
                      char *err, size_t errcap)
{
	char cname[CONF_PATH_MAX + 300], kname[CONF_PATH_MAX + 300];
	size_t clen = 0, klen = 0;
	char *cert, *key;

	*out = NULL;
	if (c->tls_cert[0] == '\0')
		return 0;
	cert = read_for(conf_path, c->tls_cert_line, "tls-cert", c->tls_cert, PEM_FILE_MAX, &clen,
	                cname, sizeof cname, err, errcap);
	if (cert == NULL)
		return -1;
	key = read_for(conf_path, c->tls_key_line, "tls-key", c->tls_key, PEM_FILE_MAX, &klen,
	               kname, sizeof kname, err, errcap);
	if (key == NULL) {
		free(cert);
		return -1;
	}
	*out = tls_creds_load(cert, clen, cname, key, klen, kname, err, errcap);
	free(cert);
	explicit_bzero(key, klen);
	free(key);
	return *out != NULL ? 0 : -1;
}

/* The smarthost's "user:password" (the first line of the file). */
static int load_auth(struct tables *t, const struct conf *c, const char *conf_path, char *err,
                     size_t errcap)
{
	size_t len = 0;
	char *text, *colon;

	if (c->smarthost_auth[0] == '\0')
		return 0;
	text = read_for(conf_path, c->smarthost_line, "smarthost auth", c->smarthost_auth, 4096,
	                &len, NULL, 0, err, errcap);
	if (text == NULL)
		return -1;
	text[strcspn(text, "\r\n")] = '\0';
	colon = strchr(text, ':');
	if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof t->auth_user ||
	    strlen(colon + 1) >= sizeof t->auth_pass) {
		snprintf(err, errcap, "%s:%zu: smarthost auth: %s: want one line user:password",
		         conf_path, c->smarthost_line, c->smarthost_auth);
		explicit_bzero(text, len);
		free(text);
		return -1;
	}
	*colon = '\0';
	snprintf(t->auth_user, sizeof t->auth_user, "%s", text);
	snprintf(t->auth_pass, sizeof t->auth_pass, "%s", colon + 1);
	explicit_bzero(text, len);
	free(text);
	t->have_auth = 1;
	return 0;
}

/* Does any destination ask for `tls verify`? */
static int uses_verify(const struct conf *c)
{
	if (c->outbound_tls == CONF_OTLS_VERIFY ||
	    (c->smarthost.host[0] != '\0' && c->smarthost.tls == CONF_OTLS_VERIFY))
		return 1;
	for (size_t k = 0; k < c->nroutes; k++)
		if (c->routes[k].hop.tls == CONF_OTLS_VERIFY)
			return 1;
	return 0;
}

/* The CA bundle, when something will verify a server with it. */
static int load_anchors(struct tables *t, const struct conf *c, const char *conf_path,
                        char *err, size_t errcap)
{
	char name[CONF_PATH_MAX + 300];
	size_t len = 0;
	char *text;

	int must = uses_verify(c);
	char e[1024];

	/* MTA-STS (on by default) checks its HTTPS servers and, in enforce
	 * mode, MX hosts against the bundle too; but a system without one
	 * still starts: its policies then cannot be fetched (logged each
	 * time, docs/tls-policy.md). */
	if (!must && !(c->mta_sts && c->delivery))
		return 0;
	/* (no line: the default applies when the directive is absent) */
	text = read_for(conf_path, 0, "tls-ca-file", c->tls_ca_file, 8u << 20, &len, name,
	                sizeof name, e, sizeof e);
	if (text != NULL) {
		t->anchors = tls_anchors_load(text, len, name, e, sizeof e);
		free(text);
	}
	if (t->anchors != NULL || !must) {
		if (t->anchors == NULL)
			log_warn("msg=\"no CA bundle for MTA-STS: %s\"", e);
		return 0;
	}
	snprintf(err, errcap, "%s", e);
	return -1;
}

/* The key of each dkim-sign line, checked (mta/ops/dkim_key.h). */
static int load_dkim_keys(struct tables *t, const struct conf *c, const char *conf_path,
                          char *err, size_t errcap)
{
	char name[CONF_PATH_MAX + 300];
	size_t len = 0;
	char *text;

	for (size_t k = 0; k < c->ndkim; k++) {
		const struct conf_dkim *d = &c->dkim[k];

		text = read_for(conf_path, d->line, "dkim-sign", d->keyfile, PEM_FILE_MAX, &len, name,
		                sizeof name, err, errcap);
		if (text == NULL)
			return -1;
		t->dkim[k] = dkim_key_load(text, len, name, err, errcap);
		explicit_bzero(text, len);
		free(text);
		if (t->dkim[k] == NULL)
			return -1;
	}
	return 0;
}

int tables_load(struct tables *t, const struct conf *c, const char *conf_path, char *err,
                size_t errcap)
{
	char e[1024];
	size_t len = 0;
	char *text;

	memset(t, 0, sizeof *t);
	t->conf_path = conf_path;
	rcptdb_init(&t->rcpts);
	if (load_creds(c, conf_path, &t->creds, err, errcap) != 0)
		return -1;
	if (load_auth(t, c, conf_path, err, errcap) != 0 ||
	    load_anchors(t, c, conf_path, err, errcap) != 0) {
		tables_free(t);
		return -1;
	}
	if (c->users[0] != '\0') {
		text = read_for(conf_path, c->users_line, "users", c->users, USERS_FILE_MAX, &len, NULL, 0,
		                err, errcap);
		if (text != NULL) {
			t->users = users_parse(text, len, c->users, e, sizeof e);
			memset(text, 0, len);
			free(text);
			if (t->users == NULL)
				snprintf(err, errcap, "%s:%zu: users: %s", conf_path, c->users_line, e);
		}
		if (t->users == NULL) {
			tables_free(t);
			return -1;
		}
	}
	for (size_t k = 0; k < c->nrcpt_lists; k++) {
		const struct conf_rcptlist *r = &c->rcpt_lists[k];

		if (r->path[0] == '\0')
			continue;
		text = read_for(conf_path, r->line, "recipients", r->path, RCPTDB_FILE_MAX, &len, NULL, 0,
		                err, errcap);
		if (text != NULL && rcptdb_load(&t->rcpts, k, text, len, r->path, e, sizeof e) != 0)
			snprintf(err, errcap, "%s:%zu: recipients: %s", conf_path, r->line, e);
		if (text == NULL || !t->rcpts.lists[k].loaded) {
			free(text);
			tables_free(t);
			return -1;
		}
		free(text);
	}
	if (load_dkim_keys(t, c, conf_path, err, errcap) != 0) {
		tables_free(t);
		return -1;
	}
	return 0;
}

void tables_free(struct tables *t)
{
	if (t->creds != NULL)
		tls_creds_unref(t->creds);
	t->creds = NULL;
	users_free(t->users);
	t->users = NULL;
	rcptdb_free(&t->rcpts);
	tables_forget_auth(t);
	tls_anchors_free(t->anchors);
	t->anchors = NULL;
	for (size_t k = 0; k < CONF_MAX_DKIM; k++) {
		dkim_key_free(t->dkim[k]);
		t->dkim[k] = NULL;
	}
}

void tables_forget_dkim(struct tables *t)
{
	for (size_t k = 0; k < CONF_MAX_DKIM; k++)
		dkim_key_forget_private(t->dkim[k]);
}

void tables_forget_auth(struct tables *t)
{
	explicit_bzero(t->auth_user, sizeof t->auth_user);
	explicit_bzero(t->auth_pass, sizeof t->auth_pass);
	t->have_auth = 0;
}
