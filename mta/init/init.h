/*
 * mta/init/init.h -- `moat init`: moat as process 1 of the appliance (image/).
 *
 * The kernel runs /init, which is the moat binary; main() sees it is PID 1
 * and calls init_main().  The boot, in order, each step on the console
 * (docs/appliance.md has the whole story):
 *   1. mount devtmpfs, proc, sysfs; Ctrl-Alt-Del becomes SIGINT to us
 *   2. load the kernel modules of the devices there are (virtio, AHCI,
 *      the ACPI power button, ...: mta/init/modules.h) and ext4
 *   3. find the partition whose GPT name is "moat-data" (or moat.data=NAME
 *      on the kernel command line) and mount it on /data (ext4: its
 *      journal is replayed after an unclean stop)
 *   4. a config seed (mta/init/seed.h): checked, copied to /data
 *   5. read /data/moat.conf; with none, or an invalid one, say exactly what
 *      to do on the console and serve nothing
 *   6. the network: lo, and net-interface (default: the first Ethernet)
 *      with net-address and net-gateway from moat.conf (or moat.net-* on
 *      the kernel command line when moat.conf has no net-address), else a
 *      DHCP lease; router advertisements' DNS servers (mta/init/lease.h)
 *   7. the clock by SNTP (mta/init/ntpc.h), before the server
 *   8. an upgrade offered on the seed or /data: `moat upgrade`, reboot
 *      (mta/init/upgrade.h)
 *   9. run `moat serve -c /data/moat.conf` as a child, its log on every
 *      console; restart it when it dies (1 s, doubling to 60 s)
 *  10. the boot slot (mta/init/slots.h): on trial, made the default once
 *      /health says 200, given up (a reboot) when it does not within 5
 *      minutes or the server dies 3 times; else the other slot's failed
 *      trial undone
 * Then it reaps children, renews the lease, keeps the clock close, until
 * the ACPI power button (KEY_POWER) or SIGTERM (power off) or SIGINT,
 * i.e. Ctrl-Alt-Del (reboot): it stops the server (SIGTERM, then SIGKILL
 * after 30 s), releases the lease, syncs, unmounts /data and powers off
 * or reboots.  Process 1 must never exit: failures are logged and the
 * appliance waits for the power button.  It never blocks on the network
 * or the server: name lookups, SNTP, health checks, `moat check` and
 * `moat upgrade` run in children.
 */
#ifndef MOAT_MTA_INIT_INIT_H
#define MOAT_MTA_INIT_INIT_H

/* Run the init role.  Never returns when this is process 1; otherwise
 * refuses (exit 100). */
int init_main(void);

#endif
