/* policy/pem.c -- PEM text to DER blocks; see pem.h */
#include <string.h>

#include "base64.h"
#include "pem.h"

static const char begin[] = "-----BEGIN ";
static const char end[] = "-----END ";
static const char dashes[] = "-----";

/* The line starting at i: its end (index of '\n' or len) and length without CR. */
static size_t line_end(const char *text, size_t len, size_t i, size_t *content)
{
	const char *nl = memchr(text + i, '\n', len - i);
	size_t e = nl ? (size_t)(nl - text) : len;
	size_t c = e - i;

	while (c > 0 && (text[i + c - 1] == '\r' || text[i + c - 1] == ' ' || text[i + c - 1] == '\t'))
		c--;
	*content = c;
	return e;
}

/* "PREFIXLABEL-----" -> label; returns its length or 0. */
static size_t marker_label(const char *s, size_t n, const char *prefix, const char **label)
{
	size_t p = strlen(prefix), d = sizeof dashes - 1;

	if (n <= p + d || memcmp(s, prefix, p) != 0 || memcmp(s + n - d, dashes, d) != 0)
		return 0;
	*label = s + p;
	return n - p - d;
}

static size_t count_lines(const char *text, size_t upto)
{
	size_t lines = 1;

	for (size_t k = 0; k < upto; k++)
		if (text[k] == '\n')
			lines++;
	return lines;
}

enum pem_result pem_next(const char *text, size_t len, size_t *pos, struct pem_block *b,
                         unsigned char *der, size_t cap, const char **why)
{
	size_t i = *pos, content, e;
	const char *label = NULL;
	size_t labellen = 0;

	*why = "";
	/* Find a BEGIN line. */
	for (;;) {
		if (i >= len)
			return PEM_END;
		e = line_end(text, len, i, &content);
		labellen = marker_label(text + i, content, begin, &label);
		if (labellen > 0)
			break;
		i = e + 1;
	}
	if (labellen > PEM_LABEL_MAX) {
		*why = "label too long";
		return PEM_EBAD;
	}
	memcpy(b->label, label, labellen);
	b->label[labellen] = '\0';
	b->line = count_lines(text, i);
	size_t body = e + 1, j = body;
	/* The body runs to the END line with the same label. */
	for (;;) {
		if (j >= len) {
			*why = "no END line";
			return PEM_EBAD;
		}
		e = line_end(text, len, j, &content);
		if (content > 0 && memchr(text + j, ':', content) != NULL) {
			*why = "encrypted or with headers (use a key without a passphrase)";
			return PEM_EBAD;
		}
		const char *elabel;
		size_t elen = marker_label(text + j, content, end, &elabel);
		if (elen > 0) {
			if (elen != labellen || memcmp(elabel, label, labellen) != 0) {
				*why = "END label does not match BEGIN";
				return PEM_EBAD;
			}
			break;
		}
		if (content >= 5 && memcmp(text + j, dashes, 5) == 0) {
			*why = "BEGIN inside a block";
			return PEM_EBAD;
		}
		j = e + 1;
	}
	if ((j - body) / 4 * 3 > cap + 3) {
		*why = "block too large";
		return PEM_EBIG;
	}
	if (base64_decode(text + body, j - body, 1, der, cap, &b->derlen) != 0) {
		*why = "bad base64";
		return PEM_EBAD;
	}
	if (b->derlen == 0) {
		*why = "empty block";
		return PEM_EBAD;
	}
	*pos = e < len ? e + 1 : len;
	return PEM_OK;
}
