#!/bin/sh
# image/build.sh -- build the moat appliance disk and the container image.
#
#   BUILD=build sh image/build.sh        (what "make image" runs)
#
# Writes under $BUILD/image/:
#   moat.img        raw GPT disk: BIOS (syslinux) and UEFI (systemd-boot) boot
#                   partition "moat-boot" + ext4 data partition "moat-data"
#   moat.qcow2      the same disk as compressed qcow2
#   moat-boot.img   the boot partition alone: an upgrade (image/upgrade.sh,
#                   moat upgrade)
#   moat-oci.tar    OCI image archive (image/oci.py)
#   MANIFEST        kernel version, layout, sha256 of every artifact
#
# No loop devices, no mounts, no root-only tricks: sfdisk on a file, mkfs.vfat
# -C + mtools, syslinux's mtools installer, mkfs.ext4 -d, dd to assemble.
# Reproducible: every timestamp is SOURCE_DATE_EPOCH, every UUID, volume ID
# and label is fixed, the cpio is sorted and its inode numbers zeroed.
# The same inputs (moat binary, kernel package, files in image/) give the
# same bytes; MANIFEST lists the digests to compare.
#
# Settings (environment):
#   BUILD              build directory (default build)
#   IMAGE_OUT          where the artifacts go (default $BUILD/image)
#   MOAT               the static moat binary (default $BUILD/moat)
#   SOURCE_DATE_EPOCH  timestamp for every file (default: 1700000000)
#   DATA_MB            data partition size in MiB (default 1024)
#   MOAT_CONF          a moat.conf to put on the data partition (default: none;
#                      the appliance then says which file to create)
#   KERNEL_DEB         a linux-image-*.deb to use instead of Debian's current
#                      linux-image-amd64 (the newest at each build, downloaded
#                      once into $BUILD/kernel)
#   KERNEL_LISTS_AGE   refresh the apt lists first when older than this many
#                      seconds (default 3600)
#   CA_BUNDLE          the CA bundle put at /etc/ssl/certs/ca-certificates.crt
#                      in the initramfs and the container (tls-ca-file's
#                      default: MTA-STS, tls verify); default this machine's,
#                      from Debian's ca-certificates (MANIFEST: its version)
#   KERNEL_WRAP        lz4 (default): the kernel in an LZ4 wrapper built from
#                      Debian's linux-source of the same version (image/
#                      rewrap.sh: 3 s less to boot under emulation), or debian:
#                      Debian's vmlinuz as it is (XZ).  Without the source
#                      package (offline, or not of the kernel's version), or
#                      if a check of rewrap.sh fails, the build keeps Debian's
#                      vmlinuz, says why, and MANIFEST's kernel-wrapper line
#                      records it.
set -eu

BUILD=${BUILD:-build}
MOAT=${MOAT:-$BUILD/moat}
OUT=${IMAGE_OUT:-$BUILD/image}
KDIR=$BUILD/kernel
DATA_MB=${DATA_MB:-1024}
BOOT_MB=64
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export SOURCE_DATE_EPOCH
HERE=$(cd "$(dirname "$0")" && pwd)
W=$OUT/work
. "$HERE/slots.sh"

# Fixed identities: the disk, its partitions, the file systems.  The init
# finds the data partition by its GPT name, never by these.
DISK_GUID=6d6f6174-0000-4000-8000-000000000001
BOOT_GUID=6d6f6174-0000-4000-8000-000000000002
DATA_GUID=6d6f6174-0000-4000-8000-000000000003
EXT4_UUID=6d6f6174-0000-4000-8000-000000000004
FAT_VOLID=6d6f6174
ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
LINUX_TYPE=0FC63DAF-8483-4772-8E79-3D69D8477DE4

say() { echo "image: $*"; }
die() { echo "image: $*" >&2; exit 1; }

[ -x "$MOAT" ] || die "$MOAT: no such binary (run make first)"
for t in sfdisk mkfs.vfat mcopy mmd syslinux mkfs.ext4 cpio depmod modprobe qemu-img zstd; do
	command -v "$t" >/dev/null || die "$t not found (run make tools)"
