# run_crash.sh — the shipped crash scenario end to end on both backends (SQLite with files):
# nodes crash and restart, none loses an acknowledged update, the results say so, and the same
# seed gives the same results hash whatever the backend's files are called.
. tests/cli/common.sh

scalar() {
    sqlite3 -readonly "$1" "SELECT value FROM scalar WHERE node = -1 AND name = '$2'"
}

expect_exit 0 "$P4P" run "$ROOT/scenarios/crash.yaml" --quiet \
    --out "$TMP/mem.sqlite"
expect_out "coverage 1.0000"
[ "$(scalar "$TMP/mem.sqlite" ops_lost_acked)" = "0.0" ] || fail "acknowledged updates lost"
restarts=$(scalar "$TMP/mem.sqlite" restarts)
[ "${restarts%.0}" -ge 100 ] || fail "only $restarts restarts"
[ "$(scalar "$TMP/mem.sqlite" restarts_caught_up)" = "$restarts" ] || fail "not all caught up"

expect_exit 0 "$P4P" run "$ROOT/scenarios/crash.yaml" --quiet \
    --set storage.backend=sqlite --set storage.dir="$TMP/disks" --out "$TMP/sql.sqlite"
[ -f "$TMP/disks/node-0.sqlite" ] || fail "no per-node database files"
[ "$(scalar "$TMP/sql.sqlite" ops_lost_acked)" = "0.0" ] || fail "acknowledged updates lost"
[ "$(scalar "$TMP/sql.sqlite" restarts)" = "$restarts" ] || fail "backends disagree on restarts"

# The protocol outcome does not depend on the backend: same deliveries, same traffic.
for name in deliveries frames_out bytes_out; do
    [ "$(scalar "$TMP/mem.sqlite" $name)" = "$(scalar "$TMP/sql.sqlite" $name)" ] ||
        fail "$name differs between backends"
done

# Crashes without a store are refused with the position of the key.
printf 'nodes:\n  count: 10\ncrash:\n  rate: 1/h\n' >"$TMP/bad.yaml"
expect_exit 2 "$P4P" run "$TMP/bad.yaml"
expect_err "bad.yaml:4:9: crashes need storage"

# The same with every frame in Noise sessions: restarted nodes greet their neighbours again
# (IK, keys remembered in their stores) and nothing acknowledged is lost.
expect_exit 0 "$P4P" run "$ROOT/scenarios/crash.yaml" --quiet --set security.sessions=true \
    --out "$TMP/sec.sqlite"
expect_out "coverage 1.0000"
[ "$(scalar "$TMP/sec.sqlite" ops_lost_acked)" = "0.0" ] || fail "acknowledged updates lost"
[ "$(scalar "$TMP/sec.sqlite" sess_bad_mac)" = "0.0" ] || fail "session MAC failures"
