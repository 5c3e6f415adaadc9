#!/bin/sh
# tests/demo.sh BUILD -- what "make run" does: write the demo config and
# serve it in the foreground on 127.0.0.1:2525 (Ctrl-C stops it).
set -eu
BUILD=${1:-build}
DEMO=$(cd "$BUILD" && pwd)/demo
mkdir -p "$DEMO"
cat >"$DEMO/moat.conf" <<CONF
# The demo config written by "make run".  See README.md for every directive.
hostname        moat.demo
listen          127.0.0.1:2525
listen          [::1]:2525
domain          example.test
relay-network   127.0.0.0/8
relay-network   ::1/128
queue           $DEMO/queue
# Keep what arrives (the demo's domains are not real; a bounce to a real
# sender would leave the machine): see docs/delivery.md "Delivery" to turn it on.
delivery        off
CONF
"$BUILD/moat" check -c "$DEMO/moat.conf" >/dev/null
cat <<MSG
moat: serving the demo config $DEMO/moat.conf on 127.0.0.1:2525 and [::1]:2525
  send a test mail:   swaks --server 127.0.0.1:2525 --from alice@example.org --to bob@example.test
  see the queue:      $BUILD/moat queue list -c $DEMO/moat.conf
  stop:               Ctrl-C
MSG
exec "$BUILD/moat" serve -c "$DEMO/moat.conf"
