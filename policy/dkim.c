/* policy/dkim.c -- DKIM signing, the pure half; see dkim.h */
#include "policy/dkim.h"

#include <string.h>
#include <strings.h>

#include "policy/addr.h"
#include "policy/base64.h"
#include "policy/rules.h"
#include "policy/text.h"

#define FOLD_COLUMNS 78  /* RFC 5322 2.1.1: lines SHOULD stay within 78 */

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int same_ci(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int is_eol(unsigned char c)
{
	return c == '\r' || c == '\n';
}

/* ---- the body ---------------------------------------------------------- */

void dkim_body_init(struct dkim_body *b)
{
	memset(b, 0, sizeof *b);
	br_sha256_init(&b->sha);
}

static void body_flush(struct dkim_body *b)
{
	br_sha256_update(&b->sha, b->out, b->outlen);
	b->hashed += b->outlen;
	b->outlen = 0;
}

static void body_put(struct dkim_body *b, unsigned char c)
{
	if (b->outlen == sizeof b->out)
		body_flush(b);
	b->out[b->outlen++] = c;
}

/* Content follows: the line ends and the whitespace run before it are
 * no longer trailing, so they are hashed now. */
static void body_release(struct dkim_body *b)
{
	for (; b->crlfs > 0; b->crlfs--) {
		body_put(b, '\r');
		body_put(b, '\n');
	}
	if (b->wsp) {
		body_put(b, ' ');
		b->wsp = 0;
	}
}

/* The byte machine: a line end (CRLF, bare CR, bare LF) is counted, not
 * hashed; a whitespace run is remembered, not hashed; a run of any other
 * bytes releases both and is hashed as it is. */
void dkim_body_feed(struct dkim_body *b, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];

		if (c == '\n' && b->cr) {       /* the LF of a CRLF: counted at its CR */
			b->cr = 0;
			i++;
			continue;
		}
		b->cr = c == '\r';
		if (is_eol(c)) {
			b->crlfs++;
			b->wsp = 0;             /* whitespace at the end of a line is dropped */
			i++;
			continue;
		}
		if (is_wsp(c)) {
			b->wsp = 1;
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < len && !is_eol(s[j]) && !is_wsp(s[j]))
			j++;
		body_release(b);
		if (j - i <= sizeof b->out - b->outlen) {
			memcpy(b->out + b->outlen, s + i, j - i);
			b->outlen += j - i;
		} else {
			body_flush(b);
			br_sha256_update(&b->sha, s + i, j - i);
			b->hashed += j - i;
		}
		i = j;
	}
}

void dkim_body_end(struct dkim_body *b, unsigned char bh[DKIM_HASH_LEN])
{
	/* Trailing empty lines and whitespace stay unhashed; a body with any
	 * content ends with exactly one CRLF; an empty one hashes as "". */
	if (b->hashed + b->outlen > 0) {
		body_put(b, '\r');
		body_put(b, '\n');
	}
	body_flush(b);
	br_sha256_out(&b->sha, bh);
}

/* ---- the message --------------------------------------------------------- */

enum msg_state {
	MSG_BOL = 0,  /* at the start of a header line (or of the message) */
	MSG_LINE,     /* inside a header line */
	MSG_CR,       /* a header line ended with CR: its LF may follow */
	MSG_SEP_CR,   /* the empty line was a CR: its LF may follow */
	MSG_BODY      /* everything from here is body */
};

void dkim_msg_init(struct dkim_msg *m, char *hdr, size_t cap)
{
	memset(m, 0, sizeof *m);
	m->hdr = hdr;
	m->cap = cap;
	m->st = MSG_BOL;
	dkim_body_init(&m->body);
}

static void msg_keep(struct dkim_msg *m, unsigned char c)
{
	if (m->hlen < m->cap)
		m->hdr[m->hlen++] = (char)c;
	else
		m->flags |= DKIM_MSG_HDR_BIG;
}

