/* policy/data.c -- the DATA terminator and dot-unstuffing; see policy/data.h */
#include "policy/data.h"

#include <limits.h>
#include <string.h>

/*
 * The states, in the manner of qmail-smtpd's blast().  A "line" is what lies
 * between two CRLFs; a bare LF or bare CR does not start a new one, so a
 * "." after either is plain content and can never end the message.
 */
enum {
	ST_BOL = 0,  /* just after CRLF, or at the very start of DATA (the 354
	                stands for the CRLF): a "." here is stuffing or the end */
	ST_TEXT,     /* inside a line: every octet is content */
	ST_CR,       /* inside a line, just after a CR that was written out;
	                LF makes it a CRLF, anything else a bare CR */
	ST_DOT,      /* "." at the start of a line, held back (never written):
	                CR may lead to the end, anything else makes it stuffing */
	ST_DOT_CR,   /* CRLF "." CR: the CR is held back; LF ends the message,
	                anything else releases the CR as a bare CR */
	ST_DONE      /* the terminator has been consumed */
};

#define LINE_MAX_OCTETS 998 /* RFC 5321 4.5.3.1.6, without CRLF */

void data_init(struct data_state *ds)
{
	ds->st = ST_BOL;
	ds->flags = 0;
	ds->linelen = 0;
}

/* One more octet of the current line as received (CRLF excluded). */
static void line_grow(struct data_state *ds)
{
	if (++ds->linelen > LINE_MAX_OCTETS)
		ds->flags |= DATA_F_LONG;
}

/*
 * One loop over the bytes with the states of the enum above as one switch:
 * longer than our usual 80 lines on purpose.  Split into a function per
 * state it would pass the state, the output and the counters in and out
 * for every byte of every message; kept whole, each state's handling of
 * CR, LF and "." reads next to the others', which is where the smuggling
 * cases live (tests/unit/test_data.c, tests/fuzz/fuzz_data.c).
 */
int data_feed(struct data_state *ds, const char *in, size_t inlen,
              char *out, size_t outcap, size_t *outlen, size_t *consumed)
{
	size_t i = 0, o = 0;

	/*
	 * Each step looks at in[i] and writes at most one octet; a step that
	 * would write stops the loop when out is full.  A step may leave in[i]
	 * unconsumed (ST_DOT_CR releasing its CR) to see it again in ST_TEXT.
	 */
	while (i < inlen && ds->st != ST_DONE) {
		char c = in[i];
		int writes;

		if (ds->st == ST_TEXT) {
			/* Fast path: a run of plain text (no CR, LF or NUL) is
			 * copied as it is, each octet one more of the line; the
			 * same as the steps below, a run at a time.  Most of a
			 * message is such runs (make bench: the byte steps cost
			 * ~24 instructions per octet). */
			size_t start = i, end = inlen - i < outcap - o ? inlen : i + (outcap - o);

			while (i < end) {
				unsigned char b = (unsigned char)in[i];

				if (b <= '\r' && (b == '\r' || b == '\n' || b == '\0'))
					break;
				i++;
			}
			if (i > start) {
				memcpy(out + o, in + start, i - start);
				o += i - start;
				ds->linelen += i - start;
				if (ds->linelen > LINE_MAX_OCTETS)
					ds->flags |= DATA_F_LONG;
				continue;
			}
		}
		switch (ds->st) {
		case ST_DOT:
			writes = c != '\r';
			break;
		case ST_DOT_CR:
			writes = c != '\n';
			break;
		case ST_BOL:
			writes = c != '.';
			break;
		default:
			writes = 1;
			break;
		}
		if (writes && o == outcap)
			break;

		switch (ds->st) {
		case ST_DOT_CR:
			if (c == '\n') {
				/* CRLF "." CRLF: done; the dot and the CR are dropped. */
				ds->st = ST_DONE;
				ds->linelen = 0;
				i++;
				continue;
			}
			/* The dot was stuffing; the held CR is a bare one. */
			out[o++] = '\r';
			ds->flags |= DATA_F_BARE;
			line_grow(ds);
			ds->st = ST_TEXT;
			continue; /* c again, as text */
		case ST_BOL:
			if (c == '.') {
				line_grow(ds);
				ds->st = ST_DOT;
				i++;
				continue;
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				ds->st = ST_DOT_CR;
				i++;
				continue;
			}
			break; /* the dot was stuffing: drop it, c is text */
		case ST_CR:
			if (c == '\n') {
				out[o++] = c;
				ds->st = ST_BOL;
				ds->linelen = 0;
				i++;
				continue;
			}
			/* The CR already written was a bare one. */
			ds->flags |= DATA_F_BARE;
			line_grow(ds);
			break;
		default:
			break;
		}

		/* c is text inside a line. */
		out[o++] = c;
		i++;
		if (c == '\r') {
			ds->st = ST_CR; /* counted once we know it is not CRLF */
			continue;
		}
		if (c == '\n')
			ds->flags |= DATA_F_BARE; /* a CRLF went through ST_CR */
		else if (c == '\0')
			ds->flags |= DATA_F_NUL;
		line_grow(ds);
		ds->st = ST_TEXT;
	}
	*outlen = o;
	*consumed = i;
	return ds->st == ST_DONE;
}

