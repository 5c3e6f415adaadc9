/*
 * policy/conf.h -- the configuration file, text to struct.
 *
 * Pure: conf_parse() takes the file's bytes; mta/ reads the file.  Errors
 * are "FILE:LINE: what is wrong".  The format, one directive per line:
 *
 *     # comment
 *     directive value [value ...]
 *
 * Every directive and its default is documented in docs/configuration.md
 * ("Configuration reference") and docs/moat.conf.5; tests/unit/test_confdoc.c
 * keeps the three in step.
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
#define CONF_MAX_RCPT_LISTS 64
#define CONF_MAX_ROUTES    256
#define CONF_MAX_DNS       3
#define CONF_MAX_NTP       3
#define CONF_MAX_DNSBL     16
#define CONF_DNSBL_ZONE_MAX 160  /* a zone's name, so that any query name fits 253 */
#define CONF_MAX_PROXY_FROM 64
#define CONF_MAX_DKIM      64
#define CONF_DKIM_SELECTOR_MAX 63   /* s=: one DNS label's worth (dotted is allowed) */
#define CONF_DKIM_HNAME_MAX    64   /* one header field name in a headers list */
#define CONF_DKIM_HEADERS_MAX  512  /* a headers list "from:from:to:...", NUL included */

/* A listener's role (docs/security.md "Relay control"). */
enum conf_role {
	CONF_ROLE_MX = 0,         /* mail for our domains from anyone; no AUTH        */
	CONF_ROLE_SUBMISSION      /* AUTH required before MAIL; users relay anywhere  */
};

enum conf_tls {
	CONF_TLS_NONE = 0,        /* plaintext only                                   */
	CONF_TLS_STARTTLS,        /* plaintext, STARTTLS offered (RFC 3207)           */
	CONF_TLS_IMPLICIT         /* TLS from the first byte (RFC 8314, port 465)     */
};

/* "listen ADDR:PORT [role=mx|submission] [tls=none|starttls|implicit]
 *  [tls-legacy] [auth-plaintext-loopback] [internal] [proxy]"; zeroed = mx, no TLS. */
struct conf_listener {
	struct ipaddr addr;
	uint16_t      port;
	unsigned      any : 1;   /* wildcard (0.0.0.0 or ::) */
	unsigned      role : 2;  /* enum conf_role */
	unsigned      tls : 2;   /* enum conf_tls */
	unsigned      tls_legacy : 1;              /* also CBC suites, TLS 1.0 and 1.1 */
	unsigned      auth_plaintext_loopback : 1; /* AUTH without TLS from 127/8, ::1 */
	unsigned      internal : 1;                /* every client here may relay */
	unsigned      proxy : 1;                   /* a PROXY header (policy/proxy.h) from
	                                              a proxy-from peer comes first */
};

/* "deny-network CIDR [never-connect]" */
struct conf_deny {
	struct cidr net;
	unsigned    never_connect : 1;
};

/* "recipients DOMAIN PATH|catch-all": the valid recipients of one domain. */
struct conf_rcptlist {
	char     domain[ADDR_DOMAIN_MAX + 3];  /* as in a "domain" line, "*." kept, NUL */
	char     path[CONF_PATH_MAX];          /* empty for catch-all */
	size_t   line;                         /* for FILE:LINE when loading fails */
};

struct conf_domain {
	char     name[ADDR_DOMAIN_MAX + 1]; /* lower-case, no trailing dot */
	unsigned subdomains : 1;            /* "*.name" also matches a.name, a.b.name */
};

/* Outbound TLS: what a next hop must offer (docs/delivery.md "Delivery"). */
enum conf_otls {
	CONF_OTLS_NONE = 0,  /* never STARTTLS                                    */
	CONF_OTLS_MAY,       /* STARTTLS when offered, else plaintext (default)   */
	CONF_OTLS_REQUIRE,   /* STARTTLS or no delivery; any certificate          */
	CONF_OTLS_VERIFY     /* STARTTLS with a certificate valid for the host    */
};

/* Where a route or the smarthost sends mail. */
struct conf_nexthop {
	char     host[ADDR_DOMAIN_MAX + 1]; /* host name, or the address as text */
	struct ipaddr addr;                 /* when literal */
	uint16_t port;
	uint8_t  tls;                       /* enum conf_otls */
	unsigned literal : 1;               /* an IP address: no DNS */
	unsigned smtps : 1;                 /* implicit TLS from the first byte */
	unsigned verify_rcpt : 1;           /* routes: RCPT probe before answering RCPT */
	unsigned rate;                      /* "rate N/minute": messages a minute; 0 none */
};

