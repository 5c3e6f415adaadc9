/* policy/users.c -- the users file; see users.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "users.h"

static int fail(char *err, size_t errcap, const char *file, size_t line, const char *what)
{
	snprintf(err, errcap, "%s:%zu: %s", file, line, what);
	return -1;
}

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int same_ci(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (lower((unsigned char)a[k]) != lower((unsigned char)b[k]))
			return 0;
	return 1;
}

/* One sender pattern: "local@domain" or "@domain". */
static int sender_valid(const char *s, size_t n)
{
	char path[ADDR_PATH_MAX + 2];
	struct addr a;

	if (n == 0 || n > ADDR_TEXT_MAX)
		return 0;
	if (s[0] == '@')
		return n > 1 && s[1] != '[' && addr_domain_valid(s + 1, n - 1, 0);
	if (n + 2 > ADDR_PATH_MAX)
		return 0;
	path[0] = '<';
	memcpy(path + 1, s, n);
	path[n + 1] = '>';
	return addr_parse_path(path, n + 2, 0, &a) == ADDR_OK && (a.flags & ADDR_F_ROUTE) == 0;
}

static int parse_line(struct users *u, char *s, size_t len, size_t line, const char *file,
                      char *err, size_t errcap)
{
	struct user *x;
	char *c1, *c2;
	size_t namelen, hashlen;

	c1 = memchr(s, ':', len);
	if (c1 == NULL)
		return fail(err, errcap, file, line, "want name:hash[:senders]");
	namelen = (size_t)(c1 - s);
	if (namelen == 0 || namelen > USERS_NAME_MAX)
		return fail(err, errcap, file, line, "user name empty or over 255 octets");
	for (size_t k = 0; k < namelen; k++)
		if ((unsigned char)s[k] <= ' ' || s[k] == 0x7f)
			return fail(err, errcap, file, line, "space or control character in user name");
	c2 = memchr(c1 + 1, ':', len - namelen - 1);
	hashlen = c2 ? (size_t)(c2 - c1 - 1) : len - namelen - 1;
	if (!shacrypt_valid(c1 + 1, hashlen))
		return fail(err, errcap, file, line,
		            "not a $6$ or $5$ hash (make one with: moat passwd)");
	if (u->n == USERS_MAX)
		return fail(err, errcap, file, line, "too many users");
	x = &u->v[u->n];
	memset(x, 0, sizeof *x);
	memcpy(x->name, s, namelen);
	memcpy(x->hash, c1 + 1, hashlen);
	x->line = line;
	if (c2 != NULL) {
		const char *p = c2 + 1, *e = s + len;

		x->senders = p;
		x->senderslen = (size_t)(e - p);
		while (p <= e) {
			const char *comma = memchr(p, ',', (size_t)(e - p));
			const char *end = comma ? comma : e;

			if (!sender_valid(p, (size_t)(end - p)))
				return fail(err, errcap, file, line,
				            "bad sender (want local@domain or @domain, comma-separated)");
			p = end + 1;
		}
	}
	u->n++;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

struct users *users_parse(const char *text, size_t len, const char *file, char *err,
                          size_t errcap)
{
	struct users *u;
	size_t pos = 0, line = 0, lines = 1;

	if (errcap > 0)
		err[0] = '\0';
	if (len > USERS_FILE_MAX) {
		snprintf(err, errcap, "%s: larger than 16 MiB", file);
		return NULL;
	}
	for (size_t k = 0; k < len; k++)
		lines += text[k] == '\n';
	u = calloc(1, sizeof *u);
	if (u == NULL || (u->text = malloc(len + 1)) == NULL ||
	    (u->v = calloc(lines < USERS_MAX ? lines : USERS_MAX, sizeof *u->v)) == NULL) {
		snprintf(err, errcap, "%s: out of memory", file);
		users_free(u);
		return NULL;
	}
	memcpy(u->text, text, len);
	u->text[len] = '\0';
	while (pos < len) {
		char *s = u->text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		line++;
		pos += n + 1;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (memchr(s, '\0', n) != NULL) {
			fail(err, errcap, file, line, "NUL byte in line");
			users_free(u);
			return NULL;
		}
		if (n == 0 || s[0] == '#')
			continue;
		if (parse_line(u, s, n, line, file, err, errcap) != 0) {
			users_free(u);
			return NULL;
		}
	}
	qsort(u->v, u->n, sizeof *u->v, by_name);
	for (size_t k = 1; k < u->n; k++) {
		if (strcmp(u->v[k - 1].name, u->v[k].name) == 0) {
			size_t later = u->v[k].line > u->v[k - 1].line ? u->v[k].line : u->v[k - 1].line;
			size_t first = u->v[k].line < u->v[k - 1].line ? u->v[k].line : u->v[k - 1].line;
			char what[64];

			snprintf(what, sizeof what, "user given twice (first on line %zu)", first);
			fail(err, errcap, file, later, what);
			users_free(u);
			return NULL;
		}
	}
	return u;
}

void users_free(struct users *u)
{
	if (u == NULL)
		return;
	if (u->v != NULL)
		memset(u->v, 0, u->n * sizeof *u->v);
	free(u->v);
	free(u->text);
	free(u);
}

const struct user *users_find(const struct users *u, const char *name, size_t len)
{
	size_t lo = 0, hi = u->n;

	if (len == 0 || len > USERS_NAME_MAX || memchr(name, '\0', len) != NULL)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *m = u->v[mid].name;
		int c = strncmp(m, name, len);

		if (c == 0 && m[len] != '\0')
			c = 1;
		if (c == 0)
			return &u->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct user *users_authenticate(const struct users *u, const char *name, size_t namelen,
                                      const char *pass, size_t passlen)
{
	/* Hashed for unknown names, with the default cost of a $6$ hash. */
	static const char decoy[] =
		"$6$moatdecoysalt..$"
		"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
	const struct user *x = users_find(u, name, namelen);
	const char *hash = x ? x->hash : decoy;
	int ok = shacrypt_verify(pass, passlen, hash, strlen(hash));

	return x != NULL && ok ? x : NULL;
}

int users_sender_allowed(const struct user *user, const char *sender)
{
	const char *p, *e, *at;
	size_t slen = strlen(sender);

	if (user->senders == NULL)
		return 1;
	if (slen == 0)
		return 0;
	at = strrchr(sender, '@');
	p = user->senders;
	e = user->senders + user->senderslen;
	while (p < e) {
		const char *comma = memchr(p, ',', (size_t)(e - p));
		const char *end = comma ? comma : e;
		size_t n = (size_t)(end - p);

		if (p[0] == '@') {
			if (at != NULL && strlen(at) == n && same_ci(at, p, n))
				return 1;
		} else if (n == slen && same_ci(sender, p, n)) {
			return 1;
		}
		p = end + 1;
	}
	return 0;
}
