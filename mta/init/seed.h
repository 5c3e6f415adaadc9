/*
 * mta/init/seed.h -- the config seed: a small volume the hypervisor
 * attaches (libvirt's and Proxmox's cloud-init drive, OpenStack's config
 * drive), ISO 9660 or VFAT, labelled "cidata" (NoCloud) or "config-2", that
 * carries moat.conf and the files it names.  At each boot process 1 looks
 * for one (policy/fslabel.h on the first bytes of every disk), mounts it
 * read-only on /seed, and:
 *
 *   - takes its config from /seed/moat.conf, else /seed/user-data (what
 *     Proxmox's cicustom and cloud-localds put there) when that is not a
 *     #cloud-config, else /seed/openstack/latest/user_data;
 *   - with the files the config names as /data/NAME, taken from /seed/NAME
 *     when there, checks it with `moat check` (as the server's user, on a
 *     copy in /data/.seed whose /data/ paths point there);
 *   - valid: copies those files to /data and the config to
 *     /data/moat.conf (each written beside and renamed over the old);
 *     invalid: says why on the console and leaves /data as it was.
 *
 * A seed identical to what /data holds is left alone (event=seed
 * result=unchanged).  The seed stays mounted until seed_done(): an upgrade
 * image on it (moat-boot.img) is looked for meanwhile.
 */
#ifndef MOAT_MTA_INIT_SEED_H
#define MOAT_MTA_INIT_SEED_H

#define SEED_DIR "/seed"

enum seed_result {
	SEED_NONE = 0,     /* no seed volume, or one without a config */
	SEED_UNCHANGED,    /* what /data holds already */
	SEED_APPLIED,      /* copied to /data */
	SEED_REFUSED       /* moat check refused it: /data untouched */
};

/* Find and mount a seed on SEED_DIR.  Returns 1 when one is mounted. */
int seed_mount(void (*pump)(void));

/* Check the mounted seed's config and copy it to data_dir when valid. */
enum seed_result seed_apply(const char *data_dir, void (*pump)(void));

/* Why seed_apply() refused the seed ("" otherwise): moat check's message,
 * with the paths as the seed's config names them. */
const char *seed_reason(void);

/* Unmount the seed (when mounted). */
void seed_done(void);

#endif
