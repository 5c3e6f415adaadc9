#!/bin/sh
# tests/bench/install.sh -- what `make bench` needs, from Debian, without
# starting or configuring any system mail service.
#
#   postfix    installed with apt: smtp-source (the load client) and the
#              Postfix peer.  Debconf is told "No configuration", so no
#              /etc/postfix/main.cf is written, and a policy-rc.d that
#              answers 101 ("action forbidden") keeps its service from
#              starting during the install.  The bench runs its own
#              instance with its own config directory (postfix -c DIR).
#              Its smtp-sink is the plain next hop of the outbound section.
#   libsasl2-modules  the PLAIN and LOGIN mechanisms of Postfix's SASL
#              client (Cyrus), for the outbound section's STARTTLS + AUTH
#              smarthost; openssl makes that smarthost's certificate.
#   opensmtpd  conflicts with postfix (both are a mail-transport-agent), so
#              it is NOT installed: its .deb is fetched with apt-get download
#              and unpacked under $BUILD/bench/opensmtpd-root, and its two
#              privilege-separation users are created as its postinst would.
#              Its libraries are already pulled in by postfix and the base
#              system; the ones it needs besides are installed with apt.
#
# Refuses to go on if another MTA (exim4, sendmail, ...) is installed:
# installing postfix would remove it.
set -eu

BUILD=${BUILD:-build}
ROOT=$BUILD/bench/opensmtpd-root
PKGS="postfix libsasl2-modules openssl strace procps util-linux libevent-2.1-7 libdb5.3 libpam0g libssl3 zlib1g"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (it installs Debian packages)" >&2
	exit 100
fi

missing=
for p in $PKGS; do
	installed "$p" || missing="$missing $p"
done

if [ -n "$missing" ]; then
	other=$(dpkg-query -W -f='${Package} ${Status} ${Provides}\n' 2>/dev/null \
		| grep 'install ok installed' | grep 'mail-transport-agent' \
		| grep -v '^postfix ' | cut -d' ' -f1 | tr '\n' ' ')
	if [ -n "$other" ]; then
		echo "bench: another MTA is installed ($other); installing postfix would remove it." >&2
		echo "bench: install postfix by hand if that is what you want, then run make bench again." >&2
		exit 1
	fi
	echo "bench: installing:$missing"
	# Keep services from starting for the duration of the install; put back
	# whatever policy-rc.d the machine had.
	prc=/usr/sbin/policy-rc.d
	saved=
	if [ -e "$prc" ]; then
		saved=$prc.moat-bench-saved
		mv "$prc" "$saved"
	fi
	restore() {
		rm -f "$prc"
		[ -n "$saved" ] && mv "$saved" "$prc"
		return 0
	}
	trap restore EXIT INT TERM
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
	restore
	trap - EXIT INT TERM
fi

if [ ! -x "$ROOT/usr/sbin/smtpd" ]; then
	mkdir -p "$BUILD/bench/dl"
	rm -f "$BUILD"/bench/dl/opensmtpd_*.deb
	(cd "$BUILD/bench/dl" && apt-get download -qq opensmtpd 2>&1 \
		| grep -v '^W: Download is performed unsandboxed' || true)
	deb=$(ls "$BUILD"/bench/dl/opensmtpd_*.deb | head -n1)
	rm -rf "$ROOT.tmp"
	dpkg-deb -x "$deb" "$ROOT.tmp"
	mv "$ROOT.tmp" "$ROOT"
fi

# The users OpenSMTPD's processes drop to (names compiled into Debian's
# smtpd), created the way its postinst does.
for name in opensmtpd opensmtpq; do
	getent group "$name" >/dev/null || addgroup --quiet --system "$name"
	id "$name" >/dev/null 2>&1 || adduser --quiet --system --home /var/lib/opensmtpd/empty \
		--no-create-home --disabled-password --ingroup "$name" "$name"
done
exit 0
