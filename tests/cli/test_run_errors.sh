# run_errors.sh — bad scenarios and bad arguments: FILE:LINE:COLUMN messages, exit code 2,
# and no results file left behind.
. tests/cli/common.sh

printf 'name: bad\nnodes:\n  count: 10\n  colour: blue\n' >"$TMP/unknown.yaml"
expect_exit 2 "$P4P" run "$TMP/unknown.yaml" --out "$TMP/r.sqlite"
expect_err "$TMP/unknown.yaml:4:3: "
[ ! -e "$TMP/r.sqlite" ] || fail "results file written for a bad scenario"

printf 'duration: 10 parsecs\n' >"$TMP/units.yaml"
expect_exit 2 "$P4P" run "$TMP/units.yaml"
expect_err "$TMP/units.yaml:1:11: "

printf 'link:\n  loss: 1.5\n' >"$TMP/range.yaml"
expect_exit 2 "$P4P" run "$TMP/range.yaml"
expect_err "$TMP/range.yaml:2:9: "

printf 'nodes: [1, 2\n' >"$TMP/syntax.yaml"
expect_exit 2 "$P4P" run "$TMP/syntax.yaml"
expect_err "$TMP/syntax.yaml:"

printf 'topology:\n  kind: file\n  file: nowhere.txt\n' >"$TMP/nofile.yaml"
expect_exit 2 "$P4P" run "$TMP/nofile.yaml"
expect_err "$TMP/nofile.yaml:3:9: "

expect_exit 2 "$P4P" run "$TMP/missing.yaml"
expect_err "$TMP/missing.yaml:"

expect_exit 2 "$P4P" run "$ROOT/scenarios/default.yaml" --set link.loss=2
expect_err "--set:1:"
expect_exit 2 "$P4P" run "$ROOT/scenarios/default.yaml" --set no.such.key=1
expect_err "--set:1:1: "
expect_exit 2 "$P4P" run "$ROOT/scenarios/default.yaml" --seed -3
expect_exit 2 "$P4P" run "$ROOT/scenarios/default.yaml" --set noequals
expect_exit 1 "$P4P" run "$ROOT/scenarios/default.yaml" --out "$TMP/no/such/dir/r.sqlite"
expect_err "cannot write $TMP/no/such/dir/r.sqlite: $TMP/no/such/dir: No such file or directory"
expect_exit 2 "$P4P" run
expect_exit 2 "$P4P" frobnicate
expect_exit 2 "$P4P" plot "$TMP/unknown.yaml"
expect_exit 2 "$P4P" bench flood "$TMP/missing.txt"
exit 0