struct conf_route {
	struct conf_domain  domain;
	struct conf_nexthop hop;
};

struct conf_dns_server {
	struct ipaddr addr;
	uint16_t      port;
};
/* An address of the appliance's own interface: host bits kept. */
struct conf_ifaddr {
	struct ipaddr addr;
	uint8_t       prefix;  /* 1..32 or 1..128 */
};
#define CONF_MAX_NET_ADDRS 8
#define CONF_IFNAME_MAX    15 /* Linux IFNAMSIZ - 1 */

/* dnsbl ZONE[=FILTER][*WEIGHT] (policy/dnsbl.h) */
struct conf_dnsbl {
	char     zone[CONF_DNSBL_ZONE_MAX + 1];  /* lower-case, no trailing dot */
	int      weight;                         /* default 1; negative: an allowlist */
	unsigned filtered : 1;                   /* FILTER given; else the default */
	uint8_t  octet[4][32];                   /* FILTER: values allowed, a bit each */
};

/* dns-dnssec: whether moat may believe the AD bit of its resolver. */
enum conf_dnssec {
	CONF_DNSSEC_OFF = 0,      /* no DNSSEC: no DANE (default)                        */
	CONF_DNSSEC_TRUSTED       /* the resolver validates and the path to it is trusted */
};

/* tls-report: what becomes of the day's TLS results (RFC 8460). */
enum conf_tls_report {
	CONF_TLS_REPORT_OFF = 0,  /* aggregated, `moat tls-report DATE` prints them (default) */
	CONF_TLS_REPORT_MAILTO    /* also mailed to each domain's rua=mailto: address   */
};

/* "dkim-sign DOMAIN SELECTOR KEYFILE [headers H1:H2:...]" (docs/dkim.md):
 * mail whose From: domain matches DOMAIN is signed d=NAME s=SELECTOR with
 * the RSA key in KEYFILE (read by mta/ops/config_files.h). */
struct conf_dkim {
	struct conf_domain domain;                    /* "*.NAME": NAME and its subdomains */
	char     selector[CONF_DKIM_SELECTOR_MAX + 1];
	char     keyfile[CONF_PATH_MAX];
	char     headers[CONF_DKIM_HEADERS_MAX];      /* lower case; "" = the default list */
	size_t   line;                                /* for FILE:LINE when loading fails */
};

enum conf_dnsbl_stage {
	CONF_DNSBL_RCPT = 0,  /* refuse each RCPT (default): after AUTH, with the envelope logged */
	CONF_DNSBL_CONNECT    /* refuse in the greeting */
};

struct conf {
	char     hostname[ADDR_DOMAIN_MAX + 1];      /* hostname; default: uname */
	struct conf_listener listeners[CONF_MAX_LISTENERS];
	size_t   nlisteners;                          /* listen; default 0.0.0.0:25 if none */
	struct conf_domain domains[CONF_MAX_DOMAINS];
	size_t   ndomains;                            /* domain */
	struct cidr relay_nets[CONF_MAX_NETS];
	size_t   nrelay_nets;                         /* relay-network */
	struct cidr proxy_from[CONF_MAX_PROXY_FROM];
	size_t   nproxy_from;                         /* proxy-from: who may send a PROXY
	                                                 header to a proxy listener */
	size_t   proxy_from_line;                     /* the first proxy-from line, for errors */
	size_t   proxy_listen_line;                   /* the first listen line with proxy,
	                                                 for errors; 0 when none (so a config
	                                                 without proxies compares as before) */
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
	unsigned max_junk_commands;                   /* max-junk-commands: NOOP, RSET, VRFY, HELP
	                                                 and failed commands per session (since
	                                                 its last queued message); default 100,
	                                                 0 no limit */
	unsigned max_hops;                            /* max-hops: Received: fields a message
	                                                 may carry in; default 100 */
	unsigned max_session_time;                    /* max-session-time, seconds a session may
	                                                 last in all; default 3600, 0 no limit */
	/* Timeouts in seconds (RFC 5321 4.5.3.2 minimums are 5 min for most;
	 * we default shorter, as an edge relay under attack must). */
	unsigned timeout_command;                     /* timeout-command; default 300 */
	unsigned timeout_data;                        /* timeout-data: per read in DATA; default 180 */
	unsigned timeout_data_total;                  /* timeout-data-total: all of DATA; default 1200 */
	unsigned greeting_delay_ms;                   /* greet-delay; default 0 */