void dkim_msg_feed(struct dkim_msg *m, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < len && m->st != MSG_BODY) {
		unsigned char c = s[i++];

		switch (m->st) {
		case MSG_CR:
			if (c == '\n') {
				msg_keep(m, c);
				m->st = MSG_BOL;
				break;
			}
			/* The CR alone ended the line: c starts the next one. */
			/* fall through */
		case MSG_BOL:
			if (is_eol(c)) {        /* the empty line: the header ends */
				m->st = c == '\r' ? MSG_SEP_CR : MSG_BODY;
				break;
			}
			msg_keep(m, c);
			m->st = MSG_LINE;
			break;
		case MSG_LINE:
			msg_keep(m, c);
			if (c == '\r')
				m->st = MSG_CR;
			else if (c == '\n')
				m->st = MSG_BOL;
			break;
		case MSG_SEP_CR:
			m->st = MSG_BODY;
			if (c != '\n')
				i--;            /* a bare CR ended the header: c is body */
			break;
		default:
			break;
		}
	}
	if (m->st == MSG_BODY && i < len)
		dkim_body_feed(&m->body, s + i, len - i);
}

int dkim_msg_end(struct dkim_msg *m, unsigned char bh[DKIM_HASH_LEN])
{
	dkim_body_end(&m->body, bh);
	return (m->flags & DKIM_MSG_HDR_BIG) ? -1 : 0;
}

/* ---- header fields ------------------------------------------------------- */

/* The index just past the line end of the line holding hdr[i], or len. */
static size_t next_line(const char *hdr, size_t len, size_t i)
{
	while (i < len && !is_eol((unsigned char)hdr[i]))
		i++;
	if (i < len && hdr[i] == '\r' && i + 1 < len && hdr[i + 1] == '\n')
		return i + 2;
	return i < len ? i + 1 : len;
}

/* A field name: %d33-126 but ':', then optional WSP, then ':'. */
static size_t field_name_len(const char *f, size_t len)
{
	size_t n = 0, i;

	while (n < len && f[n] != ':' && (unsigned char)f[n] > 32 && (unsigned char)f[n] < 127)
		n++;
	for (i = n; i < len && is_wsp((unsigned char)f[i]); i++)
		;
	return n > 0 && i < len && f[i] == ':' ? n : 0;
}

int dkim_field_next(const char *hdr, size_t len, size_t *pos, struct dkim_field *f)
{
	size_t i = *pos;

	if (i >= len)
		return 0;
	f->off = i;
	do
		i = next_line(hdr, len, i);
	while (i < len && is_wsp((unsigned char)hdr[i]));
	f->len = i - f->off;
	f->namelen = field_name_len(hdr + f->off, f->len);
	*pos = i;
	return 1;
}

/* Where canonical bytes go: a running hash, text, or both. */
struct sink {
	br_sha256_context *sha;
	struct text       *t;
};

static void sink_put(struct sink *s, const void *p, size_t n)
{
	if (s->sha != NULL)
		br_sha256_update(s->sha, p, n);
	if (s->t != NULL)
		text_put(s->t, p, n);
}

/* The relaxed form of one field into s, with its CRLF when crlf is set
 * (the DKIM-Signature field itself is hashed without). */
static void relaxed_field(struct sink *s, const char *f, size_t len, size_t namelen, int crlf)
{
	char buf[256];
	size_t n = 0, i;
	int wsp = 0, any = 0;

#define PUT(ch) do { if (n == sizeof buf) { sink_put(s, buf, n); n = 0; } buf[n++] = (char)(ch); } while (0)
	for (i = 0; i < namelen; i++)
		PUT(lower((unsigned char)f[i]));
	PUT(':');
	while (i < len && f[i] != ':')
		i++;
	for (i++; i < len; i++) {
		unsigned char c = (unsigned char)f[i];

		if (is_eol(c))
			continue;               /* unfolding: the WSP after it stays */
		if (is_wsp(c)) {
			wsp = 1;
			continue;
		}
		if (wsp && any)
			PUT(' ');
		wsp = 0;
		any = 1;
		PUT(c);
	}
	if (crlf) {
		PUT('\r');
		PUT('\n');
	}
#undef PUT
	sink_put(s, buf, n);
}

size_t dkim_header_relaxed(const char *field, size_t len, size_t namelen, char *out, size_t cap)
{
	struct text t = { out, cap, 0 };
	struct sink s = { NULL, &t };

	relaxed_field(&s, field, len, namelen, 1);
	return text_end(&t);
}

/* ---- tag lists ------------------------------------------------------------ */

