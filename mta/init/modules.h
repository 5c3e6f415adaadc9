/*
 * mta/init/modules.h -- kernel modules for the appliance's process 1: load
 * a module for each device that is there, and a module by name when init
 * needs one (ext4 for /data, vfat and isofs for a config seed, loop for an
 * upgrade).  What udev and modprobe do on a larger system, from the index
 * image/build.sh writes (policy/modidx.h).
 *
 * A module is loaded with finit_module(), after the modules it needs, with
 * async_probe: the kernel probes its devices in the background, so that
 * a slow probe (AHCI looking at six empty SATA ports: half a second under
 * emulation) goes on while init loads the next module and mounts /data.
 * The devices appear as their probes end: a caller waiting for one calls
 * modules_settle() as it waits; modules_sync() waits for them all.  A
 * module the kernel refuses (ENODEV: the CPU lacks a feature it needs) is
 * logged and not tried again.  Every step logs (mta/net/log.h); none
 * exits.  Single-threaded, state in this file.
 */
#ifndef MOAT_MTA_INIT_MODULES_H
#define MOAT_MTA_INIT_MODULES_H

#include <stddef.h>

/* Read DIR/modules.index.  Returns the number of modules it names, or -1
 * (logged): then only modules already built into the kernel work. */
int modules_open(const char *dir);

/* Load the module called name and what it needs.  Returns 0 when it is
 * loaded (now or before), -1 when it or a dependency failed or is not in
 * the index. */
int modules_load(const char *name);

/* Load, one at a time in the index's order of preference, a module for
 * each device in sysfs (/sys/bus/ * /devices/ * /modalias and the input
 * devices) not yet driven, looking again after each load (a bus driver
 * brings new devices: virtio_pci the virtio disk and network), until no
 * device wants one more.  Returns the number loaded by this call; logs
 * event=modules when it is not 0. */
size_t modules_settle(void);

/* Wait until every device's probe has ended, and the devices they found
 * have their modules (loaded and probed the same way): then every disk
 * and CD-ROM drive there is has appeared (a config seed is looked for
 * after this).  The wait is the kernel's: loading MODULES_BARRIER without
 * async_probe, which returns once all background probing is done. */
#define MODULES_BARRIER "nls_cp437"
void modules_sync(void);

#endif
