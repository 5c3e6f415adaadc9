/* mta/tables.c -- files the config names; see tables.h */
#include "tables.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* "CONF:LINE: DIRECTIVE: " before a message about that directive's file. */
static void at(char *buf, size_t cap, const char *conf_path, size_t line, const char *directive)
{
	snprintf(buf, cap, "%s:%zu: %s: ", conf_path, line, directive);
}

static int load_creds(const struct conf *c, const char *conf_path, struct tls_creds **out,
                      char *err, size_t errcap)
{
	char cname[CONF_PATH_MAX + 300], kname[CONF_PATH_MAX + 300], pre[300], e[512];
	size_t clen = 0, klen = 0;
	char *cert, *key;

	*out = NULL;
	if (c->tls_cert[0] == '\0')
		return 0;
	at(pre, sizeof pre, conf_path, c->tls_cert_line, "tls-cert");
	cert = file_read(c->tls_cert, PEM_FILE_MAX, &clen, e, sizeof e);
	if (cert == NULL) {
		snprintf(err, errcap, "%s%s", pre, e);
		return -1;
	}
	snprintf(cname, sizeof cname, "%s%s", pre, c->tls_cert);
	at(pre, sizeof pre, conf_path, c->tls_key_line, "tls-key");
	key = file_read(c->tls_key, PEM_FILE_MAX, &klen, e, sizeof e);
	if (key == NULL) {
		snprintf(err, errcap, "%s%s", pre, e);
		free(cert);
		return -1;
	}
	snprintf(kname, sizeof kname, "%s%s", pre, c->tls_key);
	*out = tls_creds_load(cert, clen, cname, key, klen, kname, err, errcap);
	free(cert);
	memset(key, 0, klen);
	free(key);
	return *out != NULL ? 0 : -1;
}

int tables_load(struct tables *t, const struct conf *c, const char *conf_path, char *err,
                size_t errcap)
{
	char pre[300], e[1024];
	size_t len = 0;
	char *text;

	memset(t, 0, sizeof *t);
	t->conf_path = conf_path;
	rcptdb_init(&t->rcpts);
	if (load_creds(c, conf_path, &t->creds, err, errcap) != 0)
		return -1;
	if (c->users[0] != '\0') {
		at(pre, sizeof pre, conf_path, c->users_line, "users");
		text = file_read(c->users, USERS_FILE_MAX, &len, e, sizeof e);
		if (text == NULL) {
			snprintf(err, errcap, "%s%s", pre, e);
			tables_free(t);
			return -1;
		}
		t->users = users_parse(text, len, c->users, e, sizeof e);
		memset(text, 0, len);
		free(text);
		if (t->users == NULL) {
			snprintf(err, errcap, "%s%s", pre, e);
			tables_free(t);
			return -1;
		}
	}
	for (size_t k = 0; k < c->nrcpt_lists; k++) {
		const struct conf_rcptlist *r = &c->rcpt_lists[k];

		if (r->path[0] == '\0')
			continue;
		at(pre, sizeof pre, conf_path, r->line, "recipients");
		text = file_read(r->path, RCPTDB_FILE_MAX, &len, e, sizeof e);
		if (text == NULL || rcptdb_load(&t->rcpts, k, text, len, r->path, e, sizeof e) != 0) {
			snprintf(err, errcap, "%s%s", pre, e);
			free(text);
			tables_free(t);
			return -1;
		}
		free(text);
	}
	return 0;
}

int tables_reload_creds(struct tables *t, const struct conf *c, char *err, size_t errcap)
{
	struct tls_creds *fresh;

	if (load_creds(c, t->conf_path, &fresh, err, errcap) != 0)
		return -1;
	if (t->creds != NULL)
		tls_creds_unref(t->creds);
	t->creds = fresh;
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
}
