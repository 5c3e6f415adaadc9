/* policy/hosts.c -- the hosts file; see policy/hosts.h */
#include "policy/hosts.h"

#include <string.h>

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a[0..alen) and b[0..blen) the same name: any case, a final dot or not */
static int same_name(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	if (alen != blen || alen == 0)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

/* The next field of line[*pos..end): its start and length, 0 at the end. */
static size_t field(const char *line, size_t end, size_t *pos, const char **start)
{
	size_t i = *pos, n;

	while (i < end && blank(line[i]))
		i++;
	*start = line + i;
	for (n = 0; i < end && !blank(line[i]); i++)
		n++;
	*pos = i;
	return n;
}

size_t hosts_lookup(const char *text, size_t len, const char *name, struct ipaddr *out,
                    size_t max)
{
	size_t nlen = strlen(name), found = 0;

	for (size_t at = 0; at < len && found < max; ) {
		const char *nl = memchr(text + at, '\n', len - at);
		const char *hash;
		size_t end = nl ? (size_t)(nl - text) : len, pos = at, n;
		const char *f;
		struct ipaddr ip;
		int match = 0;

		if ((hash = memchr(text + at, '#', end - at)) != NULL)
			end = (size_t)(hash - text);
		n = field(text, end, &pos, &f);
		if (n > 0 && ip_parse(f, n, &ip) == 0) {
			while (!match && (n = field(text, end, &pos, &f)) > 0)
				match = same_name(f, n, name, nlen);
		}
		if (match) {
			size_t i = 0;
			while (i < found && !ip_equal(&out[i], &ip))
				i++;
			if (i == found)
				out[found++] = ip;
		}
		at = nl ? (size_t)(nl - text) + 1 : len;
	}
	return found;
}