done

# ---------------------------------------------------------------- kernel
# Debian's kernel package, extracted into $KDIR/root (never installed on
# this machine), with depmod run there so that modprobe can order modules.
# Which package: what linux-image-amd64 depends on today (its newest
# version; the apt lists are refreshed first when they are older than
# KERNEL_LISTS_AGE seconds), so that a kernel security update reaches the
# next image.  It is downloaded once into $KDIR; older ones are removed.

# apt-get update when the lists are older than KERNEL_LISTS_AGE (default
# an hour).  Offline, or with apt busy, the lists are used as they are.
lists_refresh() {
	age=${KERNEL_LISTS_AGE:-3600}
	fresh=$(find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -newermt "@$(( $(date +%s) - age ))" 2>/dev/null | head -n1)
	[ -n "$fresh" ] && return 0
	say "refreshing the apt lists (older than ${age}s)"
	apt-get -o DPkg::Lock::Timeout=60 update -qq >/dev/null 2>&1 \
		|| say "apt-get update failed: taking the kernel the lists name as they are"
}

# deb_fetch PACKAGE VERSION GLOB: the path of PACKAGE's .deb at VERSION in
# $KDIR, downloaded if it is not there (other versions, the files of $KDIR
# matching GLOB, are removed: the newest is the one to use); nothing when
# apt cannot get it.
deb_fetch() {
	found=
	for d in "$KDIR"/$3; do
		[ -f "$d" ] || continue
		if [ "$(dpkg-deb -f "$d" Package)" = "$1" ] && [ "$(dpkg-deb -f "$d" Version)" = "$2" ]; then
			found=$d
		else
			rm -f "$d"
		fi
	done
	if [ -z "$found" ]; then
		say "downloading $1 $2" >&2
		(cd "$KDIR" && apt-get download -qq "$1=$2" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
		found=$(ls "$KDIR"/"$1"_*.deb 2>/dev/null | head -n1)
	fi
	echo "$found"
}

kernel_fetch() {
	mkdir -p "$KDIR"
	if [ -n "${KERNEL_DEB:-}" ]; then
		deb=$KERNEL_DEB
	else
		lists_refresh
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
		ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
		[ -n "$pkg" ] && [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "cannot resolve linux-image-amd64"
		deb=$(deb_fetch "$pkg" "$ver" 'linux-image-*.deb')
		[ -n "$deb" ] || die "apt-get download $pkg=$ver failed"
	fi
	stamp=$KDIR/root/.from
	if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(basename "$deb")" ]; then
		say "extracting $(basename "$deb")"
		rm -rf "$KDIR/root"
		mkdir -p "$KDIR/root"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR/root" ./boot ./lib/modules
		kv=$(ls "$KDIR/root/lib/modules" | head -n1)
		depmod -b "$KDIR/root" "$kv"
		basename "$deb" >"$stamp"
	fi
	KVER=$(ls "$KDIR/root/lib/modules" | head -n1)
	KDEB=$(basename "$deb")
	KPKG=$(dpkg-deb -f "$deb" Package)
	KPKGVER=$(dpkg-deb -f "$deb" Version)
	VMLINUZ=$KDIR/root/boot/vmlinuz-$KVER
	[ -f "$VMLINUZ" ] || die "no kernel in $deb"
}

# The kernel the boot loaders load: BOOT_KERNEL, and KWRAP for MANIFEST.
# Debian's vmlinuz unpacks its kernel with XZ, 3 s of a 6 s boot under
# emulation; image/rewrap.sh puts the same kernel, byte for byte, in a
# wrapper that unpacks with LZ4, built from the linux-source package of the
# kernel package's own version (downloaded once into $KDIR, about 140 MB;
# the build takes a minute and its result is kept, keyed by both packages
# and rewrap.sh).
kernel_wrap() {
	BOOT_KERNEL=$VMLINUZ
	case ${KERNEL_WRAP:-lz4} in
	debian) KWRAP="debian-xz (KERNEL_WRAP=debian)"; return 0 ;;
	lz4) ;;
	*) die "KERNEL_WRAP=$KERNEL_WRAP: lz4 or debian" ;;
	esac
	src=linux-source-$(echo "$KVER" | cut -d. -f1,2)
	sdeb=$(deb_fetch "$src" "$KPKGVER" 'linux-source-*.deb')
	if [ -z "$sdeb" ]; then
		KWRAP="debian-xz ($src $KPKGVER not available)"
		say "kernel: keeping Debian's vmlinuz (XZ): $src $KPKGVER not available"
		return 0
	fi
	out=$KDIR/wrap/vmlinuz-$KVER
	key="$KDEB $(basename "$sdeb") $(sha256sum "$HERE/rewrap.sh" | cut -c1-64)"
	if [ ! -f "$out" ] || [ "$(cat "$out.from" 2>/dev/null)" != "$key" ]; then
		say "kernel: building its LZ4 wrapper from $(basename "$sdeb")"
		mkdir -p "$KDIR/wrap"
		rm -f "$out.from"
		if ! sh "$HERE/rewrap.sh" "$VMLINUZ" "$KDIR/root/boot/config-$KVER" "$sdeb" "$out" "$W/rewrap" 2>"$W/rewrap.err"; then
			reason=$(tail -n 1 "$W/rewrap.err" | sed 's/^rewrap: //')
			cat "$W/rewrap.err" >&2
			rm -rf "$W/rewrap"
			KWRAP="debian-xz (rewrap.sh: $reason)"
			say "kernel: keeping Debian's vmlinuz (XZ): $reason"
			return 0
		fi
		echo "$key" >"$out.from"
	fi
	BOOT_KERNEL=$out
	KWRAP="lz4 $src $KPKGVER"
}

