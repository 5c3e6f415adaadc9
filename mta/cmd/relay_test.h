/*
 * mta/cmd/relay_test.h -- `moat relay-test [-d OURDOMAIN] [-t FOREIGN] HOST[:PORT]`:
 * probe an SMTP server (this one, or the legacy relay it replaces) with the
 * classic open-relay tricks, and print which it accepted.
 *
 * A blocking command-line client.  Each probe is RSET, MAIL, RCPT: DATA is
 * never sent, so nothing is ever relayed.  A control probe (postmaster at
 * OURDOMAIN) shows that the server takes mail for OURDOMAIN at all.
 * OURDOMAIN defaults to the greeting's host name less its first label;
 * FOREIGN to example.net.  A server that drops the connection (too many
 * errors) is reconnected and the probe tried again.
 * Exit: 0 no trick accepted, 1 at least one accepted (an open relay),
 * 100 usage, 111 cannot connect or the server does not speak SMTP.
 */
#ifndef MOAT_MTA_CMD_RELAY_TEST_H
#define MOAT_MTA_CMD_RELAY_TEST_H

int relaytest_main(int argc, char **argv);

#endif
