#!/bin/sh
# tests/demo.sh BUILD [PORT] -- what "make run" does: write the demo config
# and serve it in the foreground on 127.0.0.1:PORT and [::1]:PORT (2525 by
# default; make run PORT=N), until Ctrl-C.
set -eu
BUILD=${1:-build}
PORT=${2:-2525}
case $PORT in
''|*[!0-9]*) echo "make run: PORT=$PORT is not a port number" >&2; exit 100 ;;
esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
	echo "make run: PORT=$PORT is not a port number (1 to 65535)" >&2
	exit 100
fi
DEMO=$(cd "$BUILD" && pwd)/demo
MOAT=$(cd "$BUILD" && pwd)/moat
mkdir -p "$DEMO"
cat >"$DEMO/moat.conf" <<CONF
# The demo config written by "make run".  Every directive: docs/configuration.md.
hostname        moat.demo
listen          127.0.0.1:$PORT
listen          [::1]:$PORT
domain          example.test
relay-network   127.0.0.0/8
relay-network   ::1/128
queue           $DEMO/queue
# Keep what arrives (the demo's domains are not real; a bounce to a real
# sender would leave the machine): see docs/delivery.md to turn it on.
delivery        off
CONF
"$MOAT" check -c "$DEMO/moat.conf" >/dev/null
# Without -c the commands find the running demo, unless the machine has a
# config of its own where they look first.
C=
[ -e /etc/moat/moat.conf ] && C=" -c $DEMO/moat.conf"
cat <<MSG
moat: serving the demo config $DEMO/moat.conf on 127.0.0.1:$PORT and [::1]:$PORT
  send a test mail:   swaks --server 127.0.0.1:$PORT --from alice@example.org --to bob@example.test
  see the queue:      $BUILD/moat queue list$C
  and the server:     $BUILD/moat status$C
  stop:               Ctrl-C
MSG
exec "$MOAT" serve -c "$DEMO/moat.conf"
