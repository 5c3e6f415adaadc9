/*
 * mta/init/devices.h -- the kernel-facing steps of the appliance's boot, used
 * by the init role (mta/init/init.c): mounts, the data partition, the
 * network, the power button.  Each step logs what it did (mta/net/log.h) and
 * returns 0 or -1; none of them exits, since the caller is PID 1.
 */
#ifndef MOAT_MTA_INIT_DEVICES_H
#define MOAT_MTA_INIT_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "policy/conf.h"

/* Mount devtmpfs on /dev, proc on /proc, sysfs on /sys. */
int initdev_mount_kernel_fs(void);

/* Find the partition whose GPT name is name (uevent PARTNAME=, which the
 * kernel takes from the GPT entry), waiting up to wait_ms for disks that
 * probe late, calling between() (when not NULL) before each look: it
 * loads the modules new devices want.  Writes "/dev/NAME" into dev.
 * Returns 0 or -1. */
int initdev_find_partition(const char *name, unsigned wait_ms, char *dev, size_t cap,
                           void (*between)(void));

/* Mount dev (ext4) on dir: nosuid, nodev, noexec, noatime.  After an
 * unclean stop the kernel replays the journal here. */
int initdev_mount_data(const char *dev, const char *dir);

/* Bring up lo and the configured (or first Ethernet) interface, add
 * c's net-address and net-gateway entries.  The interface's name goes to
 * ifname (IF_NAMESIZE + 1 bytes) and its index to *ifindex (0 when none
 * was brought up).  Returns 0 or -1 (logged). */
int initdev_network(const struct conf *c, char *ifname, unsigned *ifindex);

/* The interface's hardware address (sysfs).  0 or -1. */
int initdev_mac(const char *ifname, uint8_t mac[6]);

/* Announce ip on the interface (RFC 5227 2.3: an ARP request from and for
 * it), so that neighbours learn our hardware address at once. */
void initdev_arp_announce(const char *ifname, unsigned ifindex, const uint8_t ip[4]);

/* Open the input devices that can send KEY_POWER and are not keyboards
 * (the ACPI "Power Button").  Fills fds (at most cap), returns the count. */
size_t initdev_power_buttons(int *fds, size_t cap);

/* Did this input device report a KEY_POWER press?  Reads what is ready. */
int initdev_power_pressed(int fd);

/* Read a small file (sysfs, procfs) into buf, NUL-terminated; returns the
 * length or -1. */
long initdev_read_small(const char *path, char *buf, size_t cap);

#endif
