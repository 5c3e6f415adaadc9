/* policy/ctl.c -- the control protocol's request line; see ctl.h */
#include "policy/ctl.h"

#include <string.h>

int ctl_parse(const char *line, size_t len, struct ctl_req *out)
{
	size_t i = 0, n = 0;

	memset(out, 0, sizeof *out);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0 || len > CTL_LINE_MAX)
		return -1;
	while (i < len) {
		size_t start = i;
		while (i < len && line[i] != ' ') {
			if (line[i] <= 0x20 || line[i] >= 0x7f)
				return -1;
			i++;
		}
		if (i == start || n > CTL_ARGS_MAX)
			return -1;       /* an empty word: a double, leading or trailing space */
		if (n == 0) {
			out->verb.p = line + start;
			out->verb.len = i - start;
		} else {
			out->arg[n - 1].p = line + start;
			out->arg[n - 1].len = i - start;
		}
		n++;
		if (i < len) {
			i++;             /* the space */
			if (i == len)
				return -1;
		}
	}
	out->nargs = n - 1;
	return 0;
}

int ctl_word_is(const struct ctl_word *w, const char *s)
{
	return strlen(s) == w->len && memcmp(w->p, s, w->len) == 0;
}