static int is_fws(unsigned char c)
{
	return is_wsp(c) || is_eol(c);
}

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int dkim_tag_next(const char *s, size_t len, size_t *pos, struct dkim_tag *t)
{
	size_t i = *pos, vend;

	while (i < len && is_fws((unsigned char)s[i]))
		i++;
	if (i == len) {
		*pos = i;
		return 0;
	}
	if (!is_alpha((unsigned char)s[i]))
		return -1;
	t->name = s + i;
	while (i < len && (is_alpha((unsigned char)s[i]) || (s[i] >= '0' && s[i] <= '9') ||
	                   s[i] == '_'))
		i++;
	t->namelen = (size_t)(s + i - t->name);
	while (i < len && is_fws((unsigned char)s[i]))
		i++;
	if (i == len || s[i] != '=')
		return -1;
	for (i++; i < len && is_fws((unsigned char)s[i]); i++)
		;
	t->value = s + i;
	vend = i;
	for (; i < len && s[i] != ';'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_fws(c))
			continue;
		if (c < 0x21 || c > 0x7e)
			return -1;
		vend = i + 1;
	}
	t->valuelen = vend - (size_t)(t->value - s);
	*pos = i < len ? i + 1 : i;
	return 1;
}

#define TAGS_MAX 64  /* more tags than any real signature: not one of ours */

int dkim_sig_domain(const char *field, size_t len, size_t namelen, char *d)
{
	struct dkim_tag tags[TAGS_MAX], t;
	size_t pos, ntags = 0, n;
	const struct dkim_tag *dt = NULL;
	int r;

	if (namelen != 14 || !same_ci(field, "dkim-signature", 14))
		return -1;
	for (pos = namelen; pos < len && field[pos] != ':'; pos++)
		;
	pos++;
	while ((r = dkim_tag_next(field, len, &pos, &t)) == 1) {
		if (ntags == TAGS_MAX)
			return -1;
		for (size_t k = 0; k < ntags; k++)
			if (tags[k].namelen == t.namelen && memcmp(tags[k].name, t.name, t.namelen) == 0)
				return -1;      /* RFC 6376 3.2: a repeated tag spoils the list */
		tags[ntags++] = t;
		if (t.namelen == 1 && t.name[0] == 'd')
			dt = &tags[ntags - 1];
	}
	if (r < 0 || dt == NULL)
		return -1;
	n = dt->valuelen;
	if (n > 0 && dt->value[n - 1] == '.')
		n--;
	if (n == 0 || n > DKIM_DOMAIN_MAX || !addr_domain_valid(dt->value, n, 1))
		return -1;
	for (size_t i = 0; i < n; i++)
		d[i] = (char)lower((unsigned char)dt->value[i]);
	d[n] = '\0';
	return 0;
}

int dkim_signed_by(const char *hdr, size_t len, const char *domain)
{
	struct dkim_field f;
	char d[DKIM_DOMAIN_MAX + 1];
	size_t pos = 0, n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.')
		n--;
	while (dkim_field_next(hdr, len, &pos, &f))
		if (dkim_sig_domain(hdr + f.off, f.len, f.namelen, d) == 0 && strlen(d) == n &&
		    same_ci(d, domain, n))
			return 1;
	return 0;
}

/* ---- the From: domain ------------------------------------------------------ */

/* The bytes of one mailbox that make its address, gathered as
 * from_mailbox() walks the field value. */
struct gather {
	char   buf[ADDR_PATH_MAX + 2];
	size_t n;
	int    wsp;       /* whitespace since the last byte gathered */
	int    over;      /* did not fit */
	int    phrase;    /* two words side by side: a display name */
};

static void gather(struct gather *g, char c, int quoted)
{
	/* CFWS may stand beside '@' and '.' in an addr-spec; between two
	 * words it makes a phrase, which is no address. */
	if (g->wsp && !quoted && g->n > 0 && g->buf[g->n - 1] != '@' && g->buf[g->n - 1] != '.' &&
	    g->buf[g->n - 1] != '<' && c != '@' && c != '.' && c != '>')
		g->phrase = 1;
	g->wsp = 0;
	if (g->n < sizeof g->buf)
		g->buf[g->n++] = c;
	else
		g->over = 1;
}

