/* policy/reply.c -- SMTP replies as a client reads them; see reply.h */
#include "policy/reply.h"

#include <string.h>

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "D.DDD.DDD" then SP or the end, at text[0..len); the class must be the
 * reply code's first digit.  Returns 1 and fills r->esc_* if so. */
static int parse_esc(const char *t, size_t len, int code, struct smtp_reply *r)
{
	unsigned v[3] = { 0, 0, 0 };
	size_t i = 0;

	for (int part = 0; part < 3; part++) {
		size_t start = i;
		while (i < len && is_digit(t[i]) && i - start < 3)
			v[part] = v[part] * 10 + (unsigned)(t[i++] - '0');
		if (i == start || (part == 0 && i - start != 1))
			return 0;
		if (part < 2) {
			if (i >= len || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && t[i] != ' ')
		return 0;
	if (v[0] != (unsigned)(code / 100))
		return 0;
	r->esc_class = v[0];
	r->esc_subject = v[1];
	r->esc_detail = v[2];
	return 1;
}

ssize_t smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out)
{
	size_t pos = 0, nlines = 0;
	int code = 0;

	for (;;) {
		size_t start = pos, end, textend;
		size_t avail = len - pos;
		size_t scan = avail < SMTP_REPLY_LINE_MAX ? avail : SMTP_REPLY_LINE_MAX;
		const char *lf = memchr(buf + pos, '\n', scan);
		const char *nul;
		int this_code;
		char sep;

		/* NUL or a bare CR before the line end is bad at once, even if
		 * the line is not complete yet. */
		nul = memchr(buf + pos, '\0', lf ? (size_t)(lf - (buf + pos)) : scan);
		if (nul != NULL)
			return SMTP_REPLY_BAD;
		if (lf == NULL)
			return avail < SMTP_REPLY_LINE_MAX ? SMTP_REPLY_NEED : SMTP_REPLY_BAD;
		end = (size_t)(lf - buf) + 1;         /* past the LF */
		textend = end - 1;
		if (textend > start && buf[textend - 1] == '\r')
			textend--;
		{
			const char *cr = memchr(buf + start, '\r', textend - start);
			if (cr != NULL)
				return SMTP_REPLY_BAD;
		}
		if (textend - start < 3 || buf[start] < '2' || buf[start] > '5' ||
		    !is_digit(buf[start + 1]) || !is_digit(buf[start + 2]))
			return SMTP_REPLY_BAD;
		this_code = (buf[start] - '0') * 100 + (buf[start + 1] - '0') * 10 +
		            (buf[start + 2] - '0');
		sep = textend - start > 3 ? buf[start + 3] : ' ';
		if (sep != ' ' && sep != '-')
			return SMTP_REPLY_BAD;
		if (nlines > 0 && this_code != code)
			return SMTP_REPLY_BAD;
		if (nlines == SMTP_REPLY_LINES_MAX)
			return SMTP_REPLY_BAD;
		code = this_code;
		out->line[nlines].text = buf + start + (textend - start > 3 ? 4 : 3);
		out->line[nlines].len = textend - start > 3 ? textend - start - 4 : 0;
		nlines++;
		pos = end;
		if (sep == ' ')
			break;
	}
	out->code = code;
	out->nlines = nlines;
	out->esc_class = out->esc_subject = out->esc_detail = 0;
	parse_esc(out->line[0].text, out->line[0].len, code, out);
	return (ssize_t)pos;
}

size_t smtp_reply_text(const struct smtp_reply *r, char *buf, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return 0;
#define PUT(ch) do { if (n + 1 < cap) buf[n++] = (ch); } while (0)
	PUT((char)('0' + r->code / 100));
	PUT((char)('0' + r->code / 10 % 10));
	PUT((char)('0' + r->code % 10));
	for (size_t i = 0; i < r->nlines; i++) {
		const struct smtp_reply_line *l = &r->line[i];
		size_t k = 0;
		/* Continuation lines repeat the enhanced code: say it once. */
		if (i > 0 && r->esc_class != 0) {
			struct smtp_reply tmp;
			if (parse_esc(l->text, l->len, r->code, &tmp) && tmp.esc_subject == r->esc_subject
			    && tmp.esc_detail == r->esc_detail) {
				const char *sp = memchr(l->text, ' ', l->len);
				k = sp ? (size_t)(sp - l->text) + 1 : l->len;
			}
		}
		if (k < l->len)
			PUT(' ');
		for (; k < l->len; k++) {
			static const char hex[] = "0123456789abcdef";
			unsigned char c = (unsigned char)l->text[k];
			if (c >= 0x20 && c < 0x7f && c != '\\') {
				PUT((char)c);
			} else if (n + 4 < cap) {
				PUT('\\');
				PUT('x');
				PUT(hex[c >> 4]);
				PUT(hex[c & 15]);
			} else {
				goto full;
			}
		}
	}
full:
#undef PUT
	buf[n] = '\0';
	return n;
}