# The modules of image/modules and everything they need (softdeps too),
# each once, in image/modules' order: its order of preference.
module_files() {
	grep -v '^[[:space:]]*\(#\|$\)' "$HERE/modules" | while read -r m _; do
		modprobe -d "$KDIR/root" -S "$KVER" --show-depends "$m" \
			|| die "module $m not in $KDEB"
	done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

# NAME of a module file: its base name, '-' as '_' (modules.alias's spelling).
mod_name() { basename "$1" .ko | tr - _; }

# /lib/modules/modules.index (policy/modidx.h): a "module NAME DEP..." line
# for each module (what modprobe would load first, in order) and the
# "alias PATTERN NAME" lines of the kernel's modules.alias for them, which
# moat's init matches against the devices it finds.
module_index() {
	echo "# moat module index (policy/modidx.h), kernel $KVER"
	while read -r ko; do
		name=$(mod_name "$ko")
		deps=$(modprobe -d "$KDIR/root" -S "$KVER" --show-depends "$name" \
			| awk -v self="$ko" '$1 == "insmod" && $2 != self && !seen[$2]++ { print $2 }' \
			| while read -r d; do mod_name "$d"; done | tr '\n' ' ')
		echo "module $name $deps" | sed 's/ *$//'
	done <"$W/modules.order"
	awk 'NR == FNR { want[$0] = 1; next } $1 == "alias" && ($3 in want) { print }' \
		"$W/modules.names" "$KDIR/root/lib/modules/$KVER/modules.alias"
}

# ---------------------------------------------------------------- initramfs
# /init is moat (it runs its init role as PID 1); /lib/modules holds the
# modules as NAME.ko and their index; /etc/ssl/certs the CA bundle.
# Nothing else: no shell, no libc, no tools.
build_initramfs() {
	r=$W/initramfs
	mkdir -p "$r/dev" "$r/proc" "$r/sys" "$r/data" "$r/etc/ssl/certs" "$r/lib/modules"
	cp "$CA_BUNDLE" "$r/etc/ssl/certs/ca-certificates.crt"
	cp "$MOAT" "$r/init"
	strip --strip-all "$r/init"
	chmod 0755 "$r/init"
	module_files >"$W/modules.order"
	[ -s "$W/modules.order" ] || die "no modules"
	while read -r ko; do
		cp "$ko" "$r/lib/modules/$(mod_name "$ko").ko"
		mod_name "$ko"
	done <"$W/modules.order" >"$W/modules.names"
	module_index >"$r/lib/modules/modules.index"
	chmod -R u=rwX,go=rX "$r"
	find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
		| zstd -q -19 --no-progress >"$W/initrd"
}

# ---------------------------------------------------------------- boot
# FAT32 (the UEFI system partition) holding two boot slots, a and b
# (mta/init/slots.h); an image has slot a, an upgrade writes the other.
# Both boot loaders read them:
#   BIOS:  gptmbr.bin (MBR) -> syslinux VBR + ldlinux.sys -> /syslinux/syslinux.cfg
#   UEFI:  \EFI\BOOT\BOOTX64.EFI (systemd-boot) -> /loader/entries/moat-a.conf
build_boot() {
	cmdline=$(grep -v '^[[:space:]]*\(#\|$\)' "$HERE/cmdline" | tr '\n' ' ' | sed 's/ *$//')
	b=$W/bootfiles
	mkdir -p "$b"
	slot_syslinux a "$cmdline" >"$b/syslinux.cfg"
	printf 'timeout 0\neditor no\n' >"$b/loader.conf"
	slot_entry a 1 0 "$cmdline" >"$b/moat-a.conf"
	printf '%s\n' "$cmdline" >"$b/cmdline"
	cp "$BOOT_KERNEL" "$b/linux"
	cp "$W/initrd" "$b/initrd"
	cp /usr/lib/systemd/boot/efi/systemd-bootx64.efi "$b/BOOTX64.EFI"
	find "$b" -exec touch -d "@$SOURCE_DATE_EPOCH" {} +

	f=$W/boot.fat
	rm -f "$f"
	mkfs.vfat -C -F 32 -S 512 -s 1 -h 2048 -i "$FAT_VOLID" -n MOAT-BOOT --invariant \
		"$f" $((BOOT_MB * 1024)) >/dev/null
	export MTOOLS_SKIP_CHECK=1
	mmd -i "$f" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/moat ::/moat/a ::/moat/b ::/syslinux
	mcopy -m -i "$f" "$b/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
	mcopy -m -i "$f" "$b/loader.conf" ::/loader/loader.conf
	mcopy -m -i "$f" "$b/moat-a.conf" ::/loader/entries/moat-a.conf
	mcopy -m -i "$f" "$b/linux" ::/moat/a/linux
	mcopy -m -i "$f" "$b/initrd" ::/moat/a/initrd
	mcopy -m -i "$f" "$b/cmdline" ::/moat/a/cmdline
	mcopy -m -i "$f" "$b/syslinux.cfg" ::/syslinux/syslinux.cfg
	syslinux --install --directory /syslinux "$f"
}

# ---------------------------------------------------------------- data
# ext4 with a journal (an unclean stop is replayed at the next mount).
# It holds moat.conf (if MOAT_CONF is given) and an example to copy.
build_data() {
	d=$W/data
	mkdir -p "$d/queue"
	chmod 0700 "$d/queue"
	cp "$HERE/moat.conf.example" "$d/moat.conf.example"
	if [ -n "${MOAT_CONF:-}" ]; then
		"$MOAT" check -c "$MOAT_CONF" >/dev/null || die "MOAT_CONF $MOAT_CONF is invalid"
		cp "$MOAT_CONF" "$d/moat.conf"
	fi
	find "$d" -exec touch -d "@$SOURCE_DATE_EPOCH" {} +
	rm -f "$W/data.ext4"
	E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH MKE2FS_CONFIG=$HERE/mke2fs.conf \
		mkfs.ext4 -q -F -t ext4 -T appliance -L moat-data -U "$EXT4_UUID" \
		-E "hash_seed=$EXT4_UUID,root_owner=0:0,lazy_itable_init=0,nodiscard" \
		-d "$d" "$W/data.ext4" "${DATA_MB}M" >/dev/null
	# mkfs.ext4 -d copies each file's ctime, which touch cannot set: set it.
	(cd "$d" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||') | while read -r p; do
		echo "set_inode_field $p ctime @$SOURCE_DATE_EPOCH"
	done >"$W/data.debugfs"
	E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH debugfs -w -f "$W/data.debugfs" "$W/data.ext4" >/dev/null 2>"$W/debugfs.err" \
		|| { cat "$W/debugfs.err" >&2; die "debugfs failed"; }
}

# ---------------------------------------------------------------- disk
assemble() {
	img=$W/moat.img
	boot_start=2048
	boot_size=$((BOOT_MB * 2048))
	data_start=$((boot_start + boot_size))
	data_size=$((DATA_MB * 2048))
	total=$(( (data_start + data_size + 2048) * 512 ))
	rm -f "$img"
	truncate -s "$total" "$img"
	sfdisk -q --no-reread --no-tell-kernel "$img" <<EOF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=$boot_start, size=$boot_size, type=$ESP_TYPE, uuid=$BOOT_GUID, name="moat-boot", attrs="LegacyBIOSBootable"
start=$data_start, size=$data_size, type=$LINUX_TYPE, uuid=$DATA_GUID, name="moat-data"
EOF
	# The MBR's boot code (440 bytes; the protective partition table stays).
	dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
	# Both partitions start on a MiB boundary: copy in MiB blocks, leaving
	# the all-zero ones as holes.
	dd if="$W/boot.fat" of="$img" bs=1M seek=$((boot_start / 2048)) conv=notrunc,sparse status=none
	dd if="$W/data.ext4" of="$img" bs=1M seek=$((data_start / 2048)) conv=notrunc,sparse status=none
	DATA_OFFSET=$((data_start * 512))
}

CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
grep -q -- '-----BEGIN CERTIFICATE-----' "$CA_BUNDLE" 2>/dev/null || die "$CA_BUNDLE: no CA bundle (make image-tools)"
CA_FROM=$(dpkg-query -W -f='ca-certificates ${Version}' ca-certificates 2>/dev/null || echo unknown)
[ "$CA_BUNDLE" = /etc/ssl/certs/ca-certificates.crt ] || CA_FROM="file $CA_BUNDLE"
kernel_fetch
rm -rf "$W"
mkdir -p "$W"
kernel_wrap
say "kernel $KVER ($KDEB), wrapper $KWRAP"
build_initramfs
build_boot
build_data
assemble
qemu-img convert -q -c -O qcow2 "$W/moat.img" "$W/moat.qcow2"
strip --strip-all -o "$W/moat.stripped" "$MOAT"
/usr/bin/python3 "$HERE/oci.py" "$W/moat.stripped" "$CA_BUNDLE" "$W/moat-oci.tar"

mv "$W/boot.fat" "$W/moat-boot.img"
{
	echo "kernel $KVER $KDEB"
	echo "kernel-package $KPKG $KPKGVER"
	echo "kernel-wrapper $KWRAP"
	echo "ca-bundle $CA_FROM $(sha256sum "$CA_BUNDLE" | cut -c1-64)"
	echo "source-date-epoch $SOURCE_DATE_EPOCH"
	echo "boot-partition moat-boot offset $((2048 * 512)) size $((BOOT_MB * 1048576))"
	echo "data-partition moat-data offset $DATA_OFFSET size $((DATA_MB * 1048576))"
	echo "modules $(tr '\n' ' ' <"$W/modules.names" | sed 's/ *$//')"
	# Python's sha256 (OpenSSL) is ten times sha256sum's speed on a 1 GiB disk.
	(cd "$W" && /usr/bin/python3 -c 'import hashlib, sys
for n in sys.argv[1:]:
    with open(n, "rb") as f:
        print(hashlib.file_digest(f, "sha256").hexdigest() + "  " + n)' \
		moat.img moat.qcow2 moat-boot.img moat-oci.tar initrd)
} >"$W/MANIFEST"
# moat.img last: make takes it as the sign that everything is there.
for f in MANIFEST moat-boot.img moat.qcow2 moat-oci.tar moat.img; do
	mv "$W/$f" "$OUT/$f"
done
say "built $OUT/moat.img $OUT/moat.qcow2 $OUT/moat-oci.tar"
