/*
 * policy/conf.h -- the configuration file, text to struct.
 *
 * Pure: conf_parse() takes the file's bytes; mta/ reads the file.  Errors
 * are "FILE:LINE: what is wrong".  The format, one directive per line:
 *
 *     # comment
 *     directive value [value ...]
 *
 * Every directive and its default is documented in README.md
 * ("Configuration reference"); keep the two in step.
 * The caller owns struct conf; it holds no pointers, so it can be copied.
 */
#ifndef MOAT_POLICY_CONF_H
#define MOAT_POLICY_CONF_H

#include <stddef.h>
#include <stdint.h>
#include "net.h"
#include "addr.h"

#define CONF_MAX_LISTENERS 16
#define CONF_MAX_DOMAINS   256
#define CONF_MAX_NETS      256
#define CONF_PATH_MAX      512
#define CONF_LINE_MAX      1024  /* bytes in one line, without its line end */

struct conf_listener {
	struct ipaddr addr;
	uint16_t      port;
	unsigned      any : 1;   /* wildcard (0.0.0.0 or ::) */
};

struct conf_domain {
	char     name[ADDR_DOMAIN_MAX + 1]; /* lower-case, no trailing dot */
	unsigned subdomains : 1;            /* "*.name" also matches a.name, a.b.name */
};

/* An address of the appliance's own interface: host bits kept. */
struct conf_ifaddr {
	struct ipaddr addr;
	uint8_t       prefix;  /* 1..32 or 1..128 */
};
#define CONF_MAX_NET_ADDRS 8
#define CONF_IFNAME_MAX    15 /* Linux IFNAMSIZ - 1 */

struct conf {
	char     hostname[ADDR_DOMAIN_MAX + 1];      /* hostname; default: uname */
	struct conf_listener listeners[CONF_MAX_LISTENERS];
	size_t   nlisteners;                          /* listen; default 0.0.0.0:25 if none */
	struct conf_domain domains[CONF_MAX_DOMAINS];
	size_t   ndomains;                            /* domain */
	struct cidr relay_nets[CONF_MAX_NETS];
	size_t   nrelay_nets;                         /* relay-network */
	char     queue_path[CONF_PATH_MAX];           /* queue; default /var/lib/moat/queue */
	uint64_t queue_map_size;                      /* queue-map-size; default (0 until
	                                                 conf_finish) quota_map_size() */
	/* Queue quotas (policy/quota.h): a message that would break one gets
	 * 452 4.3.1, at MAIL or at the end of DATA. */
	uint64_t queue_max_bytes;                     /* queue-max-bytes; default 2 GiB */
	unsigned queue_max_messages;                  /* queue-max-messages; default 100000 */
	uint64_t queue_min_free;                      /* queue-min-free; default 64 MiB */
	unsigned queue_min_free_percent;              /* queue-min-free-percent; default 5 */
	unsigned queue_client_share;                  /* queue-client-share (percent of
	                                                 queue-max-bytes); default 25 */
	uint64_t max_message_size;                    /* max-message-size; default 35 MiB */
	unsigned max_recipients;                      /* max-recipients; default 1000 */
	unsigned max_errors;                          /* max-errors; default 20 */
	unsigned max_connections;                     /* max-connections; default 4000 */
	unsigned max_connections_per_client;          /* max-connections-per-client; default 50 */
	unsigned max_messages_per_connection;         /* max-messages-per-connection; default 1000 */
	/* Timeouts in seconds (RFC 5321 4.5.3.2 minimums are 5 min for most;
	 * we default shorter, as an edge relay under attack must). */
	unsigned timeout_command;                     /* timeout-command; default 300 */
	unsigned timeout_data;                        /* timeout-data: per read in DATA; default 180 */
	unsigned timeout_data_total;                  /* timeout-data-total: all of DATA; default 1200 */
	unsigned greeting_delay_ms;                   /* greet-delay; default 0 */
	/* The appliance's network, applied by moat's init role (image/);
	 * moat serve ignores these. */
	char     net_interface[CONF_IFNAME_MAX + 1];  /* net-interface; default "": the first Ethernet */
	struct conf_ifaddr net_addrs[CONF_MAX_NET_ADDRS];
	size_t   nnet_addrs;                          /* net-address */
	struct ipaddr net_gateways[2];
	size_t   nnet_gateways;                       /* net-gateway: at most one per family */
};

/* Fill defaults.  hostname is left empty: the caller fills it from uname
 * when the file does not set it. */
void conf_defaults(struct conf *c);

/*
 * Parse text[0..len) named file (for messages) into *c, which must hold
 * conf_defaults() (or a previous parse to layer on).  Returns 0, or -1 with
 * "FILE:LINE: message" in err (NUL-terminated, truncated to errcap).
 * Checks: unknown directive, wrong argument count, bad number/size/CIDR,
 * bad address:port, duplicate listener, duplicate domain, limits above caps.
 */
int conf_parse(const char *text, size_t len, const char *file, struct conf *c,
               char *err, size_t errcap);

/* Final checks after parsing (e.g. at least one listener), and the values
 * derived from others (queue-map-size from the quotas, when not set); same
 * err form with line 0 omitted ("FILE: message").  Returns 0 or -1. */
int conf_finish(struct conf *c, const char *file, char *err, size_t errcap);

/* The effective configuration as config-file text, every directive, into
 * buf; returns the length it needs (like snprintf). */
size_t conf_format(const struct conf *c, char *buf, size_t cap);

#endif