static int from_parse(const struct gather *g, char *domain, const char **why)
{
	struct addr a;

	if (g->over) {
		*why = "From: address too long";
		return -1;
	}
	if (g->phrase || addr_parse_path(g->buf, g->n, ADDR_ALLOW_UTF8, &a) != ADDR_OK) {
		*why = "From: address malformed";
		return -1;
	}
	if (a.flags & ADDR_F_LITERAL) {
		*why = "From: address has an address literal";
		return -1;
	}
	memcpy(domain, a.domain, a.domainlen + 1);
	return 0;
}

/*
 * One mailbox (RFC 5322 3.4) from a field value: the text between '<'
 * and '>' when there is an angle-addr (the display name before it is
 * skipped), else the whole value as an addr-spec; comments and folding
 * whitespace are dropped, quoted strings kept.  Reasoned at each byte,
 * because a quoted display name may hold any of ",<>:;@".
 */
static int from_mailbox(const char *v, size_t len, char *domain, const char **why)
{
	struct gather spec = { .n = 1, .buf = "<" }, angle = { .n = 0 };
	int angle_state = 0;    /* 0 before '<', 1 inside, 2 after '>' */
	int quoted = 0;
	size_t depth = 0;       /* comment nesting */

	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		struct gather *g = angle_state == 1 ? &angle : &spec;

		if (depth > 0) {                /* in a comment */
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (quoted) {
			gather(g, c, 1);
			if (c == '\\' && i + 1 < len)
				gather(g, v[++i], 1);
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (is_fws((unsigned char)c)) {
			g->wsp = 1;
			continue;
		}
		if (c == '(') {
			depth = 1;
			g->wsp = 1;
			continue;
		}
		if (angle_state == 2) {
			*why = "From: text after the address";
			return -1;
		}
		if ((c == ',' && angle_state != 1) || ((c == ':' || c == ';') && angle_state == 0)) {
			*why = c == ',' ? "From: more than one address" : "From: a group";
			return -1;
		}
		if (c == '<' && angle_state == 0) {
			angle_state = 1;
			gather(&angle, c, 0);
			continue;
		}
		if (c == '>' && angle_state == 1)
			angle_state = 2;
		else if (c == '<' || c == '>') {
			*why = "From: address malformed";
			return -1;
		}
		if (c == '"')
			quoted = 1;
		gather(g, c, 0);
	}
	if (quoted || depth > 0 || angle_state == 1) {
		*why = "From: unterminated quote, comment or <";
		return -1;
	}
	if (angle_state == 2)
		return from_parse(&angle, domain, why);
	spec.wsp = 0;
	gather(&spec, '>', 0);
	return from_parse(&spec, domain, why);
}

int dkim_from_domain(const char *hdr, size_t len, char *domain, const char **why)
{
	struct dkim_field f, from;
	size_t pos = 0, nfrom = 0, i;

	while (dkim_field_next(hdr, len, &pos, &f))
		if (f.namelen == 4 && same_ci(hdr + f.off, "from", 4)) {
			from = f;
			nfrom++;
		}
	if (nfrom != 1) {
		*why = nfrom == 0 ? "no From: field" : "more than one From: field";
		return -1;
	}
	for (i = from.off + from.namelen; hdr[i] != ':'; i++)
		;
	i++;
	return from_mailbox(hdr + i, from.off + from.len - i, domain, why);
}

const struct conf_dkim *dkim_key_find(const struct conf *c, const char *domain, size_t len)
{
	const struct conf_dkim *best = NULL;

	for (size_t k = 0; k < c->ndkim; k++) {
		const struct conf_dkim *d = &c->dkim[k];

		if (!rules_domain_matches(&d->domain, domain, len))
			continue;
		if (!d->domain.subdomains)
			return d;               /* an exact name wins */
		if (best == NULL || strlen(d->domain.name) > strlen(best->domain.name))
			best = d;
	}
	return best;
}

size_t dkim_line_domain(const struct conf_dkim *d, char *out, size_t cap)
{
	size_t n = strlen(d->domain.name), pre = d->domain.subdomains ? 2 : 0;

	if (pre + n < cap) {
		memcpy(out, "*.", pre);
		memcpy(out + pre, d->domain.name, n + 1);
	}
	return pre + n;
}

const struct conf_dkim *dkim_line_find(const struct conf *c, const char *domain, size_t dlen,
                                       const char *selector, size_t slen)
{
	for (size_t k = 0; k < c->ndkim; k++) {
		const struct conf_dkim *d = &c->dkim[k];
		char name[ADDR_DOMAIN_MAX + 3];

		if (dkim_line_domain(d, name, sizeof name) == dlen && strncasecmp(name, domain, dlen) == 0 &&
		    strlen(d->selector) == slen && memcmp(d->selector, selector, slen) == 0)
			return d;
	}
	return NULL;
}

/* ---- headers lists ----------------------------------------------------------- */

struct hname {
	const char *name;
	size_t      len;
	size_t      listed;   /* times in the configured list */
	size_t      present;  /* fields of this name in the message */
	size_t      base;     /* its first entry in h= */
};

/* Split a checked, lower-case list into distinct names (first-seen order). */
static size_t hnames_split(const char *list, struct hname *h)
{
	size_t n = 0;

	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ":"), k;

		for (k = 0; k < n; k++)
			if (h[k].len == len && memcmp(h[k].name, p, len) == 0)
				break;
		if (k == n)
			h[n++] = (struct hname){ p, len, 0, 0, 0 };
		h[k].listed++;
		p += len + (p[len] == ':');
	}
	return n;
}

