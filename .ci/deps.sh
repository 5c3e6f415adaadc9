#!/bin/sh
# .ci/deps.sh -- install what a make target needs, and build the two
# third-party libraries (BearSSL, LMDB) with musl-gcc from Debian's source
# packages, cached under build/deps.  Called by the Makefile; idempotent.
#
#   .ci/deps.sh tools GROUP...   the apt packages of those groups, if missing
#   .ci/deps.sh list GROUP...    print the packages of those groups, a line each
#   .ci/deps.sh libs             build/deps/{lib,include} for the musl build
#   .ci/deps.sh waitlock         wait for the dpkg lock (APT_LOCK_WAIT seconds
#                                at most, default 600), or fail saying who
#                                holds it
#
# Groups: build (the binary and its libraries), run (make run: build, and
# swaks for the README's test mail), image (make image), test (make test:
# everything the tests run, the image's boot and the container included).
#
# Debian's libbearssl.a and liblmdb.a are glibc builds (__memcpy_chk,
# __fprintf_chk) and do not link with musl, hence the source build.
set -eu

BUILD=${BUILD:-build}
DEPS=$BUILD/deps

# build: musl, the compiler, Debian's source packages (dpkg-source).
PKGS_build="musl-tools dpkg-dev gcc make linux-libc-dev"
# run: a test mail to the demo.
PKGS_run="$PKGS_build swaks"
# image: image/build.sh and image/oci.py; image/rewrap.sh builds the kernel's
# wrapper with Kbuild (gcc-12 as Debian's kernel, flex and bison for Kconfig,
# bc, libssl-dev for the scripts it builds first) and lz4.
PKGS_image="$PKGS_build python3 qemu-utils syslinux syslinux-common mtools dosfstools fdisk
      e2fsprogs systemd-boot-efi binutils cpio kmod zstd xz-utils lz4 gcc-12 flex bison bc libssl-dev
      ca-certificates"
# test: the sanitizer and fuzz builds, the peers and tools of the tests,
# the man pages' lint, the appliance booted and the container run.
PKGS_test="$PKGS_run $PKGS_image clang libclang-rt-14-dev liblmdb-dev libbearssl-dev
      lmdb-utils libio-socket-inet6-perl libnet-ssleay-perl whois curl openssl file iproute2
      python3-aiosmtpd dnsmasq-base util-linux python3-prometheus-client python3-dkim mandoc git haproxy
      qemu-system-x86 ovmf umoci runc oci-image-tool genisoimage"

group_pkgs() { # GROUP... -> the packages, a line each, once
	for g in "$@"; do
		case $g in
		build|run|image|test) ;;
		*) echo "deps: no group '$g' (build, run, image, test)" >&2; exit 100 ;;
		esac
	done
	for g in "$@"; do
		eval echo "\"\$PKGS_$g\""
	done | tr -s ' \t\n' '\n' | sed '/^$/d' | awk '!seen[$0]++'
}

need_pkgs() { # GROUP... -> the missing packages, on one line
	missing=
	for p in $(group_pkgs "$@"); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$missing $p"
	done
	echo "$missing"
}

# Another apt (a fresh VM's first-boot updates, a second checkout's make)
# may hold the dpkg lock.  apt-get waits for it by itself too
# (DPkg::Lock::Timeout), but says nothing while it waits and, at the end,
# only "Could not get lock": wait here first, saying for whom and how long.
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}
DPKG_LOCK=${DPKG_LOCK:-/var/lib/dpkg/lock-frontend}

lock_holder() { # -> "PID (NAME)" of a process holding a lock on DPKG_LOCK, or nothing
	[ -e "$DPKG_LOCK" ] || return 0
	ino=$(stat -c %i "$DPKG_LOCK")
	# /proc/locks: "N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE START END";
	# a waiter's line has "->" after the number and is not a holder.
	pid=$(awk -v ino="$ino" '$2 != "->" { n = split($6, f, ":"); if (f[n] == ino) { print $5; exit } }' /proc/locks)
	[ -n "$pid" ] || return 0
	if [ "$pid" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/comm" ]; then
		echo "$pid ($(cat "/proc/$pid/comm"))"
	else
		echo "another process"
	fi
}

waitlock() {
	holder=$(lock_holder)
	[ -z "$holder" ] && return 0
	echo "deps: the dpkg lock $DPKG_LOCK is held by $holder: another apt is running" \
	     "(on a fresh machine, often its first-boot updates); waiting up to ${APT_LOCK_WAIT}s" >&2
	waited=0
	while holder=$(lock_holder) && [ -n "$holder" ]; do
		if [ "$waited" -ge "$APT_LOCK_WAIT" ]; then
			echo "deps: the dpkg lock is still held by $holder after ${APT_LOCK_WAIT}s;" \
			     "let it finish (or stop it), then run make again (APT_LOCK_WAIT=SECONDS to" \
			     "wait longer)" >&2
			exit 111
		fi
		sleep 1
		waited=$((waited + 1))
	done
	echo "deps: the dpkg lock is free after ${waited}s" >&2
}

APT="apt-get -o DPkg::Lock::Timeout=$APT_LOCK_WAIT"
apt_get() { # ARGS..., after the lock, with a clear word if it fails anyway
	waitlock
	if ! $APT "$@"; then
		echo "deps: apt-get $1 failed (above).  If it says the dpkg lock is held, another" \
		     "apt took it meanwhile: run make again once it is done." >&2
		exit 111
	fi
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	apt_get update -qq
	apt_updated=1
}

tools() { # GROUP...
	group_pkgs "$@" >/dev/null # an unknown group ends here, 100
	missing=$(need_pkgs "$@")
	[ -z "$missing" ] && return 0
	echo "deps: installing for $*:$missing"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends $missing
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
		waitlock
		(cd "$DEPS/dl" && $APT source --download-only -qq "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	fi
	dsc=$(ls "$DEPS"/dl/"${pkg}"_*.dsc | head -n1)
	dpkg-source --no-check -x "$dsc" "$DEPS/src/$pkg" >/dev/null
}

libs() {
	tools build
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

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
tools)    [ $# -gt 0 ] || set -- build run image test; tools "$@" ;;
list)     group_pkgs "$@" ;;
libs)     libs ;;
waitlock) waitlock ;;
*) echo "usage: $0 tools [GROUP...] | list GROUP... | libs | waitlock" >&2; exit 100 ;;
esac
