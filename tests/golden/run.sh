#!/bin/sh
# tests/golden/run.sh -- golden tests of `moat check`, Postfix style.
#
# For each tests/golden/conf/NAME.ref: run `$MOAT check -c
# tests/golden/conf/NAME.conf` from the repository root (so messages name the
# file the same way everywhere), take stdout and stderr together, append
# "exit N", and diff against NAME.ref.  A .ref without its .conf is the
# missing-file case.  Prints "PASS: conf/NAME" or "FAIL: conf/NAME" and the
# diff; exits 1 if any failed.
#
#   sh tests/golden/run.sh              MOAT defaults to build/moat
#   UPDATE=1 sh tests/golden/run.sh     rewrite the .ref files (review the diff!)
set -u
cd "$(dirname "$0")/../.." || exit 1
MOAT=${MOAT:-build/moat}
UPDATE=${UPDATE:-0}
failed=0
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

if [ ! -x "$MOAT" ]; then
	echo "FAIL: conf (no binary $MOAT; run make)"
	exit 1
fi
for ref in tests/golden/conf/*.ref; do
	name=$(basename "$ref" .ref)
	"$MOAT" check -c "tests/golden/conf/$name.conf" >"$out" 2>&1
	echo "exit $?" >>"$out"
	if [ "$UPDATE" = 1 ]; then
		cp "$out" "$ref"
	fi
	if diff -u "$ref" "$out" >"$out.diff" 2>&1; then
		echo "PASS: conf/$name"
	else
		echo "FAIL: conf/$name"
		cat "$out.diff"
		failed=1
	fi
	rm -f "$out.diff"
done
exit "$failed"
