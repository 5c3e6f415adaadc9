/* policy/kv.c -- kernel command line and uevent KEY=VALUE lists; see kv.h */
#include <string.h>

#include "kv.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Split buf[start..end) at its first '=' into *out. */
static void split(const char *buf, size_t start, size_t end, struct kv *out)
{
	const char *eq = memchr(buf + start, '=', end - start);

	out->key = buf + start;
	if (eq == NULL) {
		out->keylen = end - start;
		out->val = NULL;
		out->vallen = 0;
		return;
	}
	out->keylen = (size_t)(eq - (buf + start));
	out->val = eq + 1;
	out->vallen = end - (size_t)(eq + 1 - buf);
}

int kv_cmdline_next(const char *buf, size_t len, size_t *pos, struct kv *out)
{
	size_t k = *pos, start, end;
	int quoted = 0;

	while (k < len && is_space(buf[k]))
		k++;
	if (k >= len) {
		*pos = len;
		return 0;
	}
	/* The word ends at a space outside quotes; quotes toggle. */
	start = k;
	for (; k < len; k++) {
		if (buf[k] == '"')
			quoted = !quoted;
		else if (!quoted && is_space(buf[k]))
			break;
	}
	end = k;
	*pos = k;
	/* "key=value words": the whole word quoted. */
	if (buf[start] == '"') {
		start++;
		if (end > start && buf[end - 1] == '"')
			end--;
	}
	split(buf, start, end, out);
	/* key="value words": the value quoted. */
	if (out->val != NULL && out->vallen > 0 && out->val[0] == '"') {
		out->val++;
		out->vallen--;
		if (out->vallen > 0 && out->val[out->vallen - 1] == '"')
			out->vallen--;
	}
	return 1;
}

int kv_uevent_next(const char *buf, size_t len, size_t *pos, struct kv *out)
{
	size_t k = *pos;

	for (;;) {
		if (k >= len) {
			*pos = len;
			return 0;
		}
		const char *nl = memchr(buf + k, '\n', len - k);
		size_t end = nl != NULL ? (size_t)(nl - buf) : len;
		size_t next = nl != NULL ? end + 1 : len;

		if (end > k) {
			split(buf, k, end, out);
			*pos = next;
			return 1;
		}
		k = next;
	}
}

int kv_is(const struct kv *kv, const char *key)
{
	size_t n = strlen(key);

	return kv->keylen == n && memcmp(kv->key, key, n) == 0;
}
