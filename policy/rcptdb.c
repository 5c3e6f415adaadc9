/* policy/rcptdb.c -- valid recipients per domain; see rcptdb.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcptdb.h"
#include "rules.h"

void rcptdb_init(struct rcptdb *db)
{
	memset(db, 0, sizeof *db);
}

static void list_free(struct rcptdb_list *l)
{
	free(l->v);
	free(l->text);
	memset(l, 0, sizeof *l);
}

void rcptdb_free(struct rcptdb *db)
{
	for (size_t k = 0; k < CONF_MAX_RCPT_LISTS; k++)
		list_free(&db->lists[k]);
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rcptdb_load(struct rcptdb *db, size_t index, const char *text, size_t len,
                const char *file, char *err, size_t errcap)
{
	struct rcptdb_list *l;
	size_t pos = 0, line = 0, lines = 1;

	if (index >= CONF_MAX_RCPT_LISTS)
		return -1;
	l = &db->lists[index];
	list_free(l);
	if (len > RCPTDB_FILE_MAX) {
		snprintf(err, errcap, "%s: larger than 64 MiB", file);
		return -1;
	}
	for (size_t k = 0; k < len; k++)
		lines += text[k] == '\n';
	if (lines > RCPTDB_ENTRIES_MAX)
		lines = RCPTDB_ENTRIES_MAX;
	l->text = malloc(len + 1);
	l->v = calloc(lines, sizeof *l->v);
	if (l->text == NULL || l->v == NULL) {
		snprintf(err, errcap, "%s: out of memory", file);
		list_free(l);
		return -1;
	}
	memcpy(l->text, text, len);
	l->text[len] = '\0';
	while (pos < len) {
		char *s = l->text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		const char *why = NULL;

		line++;
		pos += n + 1;
		if (nl != NULL)
			*nl = '\0';
		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			s[--n] = '\0';
		while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
			s++;
			n--;
		}
		if (n == 0 || s[0] == '#')
			continue;
		for (size_t k = 0; k < n && why == NULL; k++) {
			unsigned char ch = (unsigned char)s[k];
			if (ch <= ' ' || ch == 0x7f)
				why = "space or control character in an entry";
			else if (ch >= 'A' && ch <= 'Z')
				s[k] = (char)(ch - 'A' + 'a');
		}
		if (why == NULL && (n > ADDR_TEXT_MAX || s[0] == '@'))
			why = "bad entry (want local or local@domain)";
		if (why == NULL && l->n == RCPTDB_ENTRIES_MAX)
			why = "too many entries";
		if (why != NULL) {
			snprintf(err, errcap, "%s:%zu: %s", file, line, why);
			list_free(l);
			return -1;
		}
		l->v[l->n++] = s;
	}
	qsort(l->v, l->n, sizeof *l->v, by_str);
	l->loaded = 1;
	return 0;
}

static int list_has(const struct rcptdb_list *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid], key);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int rcptdb_known(const struct rcptdb *db, const struct conf *c, const struct addr *rcpt)
{
	char key[ADDR_TEXT_MAX];
	size_t k, n;

	if (rcpt->flags & ADDR_F_POSTMASTER)
		return 1;
	for (k = 0; k < c->ndomains; k++) {
		if (rules_domain_matches(&c->domains[k], rcpt->domain, rcpt->domainlen))
			break;
	}
	if (k == c->ndomains)
		return 1; /* not ours: relay rules decide */
	const struct conf_rcptlist *r = conf_rcptlist_find(c, &c->domains[k]);
	if (r == NULL || r->path[0] == '\0')
		return 1;
	const struct rcptdb_list *l = &db->lists[r - c->rcpt_lists];
	if (!l->loaded)
		return 1; /* cannot happen: mta/ loads every list or refuses to start */
	n = rcpt->locallen;
	if (n == 10 && strncasecmp(rcpt->local, "postmaster", 10) == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		key[i] = (char)(rcpt->local[i] >= 'A' && rcpt->local[i] <= 'Z' ? rcpt->local[i] - 'A' + 'a'
		                                                                 : rcpt->local[i]);
	key[n] = '\0';
	if (list_has(l, key))
		return 1;
	if (n + 1 + rcpt->domainlen >= sizeof key)
		return 0;
	key[n] = '@';
	memcpy(key + n + 1, rcpt->domain, rcpt->domainlen);
	key[n + 1 + rcpt->domainlen] = '\0';
	return list_has(l, key);
}