int dkim_hlist_check(const char *list, size_t len, char *out, size_t cap, const char **why)
{
	size_t names = 0, start = 0, o = 0;
	int from = 0;

	if (cap == 0) {
		*why = "the list is too long";
		return -1;
	}

	for (size_t i = 0; i <= len; i++) {
		if (i < len && list[i] != ':') {
			unsigned char c = (unsigned char)list[i];

			if (c < 33 || c > 126) {
				*why = "a header name holds a byte outside 33-126";
				return -1;
			}
			continue;
		}
		size_t n = i - start;
		if (n == 0) {
			*why = "an empty header name";
			return -1;
		}
		if (n > DKIM_HNAME_MAX) {
			*why = "a header name is too long";
			return -1;
		}
		if (++names > DKIM_HNAMES_MAX) {
			*why = "too many header names";
			return -1;
		}
		if (n == 4 && same_ci(list + start, "from", 4))
			from = 1;
		if (o + n + (i < len) + 1 > cap) {  /* the name, its ':', the NUL */
			*why = "the list is too long";
			return -1;
		}
		for (size_t k = start; k < i; k++)
			out[o++] = (char)lower((unsigned char)list[k]);
		if (i < len)
			out[o++] = ':';
		start = i + 1;
	}
	out[o] = '\0';
	if (!from) {
		*why = "From is not in the list (RFC 6376 5.4: it must be signed)";
		return -1;
	}
	return 0;
}

/* ---- the signature -------------------------------------------------------------- */

/* Folding: words joined by a space, or by CRLF TAB when the line would
 * pass FOLD_COLUMNS; glued pieces (h=, b=) join with nothing or CRLF TAB. */
struct fold {
	struct text t;
	size_t      col;
};

static void fold_word(struct fold *f, const char *w, size_t n, int glued)
{
	if (f->col > 8 && f->col + !glued + n > FOLD_COLUMNS) {
		text_puts(&f->t, "\r\n\t");
		f->col = 8;             /* a TAB, as a terminal shows it */
	} else if (!glued) {
		text_puts(&f->t, " ");
		f->col++;
	}
	text_put(&f->t, w, n);
	f->col += n;
}

static void fold_tag(struct fold *f, const char *name, const char *value)
{
	char w[DKIM_DOMAIN_MAX + 8];
	size_t n = strlen(name), v = strlen(value);

	memcpy(w, name, n);
	memcpy(w + n, value, v);
	w[n + v] = ';';
	fold_word(f, w, n + v + 1, 0);
}

/* Everything one signature needs, worked out from the message. */
struct plan {
	char              hlist[CONF_DKIM_HEADERS_MAX];
	struct hname      names[DKIM_HNAMES_MAX];
	size_t            nnames;
	struct dkim_field sel[DKIM_SELECTED_MAX];  /* h= order; len 0: selects nothing */
	size_t            nsel;
};

int dkim_names_check(const char *domain, const char *selector, const char **why)
{
	size_t dn = strlen(domain), sn = strlen(selector);

	if (dn == 0 || dn > DKIM_DOMAIN_MAX || domain[0] == '[' || domain[dn - 1] == '.' ||
	    !addr_domain_valid(domain, dn, 0)) {
		*why = "bad domain";
		return -1;
	}
	if (sn == 0 || sn > CONF_DKIM_SELECTOR_MAX || selector[0] == '[' ||
	    selector[sn - 1] == '.' || !addr_domain_valid(selector, sn, 0) ||
	    sn + 12 + dn > DKIM_DOMAIN_MAX) {
		*why = "bad selector";
		return -1;
	}
	return 0;
}

