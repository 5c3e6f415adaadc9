/*
 * mta/init/upgrade.h -- `moat upgrade FILE`: install a boot image
 * (moat-boot.img, as `make image` builds it) into the appliance's other
 * boot slot, on trial (mta/init/slots.h).  Process 1 runs it, as a child,
 * when it finds moat-boot.img on the config seed or the data partition at
 * boot, and reboots when it exits 0.  FILE is attached read-only with a
 * loop device and mounted (vfat); its slot a is what is installed.
 *
 * Exit codes: 0 installed (reboot to try it), 1 failure (logged), 2
 * nothing to do (the running slot is this image, or the other slot holds
 * it from a trial that failed: it is not tried again), 100 usage (not in
 * the appliance, or on a trial boot: a slot on trial is not upgraded).
 */
#ifndef MOAT_MTA_INIT_UPGRADE_H
#define MOAT_MTA_INIT_UPGRADE_H

int upgrade_main(int argc, char **argv);

#endif
