# bench_flood.sh — `p4p bench flood` gives the documented answer for graph-1000 with both the
# null application and the engine: 70,010 deliveries, the last at 9.177 s.
. tests/cli/common.sh

for app in null engine; do
    expect_exit 0 "$P4P" bench flood "$ROOT/../shared/data/bench/graph-1000.txt" --app "$app" --json
    expect_out '"deliveries":70010,'
    expect_out '"last_delivery_s":9.177'
    for key in wall_s deliveries_per_s peak_rss_kb; do
        expect_out "\"$key\":"
    done
done
expect_exit 2 "$P4P" bench flood "$ROOT/../shared/data/bench/graph-1000.txt" --app bogus
exit 0
