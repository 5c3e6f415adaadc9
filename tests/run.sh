#!/bin/bash
# tests/run.sh -- run every test and end with one line "N passed, N failed".
#
# Each test program prints "PASS: name" / "FAIL: name" lines on stdout.
# A program that exits non-zero without printing a FAIL line (a crash, a
# sanitizer report, a hang killed by timeout) counts as one failure.
# Programs run TEST_JOBS at a time (most of a session test is waiting on
# sockets and timers); each one's output goes to $BUILD/t/log/<name>.log,
# and the summary is printed in a fixed order, failures with their lines.
set -u
BUILD=${BUILD:-build}
T=$BUILD/t
LOG=$T/log
JOBS=${TEST_JOBS:-3}
rm -rf "$LOG"
mkdir -p "$LOG"
PY=/usr/bin/python3
export BUILD MOAT="$BUILD/moat" MOAT_ASAN="$BUILD/moat-asan"
# Sanitizer reports make the program fail; leaks are reported too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

names=()

job() { # name timeout-seconds command...: run in the background
	local name=$1 to=$2
	shift 2
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n 2>/dev/null || true
	done
	names+=("$name")
	(
		start=$(date +%s)
		timeout -k 5 "$to" "$@" >"$LOG/$name.log" 2>&1
		echo $? >"$LOG/$name.rc"
		echo $(($(date +%s) - start)) >"$LOG/$name.secs"
	) &
}

# Unit tests, musl static build and glibc ASan/UBSan build.
for t in "$BUILD"/musl/unit/test_* "$BUILD"/asan/unit/test_*; do
	[ -x "$t" ] || continue
	kind=$(basename "$(dirname "$(dirname "$t")")")
	job "$kind-$(basename "$t")" 300 "$t"
done

# Golden tests.
[ -f tests/golden/run.sh ] && job golden 300 sh tests/golden/run.sh

# Session, delivery, image... tests: Python, one program per file; those
# marked ASAN_OK run against the ASan/UBSan build of the server too.
for t in tests/*/test_*.py; do
	[ -f "$t" ] || continue
	n=$(basename "$(dirname "$t")")-$(basename "$t" .py)
	job "$n" 900 "$PY" "$t"
	if grep -q 'ASAN_OK' "$t"; then
		job "asan-$n" 900 env MOAT="$BUILD/moat-asan" "$PY" "$t"
	fi
done

# Fuzz smoke: each libFuzzer target a few seconds on its seed corpus.
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f" | sed 's/^fuzz_//')
	c=$T/fuzz-corpus/$n
	mkdir -p "$c"
	cp tests/fuzz/corpus/"$n"/* "$c"/ 2>/dev/null
	job "fuzz-$n" 120 sh -c "'$f' -max_total_time=${FUZZ_SMOKE_SECONDS:-5} -dict=tests/fuzz/smtp.dict '$c' && echo 'PASS: fuzz-$n'"
done
wait

passed=0
failed=0
for name in "${names[@]}"; do
	out=$LOG/$name.log
	rc=$(cat "$LOG/$name.rc" 2>/dev/null || echo 255)
	secs=$(cat "$LOG/$name.secs" 2>/dev/null || echo '?')
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL: $name (exit $rc)" >>"$out"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "== $name: $p passed, $f failed, ${secs}s (log: $out)"
		grep -E '^FAIL: |CHECK failed|ERROR|Error|error:|runtime error|Sanitizer' "$out" | head -n 40
	else
		echo "== $name: $p passed, ${secs}s"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
