/* mta/init/devices.c -- the appliance's boot steps; see initdev.h */
#include "mta/init/devices.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/input.h>

#include "mta/net/log.h"
#include "mta/init/rtnetlink.h"
#include "policy/kv.h"


long initdev_read_small(const char *path, char *buf, size_t cap)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || cap == 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (got + 1 < cap) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (long)got;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int mount_one(const char *src, const char *dir, const char *type, unsigned long flags,
                     const char *opts)
{
	if (mount(src, dir, type, flags, opts) == 0 || errno == EBUSY)
		return 0;
	log_warn("msg=\"cannot mount %s on %s: %s\"", type, dir, strerror(errno));
	return -1;
}

int initdev_mount_kernel_fs(void)
{
	int r = 0;

	/* The kernel is built without DEVTMPFS_MOUNT: /dev is ours to mount. */
	r |= mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
	r |= mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
	r |= mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
	return r;
}

/* One pass over /sys/class/block: the first partition (in name order)
 * called name.  Returns the number of matches. */
static int scan_partitions(const char *name, char *dev, size_t cap)
{
	struct dirent **list = NULL;
	char path[512], buf[2048];
	int n = scandir("/sys/class/block", &list, NULL, alphasort), found = 0;

	for (int i = 0; i < n; i++) {
		struct kv kv;
		size_t pos = 0;
		int is_part = 0, named = 0;
		char devname[64] = "";

		if (list[i]->d_name[0] != '.') {
			snprintf(path, sizeof path, "/sys/class/block/%s/uevent", list[i]->d_name);
			long len = initdev_read_small(path, buf, sizeof buf);
			while (len > 0 && kv_uevent_next(buf, (size_t)len, &pos, &kv)) {
				if (kv.val == NULL)
					continue;
				if (kv_is(&kv, "DEVTYPE"))
					is_part = kv.vallen == 9 && memcmp(kv.val, "partition", 9) == 0;
				else if (kv_is(&kv, "PARTNAME"))
					named = kv.vallen == strlen(name) && memcmp(kv.val, name, kv.vallen) == 0;
				else if (kv_is(&kv, "DEVNAME") && kv.vallen < sizeof devname) {
					memcpy(devname, kv.val, kv.vallen);
					devname[kv.vallen] = '\0';
				}
			}
			if (is_part && named && devname[0] != '\0' && strchr(devname, '/') == NULL) {
				if (found++ == 0)
					snprintf(dev, cap, "/dev/%s", devname);
				else
					log_warn("msg=\"another partition named %s: /dev/%s (using %s)\"",
					         name, devname, dev);
			}
		}
		free(list[i]);
	}
	free(list);
	return found;
}

int initdev_find_partition(const char *name, unsigned wait_ms, char *dev, size_t cap,
                           void (*between)(void))
{
	unsigned waited = 0;

	for (;;) {
		if (between != NULL)
			between();
		if (scan_partitions(name, dev, cap) > 0) {
			log_event("data-partition", "name=%s device=%s", name, dev);
			return 0;
		}
		if (waited >= wait_ms)
			break;
		if (waited == 0)
			log_event("waiting", "for=partition name=%s max=%us", name, wait_ms / 1000);
		sleep_ms(20);
		waited += 20;
	}
	log_warn("msg=\"no partition named %s on any disk\"", name);
	return -1;
}

int initdev_mount_data(const char *dev, const char *dir)
{
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME;

	if (mount(dev, dir, "ext4", flags, "") != 0) {
		log_warn("msg=\"cannot mount %s (ext4) on %s: %s\"", dev, dir, strerror(errno));
		return -1;
	}
	log_event("mounted", "device=%s on=%s type=ext4", dev, dir);
	return 0;
}

/* The interface to configure: c->net_interface, or the first (by name)
 * Ethernet device in /sys/class/net, waiting up to 5 s for it. */
static int pick_interface(const struct conf *c, char *name, size_t cap)
{
	char path[512], buf[64];

	for (unsigned waited = 0; waited <= 5000; waited += 20) {
		if (c->net_interface[0] != '\0') {
			snprintf(path, sizeof path, "/sys/class/net/%s", c->net_interface);
			if (access(path, F_OK) == 0) {
				snprintf(name, cap, "%s", c->net_interface);
				return 0;
			}
		} else {
			struct dirent **list = NULL;
			int n = scandir("/sys/class/net", &list, NULL, alphasort), found = 0;
			for (int i = 0; i < n; i++) {
				/* type 1 is ARPHRD_ETHER; lo is 772. */
				snprintf(path, sizeof path, "/sys/class/net/%s/type", list[i]->d_name);
				size_t len = strlen(list[i]->d_name);
				if (!found && list[i]->d_name[0] != '.' && len < cap &&
				    initdev_read_small(path, buf, sizeof buf) > 0 && atoi(buf) == 1) {
					memcpy(name, list[i]->d_name, len + 1);
					found = 1;
				}
				free(list[i]);
			}
			free(list);
			if (found)
				return 0;
		}
		sleep_ms(20);
	}
	if (c->net_interface[0] != '\0')
		log_warn("msg=\"no interface %s\"", c->net_interface);
	else
		log_warn("msg=\"no Ethernet interface\"");
	return -1;
}

