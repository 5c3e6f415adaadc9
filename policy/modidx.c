/* policy/modidx.c -- the appliance's module index; see modidx.h */
#include "policy/modidx.h"

#include <string.h>

#include "policy/conf.h"

static int word_is(const char *w, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

static int name_ok(const char *w, size_t n)
{
	return n > 0 && n <= MODIDX_NAME_MAX && memchr(w, '/', n) == NULL;
}

int modidx_next(const char *buf, size_t len, size_t *pos, struct modidx_line *out)
{
	const char *word[MODIDX_WORDS_MAX + 1];
	size_t wlen[MODIDX_WORDS_MAX + 1];

	while (*pos < len) {
		const char *line = buf + *pos, *nl = memchr(line, '\n', len - *pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - *pos, words;

		*pos += n + (nl != NULL);
		out->lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		words = conf_words(line, n, word, wlen, MODIDX_WORDS_MAX + 1);
		if (words == 0)   /* empty, or a comment */
			continue;
		if (words > MODIDX_WORDS_MAX + 1)
			return -1;
		if (word_is(word[0], wlen[0], "module")) {
			if (words < 2)
				return -1;
			out->kind = MODIDX_MODULE;
		} else if (word_is(word[0], wlen[0], "alias")) {
			if (words != 3)
				return -1;
			out->kind = MODIDX_ALIAS;
		} else {
			return -1;
		}
		out->nwords = words - 1;
		for (size_t k = 0; k < out->nwords; k++) {
			out->word[k] = word[k + 1];
			out->wlen[k] = wlen[k + 1];
			/* Every word but an alias's pattern is a module name. */
			if (!(out->kind == MODIDX_ALIAS && k == 0) && !name_ok(word[k + 1], wlen[k + 1]))
				return -1;
		}
		return 1;
	}
	return 0;
}

/* One "[...]" set at pattern p (just past the '['), matching byte c.
 * Returns the bytes of the set after the '[' including its ']', or 0 when
 * there is no closing ']' (the '[' is then an ordinary byte). */
static size_t set_match(const char *p, size_t plen, unsigned char c, int *hit)
{
	size_t k = 0;
	int neg = 0;

	if (k < plen && (p[k] == '!' || p[k] == '^')) {
		neg = 1;
		k++;
	}
	*hit = 0;
	/* A ']' first in the set is a member, as in fnmatch. */
	for (size_t first = k; k < plen && (p[k] != ']' || k == first); k++) {
		unsigned char lo = (unsigned char)p[k], hi = lo;
		if (k + 2 < plen && p[k + 1] == '-' && p[k + 2] != ']') {
			hi = (unsigned char)p[k + 2];
			k += 2;
		}
		if (c >= lo && c <= hi)
			*hit = 1;
	}
	if (k >= plen)
		return 0;
	*hit ^= neg;
	return k + 1;
}

int modidx_match(const char *pattern, size_t plen, const char *alias, size_t alen)
{
	/* Iterative glob with one backtrack point (the last '*'): each '*'
	 * retried at most alen times, so the work is O(plen * alen). */
	size_t p = 0, a = 0, star_p = (size_t)-1, star_a = 0;

	while (a < alen) {
		if (p < plen && pattern[p] == '*') {
			star_p = ++p;
			star_a = a;
			continue;
		}
		if (p < plen) {
			unsigned char c = (unsigned char)alias[a];
			int hit;
			size_t adv = 1;

			if (pattern[p] == '?') {
				hit = 1;
			} else if (pattern[p] == '[' && (adv = set_match(pattern + p + 1, plen - p - 1, c, &hit)) > 0) {
				adv += 1;
			} else {
				adv = 1;
				hit = (unsigned char)pattern[p] == c;
			}
			if (hit) {
				p += adv;
				a++;
				continue;
			}
		}
		if (star_p == (size_t)-1)
			return 0;
		p = star_p;
		a = ++star_a;
	}
	while (p < plen && pattern[p] == '*')
		p++;
	return p == plen;
}
