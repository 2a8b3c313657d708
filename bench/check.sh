#!/bin/sh
# check.sh — the benchmark regression gate (`make bench-check`, run by CI). It compares
# figures that machine noise cannot move with bench/baseline.txt and fails when a change
# makes the protocols more expensive or the code slower:
#
#   proto.*  the default scenario with its seed: frames and bytes sent, coverage, latency.
#            Exact for a given build of the protocols; fail if frames or bytes grow by more
#            than 1 %, latency by more than 5 %, or coverage drops at all.
#   instr.*  instructions executed (valgrind --tool=callgrind) by the flood benchmark on
#            graph-1000, with the engine and with the null application; fail above +5 %.
#
# `sh bench/check.sh --update` (make bench-baseline) rewrites the baseline: do it in the
# commit that makes a figure better, or that makes it worse on purpose, and say why.
set -eu
BUILD=${BUILD:-build}
P4P="$BUILD/p4p"
BASELINE=bench/baseline.txt
GRAPH=../shared/data/bench/graph-1000.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench-check: needs valgrind: sudo apt-get install -y valgrind" >&2
        exit 1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

# Protocol figures from the default scenario's summary table.
"$P4P" run scenarios/default.yaml --quiet --out "$TMP/default.sqlite" >"$TMP/summary"
awk '
    $1 == "updates" { print "proto.coverage", $7 }
    $1 == "latency" { print "proto.latency_p50_s", $3; print "proto.latency_p99_s", $9 }
    $1 == "traffic" { print "proto.frames_sent", $2; print "proto.bytes_sent", $4 }
' "$TMP/summary" >"$TMP/now"

# Instruction counts. p4p restarts itself to ask glibc for huge pages unless GLIBC_TUNABLES
# is set; valgrind would lose it across that exec, so set it here.
for app in engine null; do
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 valgrind --tool=callgrind \
        --callgrind-out-file="$TMP/cg.$app" "$P4P" bench flood "$GRAPH" --app "$app" \
        >/dev/null 2>"$TMP/vg.$app"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/vg.$app" | head -n 1 |
        awk -v k="instr.flood_1000_$app" '{ print k, $1 }' >>"$TMP/now"
done
[ "$(wc -l <"$TMP/now")" -eq 7 ] || {
    echo "bench-check: could not read every figure:" >&2
    cat "$TMP/now" "$TMP/summary" >&2
    exit 1
}

if [ "${1:-}" = "--update" ]; then
    {
        echo "# bench/baseline.txt — written by 'make bench-baseline' (bench/check.sh)."
        cat "$TMP/now"
    } >"$BASELINE"
    echo "bench-check: baseline updated:"
    cat "$TMP/now"
    exit 0
fi

# Compare: one line per figure, and fail if any got worse than its tolerance allows.
awk '
    NR == FNR { if ($1 !~ /^#/) base[$1] = $2; next }
    {
        key = $1; now = $2
        if (!(key in base)) { printf "%-28s %16s %16s  new figure\n", key, "-", now; next }
        b = base[key]; change = b != 0 ? (now - b) / b * 100 : 0
        worse = 0
        if (key ~ /^proto\.(frames|bytes)/ && now > b * 1.01) worse = 1
        if (key ~ /^proto\.latency/ && now > b * 1.05) worse = 1
        if (key == "proto.coverage" && now < b) worse = 1
        if (key ~ /^instr\./ && now > b * 1.05) worse = 1
        printf "%-28s %16s %16s  %+7.2f %%%s\n", key, b, now, change, worse ? "  WORSE" : ""
        failed += worse
    }
    END {
        if (failed) { printf "bench-check: %d figure(s) worse than the baseline\n", failed; exit 1 }
        print "bench-check: no regression"
    }
' "$BASELINE" "$TMP/now"
