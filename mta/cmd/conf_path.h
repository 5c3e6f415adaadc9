/*
 * mta/cmd/conf_path.h -- which config file a command reads, when it was
 * not told with -c.
 *
 *   1. -c FILE                 that file
 *   2. $MOAT_CONF              that file (set and not empty)
 *   3. /etc/moat/moat.conf     when it exists (serve and check: always)
 *   4. the running server's    admin commands only (status, reload, queue):
 *                              the config of the one `moat serve` running on
 *                              this machine, read from /proc (its -c, or its
 *                              MOAT_CONF where we may read its environment);
 *                              with none or several, the error says what to
 *                              pass
 *
 * The last is what lets `build/moat status` find the demo that `make run`
 * serves, or any server an operator started by hand, without being told.
 */
#ifndef MOAT_MTA_CMD_CONF_PATH_H
#define MOAT_MTA_CMD_CONF_PATH_H

#include <stddef.h>

#define CONFPATH_DEFAULT "/etc/moat/moat.conf"
#define CONFPATH_MAX     4096

/*
 * The config file for a command: given is the -c argument or NULL; admin
 * says the running server may be asked (step 4).  Returns 0 with the path
 * in path[0..cap), and *found 1 when it came from a running server (the
 * caller may say so); -1 with a one-line message in err saying what to
 * pass.  cmd names the command in that message ("status", "queue").
 */
int confpath_find(const char *given, int admin, const char *cmd, char *path, size_t cap,
                  int *found, char *err, size_t errcap);

/*
 * Step 4 alone: the configs of the `moat serve` processes running now
 * (a role's processes are the server's children and not counted twice),
 * at most max, each an absolute path of at most CONFPATH_MAX bytes in
 * paths[i].  Returns how many were found (0 when /proc cannot be read).
 */
size_t confpath_running(char (*paths)[CONFPATH_MAX], size_t max);

#endif
