/*
 * policy/ctl.h -- the control protocol's request line (mta/ops/control.h).
 * Pure: no I/O, no allocation; outputs point into the caller's buffer.
 *
 * A request is one line: VERB, then up to CTL_ARGS_MAX arguments, single
 * spaces between, printable ASCII only, at most CTL_LINE_MAX octets
 * without its LF (a CR before the LF is allowed).  A reply is one or more
 * lines "CODE-TEXT" ... "CODE TEXT", the last with a space, CODE being
 * 200 done, 400 bad request, 404 no such thing, 500 failed.
 */
#ifndef MOAT_POLICY_CTL_H
#define MOAT_POLICY_CTL_H

#include <stddef.h>

#define CTL_LINE_MAX 512
#define CTL_ARGS_MAX 4

#define CTL_OK        200
#define CTL_BAD       400
#define CTL_NOTFOUND  404
#define CTL_FAILED    500

struct ctl_word {
	const char *p;
	size_t      len;
};

struct ctl_req {
	struct ctl_word verb;
	struct ctl_word arg[CTL_ARGS_MAX];
	size_t          nargs;
};

/* Parse line[0..len) (without the LF).  Returns 0, or -1 if it is empty,
 * too long, holds a byte outside printable ASCII, two spaces in a row, a
 * leading or trailing space, or more than CTL_ARGS_MAX arguments. */
int ctl_parse(const char *line, size_t len, struct ctl_req *out);

/* Is w the word s? */
int ctl_word_is(const struct ctl_word *w, const char *s);

#endif
