#!/bin/sh
# image/rewrap.sh -- Debian's kernel, unchanged, in a wrapper that boots
# three seconds sooner under emulation.
#
#   sh image/rewrap.sh VMLINUZ CONFIG SOURCE_DEB OUT WORKDIR
#
# A bzImage is the kernel proper (vmlinux, and the table of its relocations)
# compressed, inside a small program of its own: the real-mode setup code,
# the EFI stub and the decompressor that unpacks the kernel before jumping
# to it.  Debian compresses with XZ, and under TCG the decompressor spends
# about 3 s unpacking 66 MB (sampled with qemu's monitor: the instruction
# pointer sits in the XZ decoder for 3 s of a 6 s boot, under SeaBIOS and
# under OVMF alike; docs/appliance.md "Boot time").  LZ4 unpacks the same
# bytes in a tenth of that.
#
# This script takes the kernel proper out of Debian's VMLINUZ byte for
# byte, and builds a new wrapper around it from the kernel's own source
# (SOURCE_DEB: Debian's linux-source package of the same version, the
# wrapper's C and assembly only: no kernel code is compiled), with Debian's
# CONFIG and one change, CONFIG_KERNEL_LZ4 for CONFIG_KERNEL_XZ.  The kernel
# that runs is the package's own; only its unpacking changes.  The version
# string and build identity are Debian's (KERNELRELEASE, KBUILD_BUILD_*), so
# the same inputs give the same bytes.
#
# Checks, each fatal (exit 1, the reason on stderr; image/build.sh then
# keeps Debian's VMLINUZ and says why):
#   - VMLINUZ is a bzImage (boot protocol 2.08 or later) with an XZ payload
#     whose length matches the size the kernel build appended;
#   - objcopy turns the vmlinux handed to the kernel's build back into the
#     exact bytes taken out of VMLINUZ;
#   - the configuration differs from Debian's only in the compression and in
#     what the build machine's tools decide (compiler text, pahole, the
#     module signing key: none of them reach the wrapper);
#   - the new bzImage's payload, unpacked with lz4, is byte for byte what
#     Debian's unpacks to, and its version string is Debian's.
# Exit 2: VMLINUZ's payload is not XZ (nothing to gain).
set -eu