int initdev_mac(const char *ifname, uint8_t mac[6])
{
	char path[128], buf[64];
	unsigned v[6];

	snprintf(path, sizeof path, "/sys/class/net/%s/address", ifname);
	if (initdev_read_small(path, buf, sizeof buf) < 17 ||
	    sscanf(buf, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int k = 0; k < 6; k++)
		mac[k] = (uint8_t)v[k];
	return 0;
}

void initdev_arp_announce(const char *ifname, unsigned ifindex, const uint8_t ip[4])
{
	struct sockaddr_ll to;
	uint8_t mac[6], pkt[28];
	int fd;

	if (initdev_mac(ifname, mac) != 0)
		return;
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0)
		return;
	/* RFC 5227 2.3: an ARP request for our own address, from it. */
	memcpy(pkt, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(pkt + 8, mac, 6);
	memcpy(pkt + 14, ip, 4);
	memset(pkt + 18, 0, 6);
	memcpy(pkt + 24, ip, 4);
	memset(&to, 0, sizeof to);
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETH_P_ARP);
	to.sll_ifindex = (int)ifindex;
	to.sll_halen = 6;
	memset(to.sll_addr, 0xff, 6);
	if (sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to) < 0)
		log_debug("msg=\"arp announce: %s\"", strerror(errno));
	close(fd);
}

int initdev_network(const struct conf *c, char *ifname, unsigned *ifindex)
{
	char text[IP_TEXT_MAX];
	unsigned lo, ifi;
	int nl = netcfg_open(), r, bad = 0;

	*ifindex = 0;
	if (nl < 0) {
		log_warn("msg=\"rtnetlink: %s\"", strerror(errno));
		return -1;
	}
	lo = if_nametoindex("lo");
	if (lo == 0 || (r = netcfg_link_up(nl, lo)) != 0)
		log_warn("msg=\"cannot bring up lo: %s\"", lo == 0 ? "no such device" : strerror(-r));
	if (pick_interface(c, ifname, IF_NAMESIZE + 1) != 0 || (ifi = if_nametoindex(ifname)) == 0) {
		close(nl);
		return -1;
	}
	if ((r = netcfg_link_up(nl, ifi)) != 0) {
		log_warn("msg=\"cannot bring up %s: %s\"", ifname, strerror(-r));
		close(nl);
		return -1;
	}
	log_event("link-up", "interface=%s", ifname);
	*ifindex = ifi;
	for (size_t k = 0; k < c->nnet_addrs; k++) {
		const struct conf_ifaddr *a = &c->net_addrs[k];
		ip_format(&a->addr, text, sizeof text);
		if ((r = netcfg_addr_add(nl, ifi, &a->addr, a->prefix)) != 0 && r != -EEXIST) {
			log_warn("msg=\"cannot add address %s/%u to %s: %s\"", text, a->prefix, ifname,
			         strerror(-r));
			bad = 1;
		} else {
			log_event("address", "interface=%s address=%s/%u", ifname, text, a->prefix);
			/* Neighbours (a router, a switch, qemu's user network)
			 * learn where the address is without asking. */
			if (a->addr.family == IP_V4)
				initdev_arp_announce(ifname, ifi, a->addr.a);
		}
	}
	for (size_t k = 0; k < c->nnet_gateways; k++) {
		ip_format(&c->net_gateways[k], text, sizeof text);
		if ((r = netcfg_gateway_add(nl, ifi, &c->net_gateways[k])) != 0 && r != -EEXIST) {
			log_warn("msg=\"cannot add default route via %s: %s\"", text, strerror(-r));
			bad = 1;
		} else {
			log_event("route", "default=via gateway=%s interface=%s", text, ifname);
		}
	}
	close(nl);
	return bad ? -1 : 0;
}

static int has_bit(const unsigned char *bits, size_t cap, unsigned bit)
{
	return bit / 8 < cap && (bits[bit / 8] & (1u << (bit % 8))) != 0;
}

size_t initdev_power_buttons(int *fds, size_t cap)
{
	struct dirent **list = NULL;
	char path[512], name[128];
	unsigned char keys[KEY_MAX / 8 + 1];
	size_t found = 0;
	int n = scandir("/dev/input", &list, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		if (found < cap && strncmp(list[i]->d_name, "event", 5) == 0) {
			snprintf(path, sizeof path, "/dev/input/%s", list[i]->d_name);
			int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			memset(keys, 0, sizeof keys);
			memset(name, 0, sizeof name);
			if (fd >= 0 && ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) >= 0 &&
			    has_bit(keys, sizeof keys, KEY_POWER) && !has_bit(keys, sizeof keys, KEY_A)) {
				(void)ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
				char q[160];
				log_event("power-button", "device=%s name=%s", path,
				          log_quoted(name, strlen(name), q, sizeof q));
				fds[found++] = fd;
			} else if (fd >= 0) {
				close(fd);
			}
		}
		free(list[i]);
	}
	free(list);
	if (found == 0)
		log_warn("msg=\"no power button: an ACPI power-off will not stop moat cleanly\"");
	return found;
}

int initdev_power_pressed(int fd)
{
	struct input_event ev[16];
	ssize_t n;
	int pressed = 0;

	while ((n = read(fd, ev, sizeof ev)) > 0) {
		for (size_t k = 0; k < (size_t)n / sizeof ev[0]; k++)
			if (ev[k].type == EV_KEY && ev[k].code == KEY_POWER && ev[k].value == 1)
				pressed = 1;
	}
	return pressed;
}
