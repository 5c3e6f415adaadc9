/* policy/cmd.c -- SMTP command framing and parsing; see policy/cmd.h */
#include "policy/cmd.h"

#include <string.h>

ssize_t smtp_line_scan(const char *buf, size_t len, size_t max, struct smtp_line *out)
{
	size_t lim = len < max ? len : max;
	const char *lf = memchr(buf, '\n', lim);

	if (lf == NULL)
		return len < max ? -2 : -1;

	size_t n = (size_t)(lf - buf);
	unsigned flags = 0;
	size_t content = n;
	if (n > 0 && buf[n - 1] == '\r')
		content = n - 1;
	else
		flags |= SMTP_LINE_BARE_LF;
	for (size_t i = 0; i < content; i++) {
		if (buf[i] == '\r')
			flags |= SMTP_LINE_BARE_CR;
		else if (buf[i] == '\0')
			flags |= SMTP_LINE_NUL;
	}
	out->len = content;
	out->flags = flags;
	return (ssize_t)(n + 1);
}

/* What a verb accepts after it. */
enum arg_rule {
	ARG_NONE,     /* nothing: DATA, RSET, QUIT, STARTTLS */
	ARG_OPTIONAL, /* free text or nothing: NOOP, HELP, VRFY, EXPN */
	ARG_REQUIRED, /* free text, not empty: HELO, EHLO, AUTH */
	ARG_PATH,     /* "FROM:" / "TO:", path, parameters: MAIL, RCPT */
	ARG_CHUNK     /* chunk-size [ SP "LAST" ]: BDAT (RFC 3030) */
};

static const struct verb_def {
	const char   *name;
	enum arg_rule rule;
	const char   *prefix; /* ARG_PATH: the keyword with its colon */
} verbs[SMTP_VERB__COUNT] = {
	[SMTP_VERB_NONE]     = { "",         ARG_OPTIONAL, NULL },
	[SMTP_VERB_UNKNOWN]  = { "",         ARG_OPTIONAL, NULL },
	[SMTP_VERB_HELO]     = { "HELO",     ARG_REQUIRED, NULL },
	[SMTP_VERB_EHLO]     = { "EHLO",     ARG_REQUIRED, NULL },
	[SMTP_VERB_MAIL]     = { "MAIL",     ARG_PATH,     "FROM:" },
	[SMTP_VERB_RCPT]     = { "RCPT",     ARG_PATH,     "TO:" },
	[SMTP_VERB_DATA]     = { "DATA",     ARG_NONE,     NULL },
	[SMTP_VERB_RSET]     = { "RSET",     ARG_NONE,     NULL },
	[SMTP_VERB_NOOP]     = { "NOOP",     ARG_OPTIONAL, NULL },
	[SMTP_VERB_QUIT]     = { "QUIT",     ARG_NONE,     NULL },
	[SMTP_VERB_VRFY]     = { "VRFY",     ARG_OPTIONAL, NULL },
	[SMTP_VERB_EXPN]     = { "EXPN",     ARG_OPTIONAL, NULL },
	[SMTP_VERB_HELP]     = { "HELP",     ARG_OPTIONAL, NULL },
	[SMTP_VERB_STARTTLS] = { "STARTTLS", ARG_NONE,     NULL },
	[SMTP_VERB_AUTH]     = { "AUTH",     ARG_REQUIRED, NULL },
	[SMTP_VERB_BDAT]     = { "BDAT",     ARG_CHUNK,    NULL },
};

const char *smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_VERB__COUNT)
		return "";
	return verbs[v].name;
}

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* ASCII case-insensitive comparison of s[0..n) with the upper-case word w. */
static int word_eq(const char *s, size_t n, const char *w)
{
	size_t i;
	for (i = 0; i < n && w[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_alpha(c))
			c = (unsigned char)(c & ~0x20u);
		if (c != (unsigned char)w[i])
			return 0;
	}
	return i == n && w[i] == '\0';
}

/*
 * The path starts at p[0] == '<' and ends at the first '>' outside a
 * quoted-string; a backslash inside quotes escapes the next octet.  Returns
 * the length including both brackets, 0 if it does not close.
 */