static int spec_check(const struct dkim_spec *spec, struct plan *pl, const char **why)
{
	const char *h = spec->headers != NULL && spec->headers[0] != '\0' ? spec->headers
	                                                                 : DKIM_DEFAULT_HEADERS;

	if (dkim_names_check(spec->domain, spec->selector, why) != 0)
		return -1;
	if (dkim_hlist_check(h, strlen(h), pl->hlist, sizeof pl->hlist, why) != 0)
		return -1;
	pl->nnames = hnames_split(pl->hlist, pl->names);
	return 0;
}

/* Which field each h= entry selects: the k-th entry of a name takes the
 * k-th field of that name counted from the bottom (RFC 6376 5.4.2). */
static int plan_select(const char *hdr, size_t hlen, struct plan *pl, const char **why)
{
	struct dkim_field f;
	size_t pos = 0, total = 0;

	while (dkim_field_next(hdr, hlen, &pos, &f))
		for (size_t k = 0; k < pl->nnames && f.namelen > 0; k++)
			if (pl->names[k].len == f.namelen && same_ci(hdr + f.off, pl->names[k].name, f.namelen))
				pl->names[k].present++;
	for (size_t k = 0; k < pl->nnames; k++) {
		if (pl->names[k].present == 0 && pl->names[k].len == 4 &&
		    memcmp(pl->names[k].name, "from", 4) == 0) {
			*why = "no From: field";
			return -1;
		}
		pl->names[k].base = total;
		total += pl->names[k].present + pl->names[k].listed - 1;
	}
	if (total > DKIM_SELECTED_MAX) {
		*why = "too many header fields to sign";
		return -1;
	}
	memset(pl->sel, 0, total * sizeof pl->sel[0]);
	pl->nsel = total;
	size_t seen[DKIM_HNAMES_MAX] = { 0 };
	pos = 0;
	while (dkim_field_next(hdr, hlen, &pos, &f))
		for (size_t k = 0; k < pl->nnames && f.namelen > 0; k++)
			if (pl->names[k].len == f.namelen && same_ci(hdr + f.off, pl->names[k].name, f.namelen)) {
				struct hname *h = &pl->names[k];
				pl->sel[h->base + (h->present - 1 - seen[k]++)] = f;
			}
	return 0;
}

/* The header without b='s value, folded, into p->head. */
static int build_head(const struct dkim_spec *spec, const struct plan *pl,
                      const unsigned char bh[DKIM_HASH_LEN], struct dkim_pending *p,
                      const char **why)
{
	struct fold f = { { p->head, sizeof p->head, 0 }, 0 };
	char num[24], b64[BASE64_ENCODED_LEN(DKIM_HASH_LEN) + 1];
	size_t hv = 0;
	int first = 1;

	text_puts(&f.t, "DKIM-Signature:");
	f.col = 15;
	fold_word(&f, "v=1;", 4, 0);
	fold_word(&f, "a=rsa-sha256;", 13, 0);
	fold_word(&f, "c=relaxed/relaxed;", 18, 0);
	fold_tag(&f, "d=", spec->domain);
	fold_tag(&f, "s=", spec->selector);
	struct text nt = { num, sizeof num, 0 };
	text_put_u64(&nt, spec->time);
	text_end(&nt);
	fold_tag(&f, "t=", num);
	for (size_t k = 0; k < pl->nnames; k++) {
		const struct hname *h = &pl->names[k];

		for (size_t r = 0; r < h->present + h->listed - 1; r++) {
			char w[DKIM_HNAME_MAX + 4];

			w[0] = first ? 'h' : ':';
			w[1] = '=';
			memcpy(w + 1 + first, h->name, h->len);
			fold_word(&f, w, 1 + (size_t)first + h->len, !first);
			hv += 1 + h->len;
			first = 0;
		}
	}
	fold_word(&f, ";", 1, 1);
	base64_encode(bh, DKIM_HASH_LEN, b64, sizeof b64);
	fold_tag(&f, "bh=", b64);
	fold_word(&f, "b=", 2, 0);
	p->len = text_end(&f.t);
	if (hv > DKIM_HVALUE_MAX || p->len >= sizeof p->head) {
		*why = "the h= list is too long";
		return -1;
	}
	return 0;
}

