#!/bin/sh
# image/upgrade.sh -- upgrade an appliance disk offline: put a new boot
# image into its other boot slot, to be tried once at the next boot.
#
#   image/upgrade.sh DISK moat-boot.img
#
# DISK is the appliance's raw disk (moat.img) or a block device holding it
# (/dev/sdX, an LVM or ZFS volume); for qcow2, convert first (qemu-img
# convert -O raw) and back.  moat-boot.img is a newer build's boot
# partition (build/image/moat-boot.img): its slot a is copied into the
# slot the disk does not boot now, systemd-boot gets an entry for it with
# one try (moat-X+1.conf) and syslinux a boot-once label (X-trial, in its
# ADV), and nothing else changes: the data partition, config and queue are
# untouched.  At the next boot the appliance runs the new slot; it becomes
# the default of both loaders once its server is up and /health says 200,
# and a boot that does not get there falls back to the old slot at the
# boot after (docs/appliance.md "Upgrades").  The same as `moat upgrade`
# does from inside the appliance (mta/init/slots.c); the file formats are
# in image/slots.sh.
#
# Never on a disk a running appliance is using.
# Exit: 0 installed, 1 failure, 2 nothing to do (the disk boots this image
# already), 100 usage.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/slots.sh"
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 100; }
die() { echo "image/upgrade.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
disk=$1 img=$2
[ -f "$disk" ] || [ -b "$disk" ] || die "$disk: no such file or block device"
[ -f "$img" ] || die "$img: no such file"
for t in sfdisk mtype mcopy mdel mdir mshowfat python3; do
	command -v "$t" >/dev/null || die "$t not found (Debian: fdisk, mtools, python3)"
done
export MTOOLS_SKIP_CHECK=1

start=$(sfdisk -d "$disk" 2>/dev/null | sed -n 's/.*start= *\([0-9]*\),.*name="moat-boot".*/\1/p' | head -n1)
[ -n "$start" ] || die "$disk: no GPT partition named moat-boot"
off=$((start * 512))
esp="$disk@@$off"

# The slot that boots now: syslinux's default (moat keeps both loaders'
# defaults the same).
cfg=$(mtype -i "$esp" ::/syslinux/syslinux.cfg) || die "$disk: no /syslinux/syslinux.cfg"
current=$(printf '%s\n' "$cfg" | awk '$1 == "DEFAULT" { print $2; exit }')
case $current in
a) other=b ;;
b) other=a ;;
*) die "$disk: its boot partition has no slots (an image from before them): write a new moat.img" ;;
esac
printf '%s\n' "$cfg" | grep -q "^LABEL $other-trial" \
	&& die "$disk: slot $other is on trial already: boot the disk once first"

t=$(mktemp -d "${TMPDIR:-/tmp}/upgrade.XXXXXX")
trap 'rm -rf "$t"' EXIT
for f in linux initrd cmdline; do
	mcopy -n -i "$img" "::/moat/a/$f" "$t/new-$f" 2>/dev/null || die "$img: no /moat/a/$f (not a moat boot image)"
	mcopy -n -i "$esp" "::/moat/$current/$f" "$t/cur-$f" 2>/dev/null || true
done
if cmp -s "$t/new-linux" "$t/cur-linux" && cmp -s "$t/new-initrd" "$t/cur-initrd"; then
	echo "image/upgrade.sh: slot $current of $disk boots $img already"
	exit 2
fi

# The newest version among the entries, one more for the new slot.
version=0
for e in $(mdir -b -i "$esp" ::/loader/entries 2>/dev/null | sed 's|.*/||'); do
	v=$(mtype -i "$esp" "::/loader/entries/$e" | awk '$1 == "version" { print $2 }')
	[ -n "$v" ] && [ "$v" -gt "$version" ] && version=$v
	case $e in "moat-$other.conf"|"moat-$other+"*) mdel -i "$esp" "::/loader/entries/$e" ;; esac
done
version=$((version + 1))

new_cmdline=$(tr -d '\n' <"$t/new-cmdline")
cur_cmdline=$(tr -d '\n' <"$t/cur-cmdline")
for f in linux initrd cmdline; do
	mcopy -o -i "$esp" "$t/new-$f" "::/moat/$other/$f"
done
slot_entry "$other" "$version" 1 "$new_cmdline" >"$t/entry"
mcopy -o -i "$esp" "$t/entry" "::/loader/entries/moat-$other+1.conf"
slot_syslinux "$current" "$cur_cmdline" "$other" "$new_cmdline" >"$t/syslinux.cfg"
mcopy -o -i "$esp" "$t/syslinux.cfg" ::/syslinux/syslinux.cfg

# syslinux's boot-once lives in its ADV: the last 1024 bytes of
# ldlinux.sys (two copies of 512: magic, checksum, tag 1 = the label,
# magic; the format of syslinux's adv.h, and of policy/bootslot.c).
# Rewritten in place, over the clusters the file holds, which the boot
# sector's list of ldlinux.sys's sectors names: mcopy would move them.
python3 - "$disk" "$off" "$other-trial" <<'PY'
import os, struct, subprocess, sys
disk, off, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
part = "%s@@%d" % (disk, off)
size = len(subprocess.run(["mtype", "-i", part, "::/syslinux/ldlinux.sys"], capture_output=True,
                          env=env, check=True).stdout)
fat = subprocess.run(["mshowfat", "-i", part, "::/syslinux/ldlinux.sys"], capture_output=True,
                     text=True, env=env, check=True).stdout
clusters = []
for run in fat.split("<")[1:]:
    a, _, b = run.split(">")[0].partition("-")
    clusters += range(int(a), int(b or a) + 1)
adv = bytearray(512)
adv[8:10 + len(label)] = bytes([1, len(label)]) + label.encode()
struct.pack_into("<I", adv, 0, 0x5a2d2fa5)
total = 0xa3041767
for i in range(8, 508, 4):
    total = (total - struct.unpack_from("<I", adv, i)[0]) & 0xffffffff
struct.pack_into("<I", adv, 4, total)
struct.pack_into("<I", adv, 508, 0xdd28bf64)
both = bytes(adv) * 2
with open(disk, "r+b") as f:
    f.seek(off)
    bs = f.read(512)
    bps, spc = struct.unpack_from("<HB", bs, 11)
    rsvd, nfats = struct.unpack_from("<HB", bs, 14)
    first_data = rsvd + nfats * struct.unpack_from("<I", bs, 36)[0]
    csize = bps * spc
    for i in range(1024):
        pos = size - 1024 + i
        c = clusters[pos // csize]
        f.seek(off + (first_data + (c - 2) * spc) * bps + pos % csize)
        f.write(both[i:i + 1])
PY
sync
echo "image/upgrade.sh: slot $other of $disk holds $img (version $version), on trial: the next boot tries it once"