	/* TLS and AUTH (files are read by mta/, which reports FILE:LINE with
	 * the line numbers kept here; 0 when the directive is absent). */
	char     tls_cert[CONF_PATH_MAX];             /* tls-cert: PEM chain, leaf first */
	size_t   tls_cert_line;
	char     tls_key[CONF_PATH_MAX];              /* tls-key: PEM RSA or EC key */
	size_t   tls_key_line;
	char     users[CONF_PATH_MAX];                /* users: name:hash[:senders] */
	size_t   users_line;
	unsigned auth_max_failures;                   /* auth-max-failures; default 5 */
	unsigned auth_block_seconds;                  /* auth-block-seconds; default 900 */
	unsigned auth_fail_delay_ms;                  /* auth-fail-delay; default 1000 */
	struct conf_deny deny_nets[CONF_MAX_NETS];
	size_t   ndeny_nets;                          /* deny-network */
	struct conf_rcptlist rcpt_lists[CONF_MAX_RCPT_LISTS];
	size_t   nrcpt_lists;                         /* recipients */
	/* Delivery (docs/delivery.md "Delivery"); durations in seconds. */
	unsigned delivery;                            /* delivery on|off; default on */
	struct conf_route routes[CONF_MAX_ROUTES];
	size_t   nroutes;                             /* route */
	struct conf_nexthop smarthost;                /* smarthost; host "" if none */
	char     smarthost_auth[CONF_PATH_MAX];       /* smarthost ... auth FILE; "" if none */
	size_t   smarthost_line;
	uint8_t  outbound_tls;                        /* outbound-tls (MX deliveries); default may */
	char     tls_ca_file[CONF_PATH_MAX];          /* tls-ca-file */
	struct conf_dns_server dns_servers[CONF_MAX_DNS];
	size_t   ndns_servers;                        /* dns-server; none: /etc/resolv.conf */
	unsigned dns_timeout;                         /* dns-timeout: per try; default 5 */
	/* Authenticated TLS toward MX hosts (docs/tls-policy.md). */
	unsigned mta_sts;                             /* mta-sts on|off; default on */
	unsigned dane;                                /* dane on|off; default on, effective
	                                                 only with dns-dnssec trusted */
	unsigned tls_report;                          /* tls-report (enum conf_tls_report); off */
	unsigned dns_dnssec;                          /* dns-dnssec (enum conf_dnssec); off */
	unsigned retry_min;                           /* retry-min; default 300 */
	unsigned retry_max;                           /* retry-max; default 3600 */
	unsigned queue_lifetime;                      /* queue-lifetime; default 5 days */
	unsigned delay_warning;                       /* delay-warning; default 0 (off) */
	unsigned delivery_concurrency;                /* delivery-concurrency; default 20 */
	unsigned destination_concurrency;             /* destination-concurrency; default 5 */
	unsigned destination_rate;                    /* destination-rate N/minute (MX); 0 none */
	unsigned delivery_conn_messages;              /* max-messages-per-delivery-connection; 100 */
	unsigned delivery_conn_idle;                  /* delivery-connection-idle; default 2s */
	unsigned timeout_connect;                     /* timeout-connect; default 30 */
	unsigned timeout_reply;                       /* timeout-reply; default 300 */
	unsigned verify_cache;                        /* verify-cache; default 600 */
	unsigned timeout_verify;                      /* timeout-verify; default 20 */
	/* Edge defenses (policy/edge.h, policy/dnsbl.h, docs/security.md "Edge defenses"). */
	unsigned reject_early_pipelining;             /* reject-early-pipelining; default on */
	unsigned reject_invalid_helo;                 /* reject-invalid-helo; default on */
	unsigned reject_forged_helo;                  /* reject-forged-helo; default on */
	unsigned reject_forged_sender;                /* reject-forged-sender; default off */
	unsigned tarpit_after;                        /* tarpit-after (errors; 0 off); default 10 */
	unsigned tarpit_delay_ms;                     /* tarpit-delay; default 1000 */
	unsigned tarpit_max_delay_ms;                 /* tarpit-max-delay; default 10000 */
	struct conf_dnsbl dnsbl[CONF_MAX_DNSBL];
	size_t   ndnsbl;                              /* dnsbl */
	unsigned dnsbl_threshold;                     /* dnsbl-threshold; default 1 */
	unsigned dnsbl_stage;                         /* dnsbl-stage (enum conf_dnsbl_stage); rcpt */
	unsigned dnsbl_timeout;                       /* dnsbl-timeout, seconds; default 5 */
	unsigned dnsbl_negative_ttl;                  /* dnsbl-negative-ttl, seconds; default 60 */

