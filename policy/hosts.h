/*
 * policy/hosts.h -- the hosts file (hosts(5)): lines "ADDRESS NAME
 * [ALIAS...]", '#' to the end of a line a comment, fields separated by
 * spaces or tabs.  The host names of routes and the smarthost are looked
 * up here before DNS, as the C library does with "files dns".
 *
 * Pure: the caller reads the file (mta/smtp/queue_runner.c, before the
 * sandbox) and keeps its text; a lookup scans it, allocates nothing.
 * A line whose address does not parse is skipped (glibc does the same);
 * no line is too long (a name longer than 253 bytes never matches).
 */
#ifndef MOAT_POLICY_HOSTS_H
#define MOAT_POLICY_HOSTS_H

#include <stddef.h>

#include "policy/net.h"

/* The addresses of name (any case; one trailing dot ignored on either
 * side) in text[0..len), in file order, duplicates dropped: at most max
 * into out.  Returns how many. */
size_t hosts_lookup(const char *text, size_t len, const char *name, struct ipaddr *out,
                    size_t max);

#endif