[ $# -eq 5 ] || { echo "usage: rewrap.sh VMLINUZ CONFIG SOURCE_DEB OUT WORKDIR" >&2; exit 100; }
VMLINUZ=$1 CONFIG=$2 SRCDEB=$3 OUT=$4 W=$5
die() { echo "rewrap: $*" >&2; exit 1; }
for t in xz lz4 readelf objcopy make gcc flex bison bc dpkg-deb; do
	command -v "$t" >/dev/null || die "$t not found (make image-tools)"
done

# Little-endian unsigned integers of FILE: u8|u16|u32 FILE OFFSET.
u8() { od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' '; }
u16() { od -An -tu2 -j "$2" -N 2 --endian=little "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 --endian=little "$1" | tr -d ' '; }
# The NUL-terminated string at OFFSET of FILE.
cstr() { tail -c +"$(($2 + 1))" "$1" | head -c 256 | tr '\0' '\n' | head -n 1; }

# ---------------------------------------------------------------- the payload
# Boot protocol header (Documentation/x86/boot.rst): "HdrS" at 0x202, the
# version at 0x206, setup_sects at 0x1f1, payload_offset and payload_length
# at 0x248 (2.08+), both from the start of the protected-mode part.
hdr_check() { # BZIMAGE -> sets SETUP_SECTS PAYLOAD_AT PAYLOAD_LEN KERNEL_VERSION
	[ "$(od -An -c -j 514 -N 4 "$1" | tr -d ' ')" = HdrS ] || die "$1: not a bzImage (no HdrS)"
	[ "$(u16 "$1" 518)" -ge 520 ] || die "$1: boot protocol older than 2.08"
	SETUP_SECTS=$(u8 "$1" 497)
	[ "$SETUP_SECTS" -gt 0 ] || SETUP_SECTS=4
	PAYLOAD_AT=$(( (SETUP_SECTS + 1) * 512 + $(u32 "$1" 584) ))
	PAYLOAD_LEN=$(u32 "$1" 588)
	KERNEL_VERSION=$(cstr "$1" $(( $(u16 "$1" 526) + 512 )))
}

rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)   # the build runs in another directory
hdr_check "$VMLINUZ"
DEBIAN_VERSION=$KERNEL_VERSION
tail -c +"$((PAYLOAD_AT + 1))" "$VMLINUZ" | head -c "$PAYLOAD_LEN" >"$W/payload"
[ "$(od -An -tx1 -N 6 "$W/payload" | tr -d ' ')" = fd377a585a00 ] || {
	echo "rewrap: $VMLINUZ: the payload is not XZ" >&2; exit 2; }
# The payload is the XZ stream and then the unpacked size (u32).
want=$(u32 "$W/payload" $((PAYLOAD_LEN - 4)))
head -c $((PAYLOAD_LEN - 4)) "$W/payload" | xz -dc >"$W/vmlinux.bin.all" || die "$VMLINUZ: the XZ payload does not unpack"
[ "$(stat -c %s "$W/vmlinux.bin.all")" = "$want" ] || die "$VMLINUZ: unpacked $(stat -c %s "$W/vmlinux.bin.all") bytes, the header says $want"

# vmlinux.bin.all is vmlinux.bin (an ELF file: it ends with its section
# header table) followed by vmlinux.relocs.
shoff=$(readelf -hW "$W/vmlinux.bin.all" | awk -F: '/Start of section headers/ {print $2+0}')
shsz=$(readelf -hW "$W/vmlinux.bin.all" | awk -F: '/Size of section headers/ {print $2+0}')
shnum=$(readelf -hW "$W/vmlinux.bin.all" | awk -F: '/Number of section headers/ {print $2+0}')
elf=$((shoff + shsz * shnum))
head -c "$elf" "$W/vmlinux.bin.all" >"$W/vmlinux.bin"
tail -c +"$((elf + 1))" "$W/vmlinux.bin.all" >"$W/vmlinux.relocs"

# The wrapper's build reads four symbols of vmlinux (arch/x86/boot/
# compressed/Makefile, voffset.h): where the text, the read-only data and
# the bss start, and where the image ends (the page after .brk,
# arch/x86/kernel/vmlinux.lds.S).  Debian's vmlinux.bin has its sections
# but no symbols: give it these four, each relative to its section.
sections=$(readelf -SW "$W/vmlinux.bin" | sed 's/^ *\[ *[0-9]*\] *//')
# .brk's address (its low 32 bits: the shell's arithmetic is signed, and
# a page boundary depends on those alone) and size.
brk=$(echo "$sections" | awk '$1 == ".brk" {print "0x" substr($3, length($3) - 7), "0x" $5}')
[ -n "$brk" ] || die "vmlinux: no .brk section"
set -- $brk
brk_end=$(( ($1 + $2 + 4095) / 4096 * 4096 - $1 ))
SRC=$W/src
mkdir -p "$SRC"

# ---------------------------------------------------------------- the source
# The source tarball inside the .deb, unpacked (about 1.5 GB, removed at
# the end): the Kconfig files of the whole tree take part in the
# configuration, so all of it.
tarball=$(dpkg-deb -c "$SRCDEB" | awk '$6 ~ /^\.\/usr\/src\/linux-source-.*\.tar\.xz$/ {print $6; exit}')
[ -n "$tarball" ] || die "$SRCDEB: no source tarball"
dpkg-deb --fsys-tarfile "$SRCDEB" | tar -xO "$tarball" | tar -xJ -C "$SRC" --strip-components=1 \
	|| die "$SRCDEB: cannot unpack"
[ -f "$SRC/arch/x86/boot/compressed/Makefile" ] || die "$SRCDEB: no x86 boot code"

objcopy --add-symbol _text=.text:0,global --add-symbol __start_rodata=.rodata:0,global \
	--add-symbol __bss_start=.bss:0,global --add-symbol "_end=.brk:$brk_end,global" \
	"$W/vmlinux.bin" "$SRC/vmlinux"
objcopy -R .comment -S "$SRC/vmlinux" "$W/vmlinux.bin.again"
cmp -s "$W/vmlinux.bin" "$W/vmlinux.bin.again" || die "objcopy does not give back Debian's vmlinux.bin"

# ---------------------------------------------------------------- configure
cp "$CONFIG" "$SRC/.config"
"$SRC/scripts/config" --file "$SRC/.config" --disable KERNEL_XZ --enable KERNEL_LZ4
# Debian's kernel is built with gcc-12 (the config's CC_VERSION_TEXT).
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$CONFIG")
command -v "$cc" >/dev/null || cc=gcc
MAKEFLAGS= MAKELEVEL= make -s -C "$SRC" CC="$cc" olddefconfig >"$W/config.log" 2>&1 || { cat "$W/config.log" >&2; die "olddefconfig failed"; }
# What changed besides the compression: only what the tools here decide.
grep '^CONFIG_' "$CONFIG" | sort >"$W/config.debian"
grep '^CONFIG_' "$SRC/.config" | sort >"$W/config.wrap"
changes=$(diff "$W/config.debian" "$W/config.wrap" |
	sed -n 's/^[<>] \(CONFIG_[A-Z0-9_]*\)=.*/\1/p' | sort -u |
	grep -v -x -E 'CONFIG_(KERNEL_XZ|KERNEL_LZ4|CC_VERSION_TEXT|BUILD_SALT|PAHOLE_[A-Z0-9_]*|DEBUG_INFO_BTF_MODULES|MODULE_ALLOW_BTF_MISMATCH|MODULE_SIG_ALL|MODULE_SIG_KEY|SYSTEM_TRUSTED_KEYS)' || true)
[ -z "$changes" ] || die "the configuration would change beyond the compression: $(echo $changes)"

# ---------------------------------------------------------------- build
# Debian's identity, from its version string: "RELEASE (USER@HOST) #N
# FLAGS... TIMESTAMP", FLAGS being what the config makes (SMP PREEMPT_...).
release=${KERNEL_VERSION%% *}
byhost=$(echo "$KERNEL_VERSION" | sed -n 's/^[^ ]* (\([^)]*\)) #.*/\1/p')
num=$(echo "$KERNEL_VERSION" | sed -n 's/^[^)]*) #\([0-9]*\) .*/\1/p')
stamp=$(echo "$KERNEL_VERSION" | sed -n 's/^[^)]*) #[0-9]* \(SMP \)\{0,1\}\(PREEMPT_DYNAMIC \|PREEMPT_RT \|PREEMPT \)\{0,1\}//p')
[ -n "$byhost" ] && [ -n "$num" ] && [ -n "$stamp" ] || die "cannot read the version string: $KERNEL_VERSION"

# The relocation table is Debian's (the build would compute it from a
# vmlinux with its relocation sections, which the package does not carry).
printf '#!/bin/sh\n[ "$1" = --abs-relocs ] && exit 0\nexec cat "%s"\n' "$W/vmlinux.relocs" >"$W/relocs"
chmod +x "$W/relocs"
# The wrapper alone: what the kernel's arch/x86/Makefile would run for
# bzImage once vmlinux exists, and the generated files it needs.
cat >"$SRC/moat-wrap.mk" <<'EOF'
PHONY += moat-wrap
moat-wrap:
	$(Q)$(MAKE) $(build)=init include/generated/utsversion.h
	$(Q)$(MAKE) $(build)=arch/x86/kernel/cpu arch/x86/kernel/cpu/capflags.c
	$(Q)$(MAKE) $(build)=arch/x86/lib arch/x86/lib/inat-tables.c
	$(Q)$(MAKE) $(build)=drivers/firmware/efi/libstub
	$(Q)$(MAKE) $(build)=arch/x86/boot arch/x86/boot/bzImage
EOF
jobs=$(nproc 2>/dev/null || echo 2)
export KBUILD_BUILD_USER="${byhost%@*}" KBUILD_BUILD_HOST="${byhost#*@}" \
	KBUILD_BUILD_VERSION="$num" KBUILD_BUILD_TIMESTAMP="$stamp"
(
	unset MAKEFLAGS MAKELEVEL MFLAGS
	make -s -C "$SRC" -j"$jobs" CC="$cc" KERNELRELEASE="$release" prepare0 &&
	make -s -C "$SRC" -j"$jobs" CC="$cc" KERNELRELEASE="$release" -f Makefile -f moat-wrap.mk moat-wrap CMD_RELOCS="$W/relocs"
) >"$W/build.log" 2>&1 || { tail -n 30 "$W/build.log" >&2; die "the wrapper does not build"; }

# ---------------------------------------------------------------- check
new=$SRC/arch/x86/boot/bzImage
hdr_check "$new"
[ "$KERNEL_VERSION" = "$DEBIAN_VERSION" ] || die "the version string would be $KERNEL_VERSION"
tail -c +"$((PAYLOAD_AT + 1))" "$new" | head -c "$((PAYLOAD_LEN - 4))" | lz4 -dc >"$W/vmlinux.bin.lz4-check" 2>/dev/null \
	|| die "the new payload does not unpack with lz4"
cmp -s "$W/vmlinux.bin.all" "$W/vmlinux.bin.lz4-check" || die "the new payload is not Debian's kernel"
cp "$new" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$W"
