#!/bin/sh
# run.sh — runs every test: each cmocka binary in $BUILD/tests and each tests/cli/test_*.sh,
# from the repository root. Prints each one's result and, last, "N passed, N failed" counting
# individual test cases (cmocka) and scripts.
set -u
BUILD=${BUILD:-build}
passed=0
failed=0
failures=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed or failed outside a test case
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        cat "$log"
        failures="$failures $name"
        echo "FAIL $name ($p passed, $f failed)"
    else
        echo "ok   $name ($p passed)"
    fi
done

for s in tests/cli/test_*.sh; do
    [ -f "$s" ] || continue
    name=$(basename "$s")
    if P4P="$BUILD/p4p" sh "$s" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        cat "$log"
        failures="$failures $name"
        echo "FAIL $name"
    fi
done

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
