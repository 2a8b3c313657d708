# run_plot.sh — a small scenario end to end: run, summary, results file, plots, and the
# same results hash for the same seed.
. tests/cli/common.sh

expect_exit 0 "$P4P" --version
expect_out "p4p "
expect_exit 0 "$P4P" --help
expect_out "usage: p4p COMMAND"

run() {
    "$P4P" run "$ROOT/scenarios/default.yaml" --quiet --set nodes.count=80 --set duration=40s \
        --set workload.updates=20 --set topology.radius=0.3 "$@"
}
expect_exit 0 run --out "$TMP/a.sqlite"
expect_out "results      $TMP/a.sqlite"
expect_out "coverage 1.0000"
[ ! -s "$TMP/err" ] || fail "--quiet printed on stderr: $(cat "$TMP/err")"

expect_exit 0 "$P4P" plot "$TMP/a.sqlite"
[ "$(head -c 8 "$TMP/a.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
    fail "a.png is not a PNG"
expect_exit 0 "$P4P" plot "$TMP/a.sqlite" --format svg --out "$TMP/a.svg"
grep -q "<svg" "$TMP/a.svg" || fail "no svg"
expect_exit 0 "$P4P" plot "$TMP/a.sqlite" --format txt --out -
expect_out "Coverage over time"

# Same scenario and seed, another directory and file name: the same results hash.
mkdir "$TMP/elsewhere"
(cd "$TMP/elsewhere" && run --out b.sqlite >/dev/null) || fail "second run"
expect_exit 0 "$P4P" hash "$TMP/a.sqlite" "$TMP/elsewhere/b.sqlite"
[ "$(cut -d' ' -f1 "$TMP/out" | sort -u | wc -l)" -eq 1 ] || fail "hashes differ: $(cat "$TMP/out")"
expect_exit 2 "$P4P" hash "$ROOT/README.md"

# The default output name comes from the scenario name and seed.
(cd "$TMP" && run --seed 3 >/dev/null) || fail "run with default output"
[ -s "$TMP/default-seed3.sqlite" ] || fail "default output file missing"
exit 0
