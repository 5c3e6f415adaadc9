#!/bin/sh
# image/data.sh -- read and write the appliance's data partition inside a
# raw disk image, without mounting anything (debugfs from e2fsprogs).
#
#   image/data.sh put   IMAGE FILE [NAME]   copy FILE to /NAME on the data
#                                           partition (NAME: basename of FILE)
#   image/data.sh get   IMAGE NAME          print /NAME from the data partition
#   image/data.sh ls    IMAGE [DIR]         list a directory of it
#   image/data.sh queue IMAGE DEST          copy the queue directory to DEST,
#                                           for `moat queue list` on this machine
#
# IMAGE is a raw disk (moat.img) or a block device holding one (/dev/sdX,
# an LVM logical volume, a ZFS volume: what a hypervisor gives a VM), or
# the data partition alone (ext4 labelled moat-data).  For qcow2, convert
# first:
#   qemu-img convert -O raw moat.qcow2 moat.img   (and back with -O qcow2)
# Never on a disk a running appliance is using.  After an unclean stop
# the journal is not yet replayed: boot once (the kernel replays it when it
# mounts), or read the partition after e2fsck.
#
# put moat.conf checks the file with `moat check` first when a moat binary
# is found ($MOAT, or build/moat beside this script), with the files it
# names under /data/ taken from the partition: put those first.  A config
# whose queue is not under /data is refused (the appliance would refuse it
# at boot: the root file system is in memory).
# Exit: 0 done, 1 failure, 100 usage.
set -eu

PART=${MOAT_DATA_PART:-moat-data}
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 100; }
die() { echo "image/data.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || usage
cmd=$1 img=$2
shift 2
[ -f "$img" ] || [ -b "$img" ] || die "$img: no such file or block device"
command -v debugfs >/dev/null || die "debugfs not found (Debian: apt-get install e2fsprogs)"
command -v sfdisk >/dev/null || die "sfdisk not found (Debian: apt-get install fdisk)"

# The byte offset of the partition named $PART, from the GPT; or 0 when
# IMAGE is that file system itself (its ext4 volume name).
start=$(sfdisk -d "$img" 2>/dev/null | sed -n "s/.*start= *\([0-9]*\),.*name=\"$PART\".*/\1/p" | head -n1)
if [ -z "$start" ]; then
	dumpe2fs -h "$img" 2>/dev/null | grep -q "^Filesystem volume name: *$PART\$" \
		|| die "$img: no GPT partition named $PART, and not such a file system itself"
	start=0
fi
fs="$img?offset=$((start * 512))"

# moat check FILE as the appliance would see it: the files it names under
# /data/ (TLS key, users...) are taken from the partition, so put those
# first.  Messages name the paths as the appliance does.
check_conf() {
	t=$(mktemp -d "${TMPDIR:-/tmp}/data.sh.XXXXXX")
	for p in $(grep -o '/data/[^[:space:]#]*' "$2" | sort -u); do
		mkdir -p "$t$(dirname "$p")"
		debugfs -R "dump ${p#/data} $t$p" "$fs" >/dev/null 2>&1 || true
		[ -s "$t$p" ] || rm -f "$t$p"
	done
	sed "s|/data/|$t/data/|g" "$2" >"$t/moat.conf"
	if ! "$1" check -c "$t/moat.conf" >"$t/out" 2>"$t/err"; then
		sed -e "s|$t/moat.conf|$2|g" -e "s|$t/data/|/data/|g" "$t/err" >&2
		rm -rf "$t"
		die "$2: moat check failed (a file it names must be on the partition first)"
	fi
	queue_on_data "$(awk '$1 == "queue" { print $2; exit }' "$t/out" | sed "s|^$t/data/|/data/|")" "$2"
	rm -rf "$t"
}

# The queue must be on the data partition: the appliance refuses a config
# whose queue would live in memory, so this does too.
queue_on_data() {
	case $1 in
	/data/?*) ;;
	*)	rm -rf "${t:-}"
		die "$2: queue ${1:-/var/lib/moat/queue (the default)} is not under /data: the appliance refuses it; say \"queue /data/queue\"" ;;
	esac
}

case $cmd in
put)
	[ $# -ge 1 ] || usage
	file=$1 name=${2:-$(basename "$1")}
	[ -f "$file" ] || die "$file: no such file"
	case $name in */*|..|.|'') die "NAME is a file name at the top of the partition" ;; esac
	if [ "$name" = moat.conf ]; then
		moat=${MOAT:-$(dirname "$0")/../build/moat}
		if [ -x "$moat" ]; then
			check_conf "$moat" "$file"
		else
			queue_on_data "$(awk '$1 == "queue" { q = $2 } END { print q }' "$file")" "$file"
		fi
	fi
	printf 'rm /%s\nwrite %s /%s\nsif /%s uid 0\nsif /%s gid 0\nsif /%s mode 0100600\n' \
		"$name" "$file" "$name" "$name" "$name" "$name" \
		| debugfs -w -f - "$fs" >/dev/null 2>"${TMPDIR:-/tmp}/data.sh.$$" || true
	# "rm" of a file that is not there complains; anything else is an error.
	if grep -v -e '^debugfs [0-9]' -e 'File not found by ext2_lookup' "${TMPDIR:-/tmp}/data.sh.$$" | grep -q .; then
		cat "${TMPDIR:-/tmp}/data.sh.$$" >&2
		rm -f "${TMPDIR:-/tmp}/data.sh.$$"
		die "cannot write /$name"
	fi
	rm -f "${TMPDIR:-/tmp}/data.sh.$$"
	echo "image/data.sh: wrote /$name on $PART of $img"
	;;
get)
	[ $# -eq 1 ] || usage
	debugfs -R "cat /$1" "$fs" 2>/dev/null
	;;
ls)
	debugfs -R "ls -l /${1:-}" "$fs" 2>/dev/null
	;;
queue)
	[ $# -eq 1 ] || usage
	mkdir -p "$1"
	debugfs -R "rdump /queue $1" "$fs" 2>/dev/null
	[ -f "$1/queue/data.mdb" ] || die "no queue on $PART of $img"
	echo "image/data.sh: queue copied to $1/queue"
	;;
*) usage ;;
esac
