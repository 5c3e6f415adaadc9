#!/bin/sh
# .ci/deps.sh -- install what the build and tests need, and build the two
# third-party libraries (BearSSL, LMDB) with musl-gcc from Debian's source
# packages, cached under build/deps.  Called by the Makefile; idempotent.
#
#   .ci/deps.sh tools     apt packages for building and testing
#   .ci/deps.sh libs      build/deps/{lib,include} for the musl build
#
# Debian's libbearssl.a and liblmdb.a are glibc builds (__memcpy_chk,
# __fprintf_chk) and do not link with musl, hence the source build.
set -eu

BUILD=${BUILD:-build}
DEPS=$BUILD/deps

# Packages: build (musl, sources), glibc+ASan build, tests.
PKGS="musl-tools dpkg-dev gcc make clang libclang-rt-14-dev linux-libc-dev
      liblmdb-dev libbearssl-dev lmdb-utils
      swaks libio-socket-inet6-perl libnet-ssleay-perl whois curl openssl python3 file iproute2 e2fsprogs
      python3-aiosmtpd dnsmasq-base util-linux python3-prometheus-client
      qemu-system-x86 qemu-utils ovmf syslinux syslinux-common mtools dosfstools
      fdisk systemd-boot-efi binutils cpio kmod zstd xz-utils umoci runc oci-image-tool
      genisoimage"

need_pkgs() {
	missing=
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$missing $p"
	done
	echo "$missing"
}

apt_updated=
# Another apt (a fresh VM's first-boot updates, a second checkout's make)
# may hold the dpkg lock: wait for it, up to APT_LOCK_WAIT seconds.
APT="apt-get -o DPkg::Lock::Timeout=${APT_LOCK_WAIT:-600}"
apt_update() {
	[ -n "$apt_updated" ] && return 0
	$APT update -qq
	apt_updated=1
}

tools() {
	missing=$(need_pkgs)
	[ -z "$missing" ] && return 0
	echo "deps: installing:$missing"
	apt_update
	DEBIAN_FRONTEND=noninteractive $APT install -y -qq --no-install-recommends $missing
}

# Enable deb-src by rewriting the machine's own source entries in place: the
# deb822 "Types: deb" line gains deb-src; a one-line "deb URI ..." entry
# gets a twin "deb-src URI ...".  No mirror host is written by us.
enable_deb_src() {
	changed=
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		if grep -q '^Types: deb$' "$f"; then
			sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"; changed=1
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		if grep -q '^deb ' "$f" && ! grep -q '^deb-src ' "$f"; then
			sed -i 's/^deb \(.*\)$/deb \1\ndeb-src \1/' "$f"; changed=1
		fi
	done
	if [ -n "$changed" ] || ! apt-cache showsrc lmdb >/dev/null 2>&1 \
	   || [ -z "$(apt-cache showsrc lmdb 2>/dev/null)" ]; then
		apt_updated=; apt_update
	fi
}

fetch_src() { # package -> $DEPS/src/<package>
	pkg=$1
	[ -d "$DEPS/src/$pkg" ] && return 0
	mkdir -p "$DEPS/dl" "$DEPS/src"
	if ! ls "$DEPS"/dl/"${pkg}"_*.dsc >/dev/null 2>&1; then
		enable_deb_src
		(cd "$DEPS/dl" && $APT source --download-only -qq "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	fi
	dsc=$(ls "$DEPS"/dl/"${pkg}"_*.dsc | head -n1)
	dpkg-source --no-check -x "$dsc" "$DEPS/src/$pkg" >/dev/null
}

libs() {
	tools
	mkdir -p "$DEPS/lib" "$DEPS/include"
	CC=musl-gcc
	if [ ! -f "$DEPS/lib/libbearssl.a" ]; then
		fetch_src bearssl
		obj=$DEPS/obj/bearssl; mkdir -p "$obj"
		# BearSSL's own Makefile builds a shared library and tools too; we
		# need only the static library, so compile src/ directly.
		find "$DEPS/src/bearssl/src" -name '*.c' | sort | while read -r c; do
			o=$obj/$(echo "${c#$DEPS/src/bearssl/src/}" | tr / _ | sed 's/\.c$/.o/')
			echo "$c $o"
		done | xargs -P "$(nproc)" -n 2 sh -c "$CC -O2 -fno-strict-aliasing -I$DEPS/src/bearssl/inc -I$DEPS/src/bearssl/src -c \$0 -o \$1"
		ar rcs "$DEPS/lib/libbearssl.a.tmp" "$obj"/*.o
		mv "$DEPS/lib/libbearssl.a.tmp" "$DEPS/lib/libbearssl.a"
		cp "$DEPS"/src/bearssl/inc/*.h "$DEPS/include/"
	fi
	if [ ! -f "$DEPS/lib/liblmdb.a" ]; then
		fetch_src lmdb
		l=$DEPS/src/lmdb/libraries/liblmdb
		obj=$DEPS/obj/lmdb; mkdir -p "$obj"
		$CC -O2 -pthread -c "$l/mdb.c" -o "$obj/mdb.o"
		$CC -O2 -pthread -c "$l/midl.c" -o "$obj/midl.o"
		ar rcs "$DEPS/lib/liblmdb.a.tmp" "$obj/mdb.o" "$obj/midl.o"
		mv "$DEPS/lib/liblmdb.a.tmp" "$DEPS/lib/liblmdb.a"
		cp "$l/lmdb.h" "$DEPS/include/"
	fi
	# Linux UAPI headers (seccomp, landlock, ...) are not on musl's include
	# path: copy them from linux-libc-dev into the build tree.
	if [ ! -d "$DEPS/include/linux" ]; then
		cp -r /usr/include/linux "$DEPS/include/linux.tmp" && mv "$DEPS/include/linux.tmp" "$DEPS/include/linux"
		cp -r /usr/include/asm-generic "$DEPS/include/asm-generic"
		cp -r /usr/include/"$(dpkg-architecture -qDEB_HOST_MULTIARCH)"/asm "$DEPS/include/asm"
	fi
}

case "${1:-}" in
tools) tools ;;
libs)  libs ;;
*) echo "usage: $0 tools|libs" >&2; exit 100 ;;
esac