static size_t path_span(const char *p, size_t n)
{
	int quoted = 0;
	for (size_t i = 1; i < n; i++) {
		char c = p[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = 0;
		} else if (c == '"') {
			quoted = 1;
		} else if (c == '>') {
			return i + 1;
		}
	}
	return 0;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value]
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 * esmtp-value = 1*(%d33-60 / %d62-126) */
static int param_parse(const char *p, size_t n, struct smtp_param *out)
{
	size_t i = 0;
	while (i < n && (is_alpha((unsigned char)p[i]) || is_digit((unsigned char)p[i])
	                 || (i > 0 && p[i] == '-')))
		i++;
	if (i == 0)
		return -1;
	out->key = p;
	out->keylen = i;
	out->val = NULL;
	out->vallen = 0;
	if (i == n)
		return 0;
	if (p[i] != '=' || i + 1 == n)
		return -1;
	for (size_t j = i + 1; j < n; j++) {
		unsigned char c = (unsigned char)p[j];
		if (c < 33 || c > 126 || c == '=')
			return -1;
	}
	out->val = p + i + 1;
	out->vallen = n - i - 1;
	return 0;
}

/* MAIL/RCPT: arg is the text after the verb and its SP. */
static enum smtp_cmd_result path_args(const char *arg, size_t n, const char *prefix,
                                      struct smtp_cmd *out)
{
	size_t plen = strlen(prefix);
	if (n < plen || !word_eq(arg, plen, prefix))
		return SMTP_CMD_ESYNTAX;
	size_t i = plen;
	out->arg = arg + i;
	out->arglen = n - i;
	while (i < n && arg[i] == ' ')
		i++; /* tolerated: "MAIL FROM: <a@b>" */
	if (i == n || arg[i] != '<')
		return SMTP_CMD_ESYNTAX;
	size_t span = path_span(arg + i, n - i);
	if (span == 0)
		return SMTP_CMD_ESYNTAX;
	out->path = arg + i;
	out->pathlen = span;
	i += span;
	/* Parameters, each after one or more SP. */
	while (i < n) {
		if (arg[i] != ' ')
			return SMTP_CMD_ESYNTAX;
		while (i < n && arg[i] == ' ')
			i++;
		size_t start = i;
		while (i < n && arg[i] != ' ')
			i++;
		if (out->nparams == SMTP_CMD_MAXPARAMS)
			return SMTP_CMD_EPARAMS;
		if (param_parse(arg + start, i - start, &out->params[out->nparams]) < 0)
			return SMTP_CMD_ESYNTAX;
		out->nparams++;
	}
	return SMTP_CMD_OK;
}

/* BDAT chunk-size [ SP end-marker ]: 1*DIGIT [ SP "LAST" ]. */
static enum smtp_cmd_result chunk_args(const char *arg, size_t n)
{
	size_t i = 0;
	while (i < n && is_digit((unsigned char)arg[i]))
		i++;
	if (i == 0)
		return SMTP_CMD_ESYNTAX;
	if (i == n)
		return SMTP_CMD_OK;
	if (arg[i] != ' ' || !word_eq(arg + i + 1, n - i - 1, "LAST"))
		return SMTP_CMD_ESYNTAX;
	return SMTP_CMD_OK;
}

enum smtp_cmd_result smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	memset(out, 0, sizeof *out);
	/* Trailing SP is noise that many clients send; it never carries meaning. */
	while (len > 0 && line[len - 1] == ' ')
		len--;
	if (len == 0) {
		out->verb = SMTP_VERB_NONE;
		return SMTP_CMD_OK;
	}

	size_t vlen = 0;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	out->verb = SMTP_VERB_UNKNOWN;
	for (int v = SMTP_VERB_HELO; v < SMTP_VERB__COUNT; v++) {
		if (word_eq(line, vlen, verbs[v].name)) {
			out->verb = (enum smtp_verb)v;
			break;
		}
	}
	if (out->verb == SMTP_VERB_UNKNOWN)
		return SMTP_CMD_EUNKNOWN;

	/* After the verb: nothing, or one SP and the argument. */
	const char *arg = vlen < len ? line + vlen + 1 : line + len;
	size_t arglen = vlen < len ? len - vlen - 1 : 0;
	const struct verb_def *d = &verbs[out->verb];

	switch (d->rule) {
	case ARG_NONE:
		return vlen == len ? SMTP_CMD_OK : SMTP_CMD_ESYNTAX;
	case ARG_PATH:
		return path_args(arg, arglen, d->prefix, out);
	case ARG_OPTIONAL:
	case ARG_REQUIRED:
	case ARG_CHUNK:
		break;
	}
	out->arg = arg;
	out->arglen = arglen;
	if (d->rule == ARG_REQUIRED && arglen == 0)
		return SMTP_CMD_ESYNTAX;
	if (d->rule == ARG_CHUNK)
		return chunk_args(arg, arglen);
	return SMTP_CMD_OK;
}
