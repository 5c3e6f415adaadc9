#!/bin/sh
# image/measure.sh -- the appliance's figures, for `make bench` (never a
# test): sizes, and seconds from starting qemu to the 220 greeting through
# the port forward (a tap device when run as root), under software
# emulation (TCG) as here, once with SeaBIOS and once with OVMF.  Builds the
# image first if needed.
#
#   BUILD=build RUNS=3 sh image/measure.sh
#
# Prints one "name value" line per figure (sizes in bytes; times in
# seconds, the median of RUNS boots, then each boot in brackets):
#   image-qcow2-bytes         the compressed qcow2 disk (the download)
#   image-raw-xz-bytes        the raw disk, xz -9 (the other download)
#   image-raw-bytes           the raw disk as it boots (sparse; its size)
#   kernel-bytes              the kernel the boot loaders load (slot a)
#   kernel-wrapper            MANIFEST's: lz4 (image/rewrap.sh) or debian-xz
#   debian-vmlinuz-bytes      Debian's vmlinuz, the same kernel in XZ
#   initramfs-bytes           moat + kernel modules, zstd
#   boot-partition-used-bytes what the FAT boot partition holds
#   oci-archive-bytes         moat-oci.tar
#   boot-network              tap (as root) or user: what the boots below use
#   boot-to-220-bios-seconds  SeaBIOS -> syslinux -> kernel -> moat init -> 220
#   boot-to-220-uefi-seconds  OVMF -> systemd-boot -> kernel -> moat init -> 220
# and for each, the median boot's breakdown (image/qemu.py breakdown()):
#   boot-FW-firmware-loader-seconds  qemu start to the kernel's clock starting:
#                                    firmware, boot loader, the kernel unpacking
#                                    itself
#   boot-FW-kernel-to-init-seconds   the kernel's own start, to running /init
#   boot-FW-init-to-220-seconds      moat as process 1 to the 220 through the forward
#   boot-FW-qemu-cpu-seconds         the CPU time qemu used until then: a figure
#                                    other jobs on the machine disturb less
set -eu
BUILD=${BUILD:-build}
RUNS=${RUNS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
I=$BUILD/image
make -s image BUILD="$BUILD" >&2

size() { stat -c %s "$1"; }
echo "image-qcow2-bytes $(size "$I/moat.qcow2")"
echo "image-raw-xz-bytes $(xz -T1 -9 -c "$I/moat.img" | wc -c)"
echo "image-raw-bytes $(size "$I/moat.img")"
kver=$(awk '$1 == "kernel" {print $2}' "$I/MANIFEST")
export MTOOLS_SKIP_CHECK=1
echo "kernel-bytes $(mtype -i "$I/moat-boot.img" ::/moat/a/linux | wc -c)"
echo "kernel-wrapper $(sed -n 's/^kernel-wrapper //p' "$I/MANIFEST")"
echo "debian-vmlinuz-bytes $(size "$BUILD/kernel/root/boot/vmlinuz-$kver")"
echo "initramfs-bytes $(mtype -i "$I/moat-boot.img" ::/moat/a/initrd | wc -c)"
# The files on the boot partition ("26 files  9 936 553 bytes").
echo "boot-partition-used-bytes $(mdir -/ -a -i "$I/moat-boot.img" :: | awk '
	/Total files listed/ {t = 1; next}
	t && / files / {sub(/^ *[0-9]+ files +/, ""); sub(/ bytes.*/, ""); gsub(/ /, ""); print; exit}')"
echo "oci-archive-bytes $(size "$I/moat-oci.tar")"

# A configured copy: a static address, nothing else.  As root, the NIC is
# on a tap device in a network namespace of the measurement's own (qemu's
# user network adds a second or two of its own before the first
# connections through its forward get through); else qemu's user network.
W=$(mktemp -d "${TMPDIR:-/tmp}/moat-measure.XXXXXX")
trap 'rm -rf "$W"' EXIT
cp --sparse=always "$I/moat.img" "$W/disk.img"
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	net=tap tap=--tap address=10.0.3.50/24 gateway=10.0.3.1
else
	net=user tap= address=10.0.2.15/24 gateway=10.0.2.2
fi
echo "boot-network $net"
cat >"$W/moat.conf" <<CONF
hostname mx.test
domain example.test
queue /data/queue
queue-max-bytes 32M
queue-max-messages 1000
max-message-size 10M
net-address $address
net-gateway $gateway
CONF
MOAT="$BUILD/moat" sh "$HERE/data.sh" put "$W/disk.img" "$W/moat.conf" moat.conf >/dev/null
# Each boot prints "total firmware+loader kernel-to-init init-to-220 cpu"
# (image/qemu.py --time); the median boot by total is reported whole.
for fw in bios uefi; do
	runs=
	for _ in $(seq "$RUNS"); do
		runs="$runs$(/usr/bin/python3 "$HERE/qemu.py" --time "$fw" "$W/disk.img" "$W" $tap)
"
	done
	med=$(printf '%s' "$runs" | grep . | sort -n | awk '{v[NR] = $0} END {print v[int((NR + 1) / 2)]}')
	all=$(printf '%s' "$runs" | awk '{printf "%s%s", sep, $1; sep = " "}')
	set -- $med
	echo "boot-to-220-$fw-seconds $1 [$all]"
	echo "boot-$fw-firmware-loader-seconds $2"
	echo "boot-$fw-kernel-to-init-seconds $3"
	echo "boot-$fw-init-to-220-seconds $4"
	echo "boot-$fw-qemu-cpu-seconds $5"
done