void stuff_init(struct stuff_state *st)
{
	st->bol = 1;
	st->cr = 0;
}

size_t stuff_feed(struct stuff_state *st, const char *in, size_t inlen,
                  char *out, size_t outcap, size_t *consumed)
{
	size_t i = 0, o = 0;

	/* Worst case for one byte: the LF a pending CR is owed, then ".." */
	while (i < inlen && outcap - o >= 3) {
		char c = in[i++];

		if (st->cr) {
			st->cr = 0;
			out[o++] = '\n';        /* CRLF, or a bare CR made CRLF */
			st->bol = 1;
			if (c == '\n')
				continue;
		}
		if (c == '\n') {                /* a bare LF */
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = 1;
			continue;
		}
		if (c == '\r') {
			out[o++] = '\r';
			st->cr = 1;
			continue;
		}
		if (st->bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->bol = 0;
	}
	*consumed = i;
	return o;
}

size_t stuff_end(struct stuff_state *st, char *out)
{
	size_t o = 0;

	if (st->cr) {
		out[o++] = '\n';
		st->cr = 0;
		st->bol = 1;
	}
	if (!st->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
		st->bol = 1;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* ---- hops ---- */

enum {
	HOP_NAME = 0,  /* matching "received" from the start of a line */
	HOP_COLON,     /* "received" matched: spaces, tabs, then ':' */
	HOP_CR,        /* a CR at the start of a line: LF ends the header */
	HOP_SKIP,      /* the rest of a line that is not counted (or was) */
	HOP_DONE       /* past the header section */
};

void hops_init(struct hops_state *h)
{
	h->count = 0;
	h->col = 0;
	h->st = HOP_NAME;
}

void hops_feed(struct hops_state *h, const char *in, size_t len)
{
	static const char name[] = "received";

	for (size_t i = 0; i < len && h->st != HOP_DONE; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\n') {
			/* an empty line (CRLF, or LF) ends the header section */
			h->st = (h->st == HOP_CR || (h->st == HOP_NAME && h->col == 0)) ? HOP_DONE
			                                                                 : HOP_NAME;
			h->col = 0;
			continue;
		}
		switch (h->st) {
		case HOP_NAME:
			if (h->col == 0 && c == '\r')
				h->st = HOP_CR;
			else if ((c | 0x20) == (unsigned char)name[h->col])
				h->st = ++h->col == sizeof name - 1 ? HOP_COLON : HOP_NAME;
			else
				h->st = HOP_SKIP;
			break;
		case HOP_COLON:
			if (c == ':') {
				if (h->count < UINT_MAX)
					h->count++;
				h->st = HOP_SKIP;
			} else if (c != ' ' && c != '\t') {
				h->st = HOP_SKIP;
			}
			break;
		case HOP_CR:
			h->st = HOP_SKIP;
			break;
		default:
			break;
		}
	}
}
