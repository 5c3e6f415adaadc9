# image/slots.sh -- the boot partition's slot files, as text (sourced by
# image/build.sh and image/upgrade.sh).  The same text as moat writes from
# the appliance (mta/init/slots.c); the layout is in mta/init/slots.h and
# docs/appliance.md "Upgrades".

# slot_entry SLOT VERSION TRIAL CMDLINE: /loader/entries/moat-SLOT.conf
# (or moat-SLOT+1.conf when TRIAL is 1) for systemd-boot.
slot_entry() {
	trial=
	[ "$3" = 1 ] && trial=" moat.trial=1"
	printf 'title    moat (slot %s)\nsort-key moat\nversion  %s\nlinux    /moat/%s/linux\ninitrd   /moat/%s/initrd\noptions  %s moat.slot=%s%s\n' \
		"$1" "$2" "$1" "$1" "$4" "$1" "$trial"
}

# slot_syslinux GOOD CMDLINE [TRIAL TRIAL_CMDLINE]: /syslinux/syslinux.cfg,
# GOOD the default, TRIAL's label for syslinux's boot-once.
slot_syslinux() {
	printf '# written by moat (mta/init/slots.c): slot %s is the default\n' "$1"
	printf 'SERIAL 0 115200\nDEFAULT %s\nPROMPT 0\nTIMEOUT 0\n' "$1"
	printf 'LABEL %s\n  LINUX /moat/%s/linux\n  INITRD /moat/%s/initrd\n  APPEND %s moat.slot=%s\n' \
		"$1" "$1" "$1" "$2" "$1"
	if [ $# -ge 4 ]; then
		printf 'LABEL %s-trial\n  LINUX /moat/%s/linux\n  INITRD /moat/%s/initrd\n  APPEND %s moat.slot=%s moat.trial=1\n' \
			"$3" "$3" "$3" "$4" "$3"
	fi
}
