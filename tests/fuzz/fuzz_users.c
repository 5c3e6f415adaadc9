/*
 * tests/fuzz/fuzz_users.c -- the users file and a recipient list from
 * arbitrary bytes.  Invariants: a parsed file's users are sorted, unique
 * and findable, each hash is valid SHA-crypt; an error has a message.
 * (The hashes are never computed here: that would only fuzz SHA-2.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/rcptdb.h"
#include "policy/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct users *u = users_parse((const char *)data, size, "f", err, sizeof err);
	static struct rcptdb db;

	if (u == NULL) {
		if (err[0] == '\0')
			abort();
	} else {
		for (size_t k = 0; k < u->n; k++) {
			const struct user *x = &u->v[k];
			if (k > 0 && strcmp(u->v[k - 1].name, x->name) >= 0)
				abort();
			if (users_find(u, x->name, strlen(x->name)) != x)
				abort();
			if (!shacrypt_valid(x->hash, strlen(x->hash)))
				abort();
			(void)users_sender_allowed(x, "a@b.example");
		}
		users_free(u);
	}
	rcptdb_init(&db);
	if (rcptdb_load(&db, 0, (const char *)data, size, "f", err, sizeof err) == 0) {
		for (size_t k = 0; k < db.lists[0].n; k++)
			if (k > 0 && strcmp(db.lists[0].v[k - 1], db.lists[0].v[k]) > 0)
				abort();
	}
	rcptdb_free(&db);
	return 0;
}
