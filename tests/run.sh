#!/bin/sh
# tests/run.sh -- run every test and end with one line "N passed, N failed".
#
# Each test program prints "PASS: name" / "FAIL: name" lines on stdout.
# A program that exits non-zero without printing a FAIL line (a crash, a
# sanitizer report, a hang killed by timeout) counts as one failure.
# Output of each program goes to $BUILD/t/log/<name>.log; failures are shown.
set -u
BUILD=${BUILD:-build}
T=$BUILD/t
LOG=$T/log
mkdir -p "$LOG"
passed=0
failed=0
PY=/usr/bin/python3
export BUILD MOAT="$BUILD/moat" MOAT_ASAN="$BUILD/moat-asan"
# Sanitizer reports make the program fail; leaks are reported too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run() { # name timeout-seconds command...
	name=$1; to=$2; shift 2
	out=$LOG/$name.log
	timeout -k 5 "$to" "$@" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "FAIL: $name (exit $rc)" >>"$out"
	fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "== $name: $p passed, $f failed (log: $out)"
		grep -E '^FAIL: |CHECK failed|ERROR|Error|error:|runtime error|Sanitizer' "$out" | head -n 40
	else
		echo "== $name: $p passed"
	fi
}

# Unit tests, musl static build and glibc ASan/UBSan build.
for t in "$BUILD"/musl/unit/test_*; do
	[ -x "$t" ] && run "musl-$(basename "$t")" 300 "$t"
done
for t in "$BUILD"/asan/unit/test_*; do
	[ -x "$t" ] && run "asan-$(basename "$t")" 300 "$t"
done

# Golden tests and session tests (shell or Python), each self-describing.
for t in tests/golden/run.sh; do
	[ -f "$t" ] && run golden 300 sh "$t"
done
for t in tests/*/test_*.py; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .py)
	run "$n" 600 "$PY" "$t"
	# The same sessions against the ASan/UBSan build of the server.
	if grep -q 'ASAN_OK' "$t"; then
		run "asan-$n" 600 env MOAT="$BUILD/moat-asan" "$PY" "$t"
	fi
done

# Fuzz smoke: each libFuzzer target a few seconds on its seed corpus.
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f" | sed 's/^fuzz_//')
	c=$T/fuzz-corpus/$n
	mkdir -p "$c"
	cp tests/fuzz/corpus/"$n"/* "$c"/ 2>/dev/null
	run "fuzz-$n" 120 sh -c "'$f' -max_total_time=${FUZZ_SMOKE_SECONDS:-5} -dict=tests/fuzz/smtp.dict '$c' && echo 'PASS: fuzz-$n'"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