/* The data to sign into s: the selected fields, then the header itself. */
static void signed_data(const char *hdr, const struct plan *pl, const struct dkim_pending *p,
                        struct sink *s)
{
	for (size_t k = 0; k < pl->nsel; k++)
		if (pl->sel[k].len > 0)
			relaxed_field(s, hdr + pl->sel[k].off, pl->sel[k].len, pl->sel[k].namelen, 1);
	relaxed_field(s, p->head, p->len, 14, 0);
}

int dkim_prepare(const char *hdr, size_t hlen, const unsigned char bh[DKIM_HASH_LEN],
                 const struct dkim_spec *spec, struct dkim_pending *out, const char **why)
{
	struct plan pl;
	br_sha256_context sha;
	struct sink s = { &sha, NULL };

	memset(&pl, 0, sizeof pl);
	if (spec_check(spec, &pl, why) != 0 || plan_select(hdr, hlen, &pl, why) != 0 ||
	    build_head(spec, &pl, bh, out, why) != 0)
		return -1;
	br_sha256_init(&sha);
	signed_data(hdr, &pl, out, &s);
	br_sha256_out(&sha, out->hash);
	return 0;
}

size_t dkim_signed_data(const char *hdr, size_t hlen, const unsigned char bh[DKIM_HASH_LEN],
                        const struct dkim_spec *spec, char *out, size_t cap)
{
	const char *why;
	struct plan pl;
	struct dkim_pending p;
	struct text t = { out, cap, 0 };
	struct sink s = { NULL, &t };

	memset(&pl, 0, sizeof pl);
	if (spec_check(spec, &pl, &why) != 0 || plan_select(hdr, hlen, &pl, &why) != 0 ||
	    build_head(spec, &pl, bh, &p, &why) != 0)
		return 0;
	signed_data(hdr, &pl, &p, &s);
	return text_end(&t);
}

size_t dkim_header_finish(const struct dkim_pending *p, const unsigned char *sig, size_t siglen,
                          char *out, size_t cap)
{
	char b64[BASE64_ENCODED_LEN(DKIM_SIG_MAX) + 1];
	struct fold f = { { out, cap, 0 }, 0 };
	size_t i = p->len, n;

	if (siglen > DKIM_SIG_MAX)
		return 0;
	text_put(&f.t, p->head, p->len);
	while (i > 0 && p->head[i - 1] != '\n')
		i--;
	f.col = p->len - i + (i > 0 ? 7 : 0);  /* a folded line starts with a TAB */
	n = base64_encode(sig, siglen, b64, sizeof b64);
	for (size_t k = 0; k < n;) {
		size_t room = f.col < FOLD_COLUMNS ? FOLD_COLUMNS - f.col : 0, take;

		if (room == 0) {
			text_puts(&f.t, "\r\n\t");
			f.col = 8;
			room = FOLD_COLUMNS - f.col;
		}
		take = n - k < room ? n - k : room;
		text_put(&f.t, b64 + k, take);
		f.col += take;
		k += take;
	}
	text_puts(&f.t, "\r\n");
	return text_end(&f.t);
}

size_t dkim_dns_record(const char *selector, const char *domain, const unsigned char *spki,
                       size_t len, char *out, size_t cap)
{
	static const char pre[] = "v=DKIM1; k=rsa; p=";
	char txt[sizeof pre + BASE64_ENCODED_LEN(1024)];
	struct text t = { out, cap, 0 };
	size_t n;

	if (len > 1024)
		return 0;
	memcpy(txt, pre, sizeof pre - 1);
	n = sizeof pre - 1 + base64_encode(spki, len, txt + sizeof pre - 1, sizeof txt - (sizeof pre - 1));
	text_puts(&t, selector);
	text_puts(&t, "._domainkey.");
	text_puts(&t, domain);
	text_puts(&t, ". IN TXT");
	for (size_t k = 0; k < n; k += 255) {
		text_puts(&t, " \"");
		text_put(&t, txt + k, n - k < 255 ? n - k : 255);
		text_puts(&t, "\"");
	}
	text_puts(&t, "\n");
	return text_end(&t);
}