	/* Operations (docs/operations.md "Logs", "Metrics and health", "Reload and stop"). */
	unsigned log_target;                          /* log: enum conf_log; default stderr */
	char     log_socket[CONF_PATH_MAX];           /* log syslog PATH; default /dev/log;
	                                                 for log remote, conf_finish()
	                                                 writes the destination here
	                                                 (policy/syslog.h) */
	/* log remote udp|tcp|tls HOST[:PORT] [buffer SIZE]: every line as RFC
	 * 5424 syslog to HOST as well as on stderr (docs/operations.md). */
	unsigned log_remote;                          /* enum syslog_transport; 0 none */
	struct conf_nexthop log_remote_hop;           /* its host and port */
	uint64_t log_remote_buffer;                   /* bytes kept while it is away */
	size_t   log_line;
	unsigned log_facility;                        /* log-facility, as a syslog code;
	                                                 default 2 (mail) */
	struct conf_listener metrics;                 /* metrics-listen; port 0 when off
	                                                 (the default); a bare PORT is
	                                                 127.0.0.1:PORT */
	size_t   metrics_line;
	unsigned shutdown_timeout;                    /* shutdown-timeout: seconds sessions
	                                                 may take to finish; default 8 */
	unsigned run_uid, run_gid;                    /* user-id, group-id: what the roles
	                                                 run as when started as root;
	                                                 default 65532 */
	/* The appliance's network, applied by moat's init role (image/);
	 * moat serve ignores these. */
	char     net_interface[CONF_IFNAME_MAX + 1];  /* net-interface; default "": the first Ethernet */
	struct conf_ifaddr net_addrs[CONF_MAX_NET_ADDRS];
	size_t   nnet_addrs;                          /* net-address */
	struct ipaddr net_gateways[2];
	size_t   nnet_gateways;                       /* net-gateway: at most one per family */
	/* ntp-server: the appliance's clock (SNTP, RFC 4330); none given, the
	 * servers of the DHCP lease; moat serve ignores these. */
	char     ntp_servers[CONF_MAX_NTP][ADDR_DOMAIN_MAX + 1];
	size_t   nntp_servers;
	/* DKIM signing (policy/dkim.h, docs/dkim.md). */
	struct conf_dkim dkim[CONF_MAX_DKIM];
	size_t   ndkim;                               /* dkim-sign */
};

enum conf_log {
	CONF_LOG_STDERR = 0,      /* one line per event on stderr                     */
	CONF_LOG_SYSLOG           /* datagrams to a syslog socket (RFC 3164 framing),
	                             or with log_remote set, RFC 5424 to a server    */
};

/* "mail", "daemon", ... for a syslog facility code; NULL if unknown. */
const char *conf_facility_name(unsigned code);

/* Fill defaults.  hostname is left empty: the caller fills it from uname
 * when the file does not set it. */
void conf_defaults(struct conf *c);

/*
 * Parse text[0..len) named file (for messages) into *c, which must hold
 * conf_defaults() (or a previous parse to layer on).  Returns 0, or -1 with
 * "FILE:LINE: message" in err (NUL-terminated, truncated to errcap).
 * Checks: unknown directive, wrong argument count, bad number/size/CIDR,
 * bad address:port or listener option, duplicate listener, duplicate
 * domain, limits above caps.  Files named (tls-cert, users, recipients) are
 * not opened here.
 */
int conf_parse(const char *text, size_t len, const char *file, struct conf *c,
               char *err, size_t errcap);

/* Final checks after parsing (e.g. at least one listener, a certificate
 * for every TLS listener, users for submission, recipients only for our
 * domains, proxy-from for a proxy listener and a proxy listener for
 * proxy-from), and the values derived from others (queue-map-size from the
 * quotas, when not set); same err form, with the line when one directive
 * is at fault.  Returns 0 or -1. */
int conf_finish(struct conf *c, const char *file, char *err, size_t errcap);

/* The recipients line for domain dom (one of c->domains), or NULL. */
const struct conf_rcptlist *conf_rcptlist_find(const struct conf *c, const struct conf_domain *dom);

/* The name of the i-th directive the parser knows ("hostname", ...), or
 * NULL when i is past the last: for the documentation's tests. */
const char *conf_directive_name(size_t i);

/* The effective configuration as config-file text, every directive, into
 * buf; returns the length it needs (like snprintf). */
size_t conf_format(const struct conf *c, char *buf, size_t cap);

/* Split one line (no line end) into its words: spaces or tabs between
 * them, a word starting with '#' the start of a comment.  word[i] points
 * into s, wlen[i] its length; returns the number of words, which may
 * exceed max (only max are stored).  The config's lines, and the other
 * line formats of the same shape (policy/modidx.h). */
size_t conf_words(const char *s, size_t len, const char **word, size_t *wlen, size_t max);

#endif
