/*
 * mta/cmd/passwd.h -- `moat passwd [-5] [-r ROUNDS]`: read a password on
 * stdin (one line; echo off on a terminal) and print its SHA-crypt hash
 * for the users file: $6$ (SHA-512) by default, $5$ with -5, a 16-character
 * salt from getrandom().  Exit: 0, 1 (empty password), 100 (usage),
 * 111 (no entropy, read error).
 */
#ifndef MOAT_MTA_CMD_PASSWD_H
#define MOAT_MTA_CMD_PASSWD_H

int passwd_main(int argc, char **argv);

#endif
