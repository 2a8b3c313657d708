# common.sh — sourced by the command-line tests: $P4P is the binary under test; each test
# works in a temporary directory that is removed on exit.
set -eu
P4P=${P4P:-build/p4p}
case "$P4P" in /*) ;; *) P4P="$PWD/$P4P" ;; esac
ROOT=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect_exit CODE CMD... — runs CMD, keeps stdout in $TMP/out and stderr in $TMP/err.
expect_exit() {
    want=$1
    shift
    set +e
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    set -e
    [ "$got" -eq "$want" ] || {
        cat "$TMP/out" "$TMP/err" >&2
        fail "$* exited $got, expected $want"
    }
}

# expect_err TEXT — stderr of the last expect_exit contains TEXT (fixed string).
expect_err() {
    grep -qF -- "$1" "$TMP/err" || {
        cat "$TMP/err" >&2
        fail "stderr lacks: $1"
    }
}

expect_out() {
    grep -qF -- "$1" "$TMP/out" || {
        cat "$TMP/out" >&2
        fail "stdout lacks: $1"
    }
}
