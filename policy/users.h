/*
 * policy/users.h -- the users file: who may AUTH, and as which senders.
 *
 * Pure: mta/ reads the file; users_parse() takes its bytes.  One user a
 * line, '#' starts a comment line, blank lines are skipped:
 *
 *     name:hash[:sender,sender...]
 *
 *   name    1..255 octets, no ':', no space or control character
 *   hash    $6$ (SHA-512-crypt) or $5$ (SHA-256-crypt), as `openssl passwd
 *           -6`, `mkpasswd -m sha-512` and `moat passwd` write them
 *   sender  optional: the MAIL FROM addresses this user may use, each
 *           "local@domain" or "@domain" (any address at that domain),
 *           compared without regard to ASCII case.  Without a list the
 *           user may send as anyone; with one, the null sender <> is
 *           refused too.
 *
 * Errors are "FILE:LINE: what is wrong".  The caller owns the struct users
 * (users_free()); a struct user pointer lives as long as its users.
 */
#ifndef MOAT_POLICY_USERS_H
#define MOAT_POLICY_USERS_H

#include <stddef.h>

#include "shacrypt.h"

#define USERS_NAME_MAX  255
#define USERS_MAX       65536
#define USERS_FILE_MAX  (16u << 20)

struct user {
	char        name[USERS_NAME_MAX + 1];
	char        hash[SHACRYPT_MAX];
	const char *senders;      /* "a@b,@c" inside users->text, or NULL */
	size_t      senderslen;
	size_t      line;
};

struct users {
	struct user *v;           /* sorted by name */
	size_t       n;
	char        *text;        /* a copy of the file (senders point into it) */
};

/* Parse a users file; NULL with err set on a bad line or no memory. */
struct users *users_parse(const char *text, size_t len, const char *file, char *err,
                          size_t errcap);
void users_free(struct users *u);

const struct user *users_find(const struct users *u, const char *name, size_t len);

/* The user named name whose password is pass, or NULL.  An unknown name
 * costs the same hashing as a known one, so timing does not tell which
 * names exist.  The hash comparison is constant-time. */
const struct user *users_authenticate(const struct users *u, const char *name, size_t namelen,
                                      const char *pass, size_t passlen);

/* May user send as sender ("local@domain" as addr_format() writes it, ""
 * for the null path)?  1 or 0. */
int users_sender_allowed(const struct user *user, const char *sender);

#endif
