/*
 * mta/init/slots.h -- the appliance's two boot slots (docs/appliance.md
 * "Upgrades"), on its boot partition (GPT name "moat-boot", FAT, mounted
 * on /boot only while it is changed):
 *
 *   /moat/X/linux, /moat/X/initrd, /moat/X/cmdline    slot X (a or b)
 *   /loader/entries/moat-X.conf                        systemd-boot: X, good
 *   /loader/entries/moat-X+1.conf                      X on trial (one try)
 *   /syslinux/syslinux.cfg                             DEFAULT the good slot,
 *                                                      LABEL X-trial for a trial
 *   /syslinux/ldlinux.sys's ADV                        boot once: X-trial
 *
 * A slot is on trial from its install until moat, booted from it, finds
 * the server started and healthy; then both loaders make it the default
 * (slots_bless).  A trial boot that never gets there is not repeated: for
 * UEFI systemd-boot counts the one try down and sorts the entry last; for
 * BIOS syslinux clears the boot-once label before it boots it.  The next
 * boot is the good slot's, which undoes what is left of the trial
 * (slots_after_boot).  Each entry carries a version, one more at each
 * install, so systemd-boot sorts the newest good slot first.
 *
 * The kernel command line says which slot booted: moat.slot=X, and
 * moat.trial=1 on a trial.  Every change is written beside and renamed
 * over the old file, and synced.  Single-threaded; logs; never exits.
 */
#ifndef MOAT_MTA_INIT_SLOTS_H
#define MOAT_MTA_INIT_SLOTS_H

#define SLOTS_ESP      "/boot"
#define SLOTS_PARTNAME "moat-boot"

/* Mount the boot partition on SLOTS_ESP (read-write), loading vfat.
 * 0 or -1 (logged). */
int slots_mount(void (*between)(void));
void slots_umount(void);

/* A boot of slot that is not a trial: undo an unfinished trial of the
 * other slot (its entry, syslinux's label and boot-once), logging
 * event=upgrade result=rolled-back.  Returns 1 when it did, 0 when there
 * was none, -1 on error.  The partition must be mounted. */
int slots_after_boot(char slot);

/* A healthy trial boot of slot: both loaders' default from now on.
 * 0 or -1.  The partition must be mounted. */
int slots_bless(char slot);

enum slots_install_result {
	SLOTS_INSTALLED = 0,     /* the other slot holds it, on trial: reboot */
	SLOTS_ERROR = 1,
	SLOTS_SAME = 2,          /* the running slot is this image already */
	SLOTS_FAILED_BEFORE = 3  /* the other slot holds it from a trial that failed */
};

/* Install the boot image whose files are under dir (a moat-boot.img,
 * mounted: its slot a) into the slot that is not current, on trial.  The
 * partition must be mounted. */
enum slots_install_result slots_install(char current, const char *dir);

#endif
