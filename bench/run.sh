#!/bin/sh
# run.sh — `make bench`: prints the benchmark figures. Nothing here passes or fails on speed;
# a run fails only when a benchmark's answer is wrong (e.g. a flood's delivery count).
#   1. event queue, hold model: events/s and bytes per pending event
#   2. flood on ../shared/data/bench/graph-{1000,10000,100000}.txt, null application and
#      real engine: deliveries, last delivery, wall time, deliveries/s, peak memory
#      "setup" in each flood line is the start-up time: loading the graph and creating every
#      node (identity keys, neighbour tables); graph-10000 with the engine is the 10,000-node
#      start-up figure.
#   3. chunking and hashing throughput (FastCDC, BLAKE2b) against raw BLAKE2b
#   4. storage backends: appends/s and bytes written per append (a commit each, and batched),
#      recovery time of a 1,000,000-record log, memory of a store holding 10,000 records;
#      then a crashing simulation (scenarios/crash.yaml) on each backend
#   5. a 100 MB blob between two nodes over a Wi-Fi and a BLE link (scenarios/blob-*.yaml)
#   6. secure sessions: Noise and session handshakes/s, sealed transport against raw AEAD
#   7. set reconciliation: rateless IBLT on two sets of 1,000,000 ids with 0 to 100,000
#      differences (symbols, bytes, CPU); negentropy range-based reconciliation likewise
#      (rounds, bytes each way, CPU, with and without a frame limit)
#   8. epidemic broadcast on 10,000 nodes: push gossip rounds and messages to 99 % / 100 %
#      against log2 N + ln N, and Plumtree over HyParView (with loss and failures)
set -eu
BUILD=${BUILD:-build}
P4P="$BUILD/p4p"
DATA=../shared/data/bench

echo "== event queue"
"$BUILD/bench/queue_bench"

echo "== flood (node 0 sends 10 messages of 64 bytes, one per second)"
for n in 1000 10000 100000; do
    graph="$DATA/graph-$n.txt"
    if [ ! -f "$graph" ]; then
        echo "flood: $graph not found (needs ../shared/data beside the repository)" >&2
        exit 1
    fi
    for app in null engine; do
        "$P4P" bench flood "$graph" --app "$app" --repeat 3
    done
done

echo "== what the shared signature cache saves (every node verifies every signature itself)"
"$P4P" bench flood "$DATA/graph-10000.txt" --app engine --no-sigcache

echo "== content-defined chunking and hashing (64 MiB)"
"$BUILD/bench/chunk_bench"

echo "== storage backends"
"$BUILD/bench/storage_bench"

echo "== crashes and restarts (scenarios/crash.yaml) on each backend"
for backend in memory sqlite; do
    out=$(mktemp /tmp/p4p-bench-XXXXXX.sqlite)
    "$P4P" run scenarios/crash.yaml --quiet --set storage.backend=$backend --out "$out" >/dev/null
    sqlite3 -readonly "$out" "SELECT '$backend', group_concat(name || ' ' || printf('%.4g', value), ', ')
        FROM (SELECT name, value FROM scalar WHERE node = -1 AND name IN ('restarts',
        'restarts_caught_up', 'ops_lost_acked', 'write_amplification', 'stored_bytes_per_op')
        UNION ALL SELECT 'catch_up_p50_s', p50 FROM statistic WHERE name = 'catch_up_s'
        UNION ALL SELECT 'recovery_wall_max_s', value FROM wall WHERE name = 'recovery_wall_max_s')"
    rm -f "$out"
done

echo "== a 100 MB blob between two nodes (scenarios/blob-wifi.yaml, scenarios/blob-ble.yaml)"
for link in wifi ble; do
    out=$(mktemp /tmp/p4p-bench-XXXXXX.sqlite)
    t0=$(date +%s.%N)
    "$P4P" run "scenarios/blob-$link.yaml" --quiet --out "$out" >/dev/null
    t1=$(date +%s.%N)
    sqlite3 -readonly "$out" "SELECT '$link', printf('transfer %.1f s simulated (goodput %.2f Mb/s), link bytes / blob bytes %.3f, completed %d, timeouts %d, wall %.2f s',
        (SELECT mean FROM statistic WHERE name = 'blob_transfer_s'),
        100e6 * 8 / 1e6 / (SELECT mean FROM statistic WHERE name = 'blob_transfer_s'),
        (SELECT value FROM scalar WHERE node = -1 AND name = 'link_bytes_sent') / 100e6,
        (SELECT value FROM scalar WHERE node = -1 AND name = 'blob_completed'),
        (SELECT value FROM scalar WHERE node = -1 AND name = 'blob_timeouts'), $t1 - $t0)"
    rm -f "$out"
done

echo "== secure sessions"
"$BUILD/bench/session_bench"

echo "== rateless IBLT reconciliation (1,000,000 items a side)"
"$BUILD/bench/riblt_bench"

echo "== range-based set reconciliation, negentropy v1 (1,000,000 items a side)"
"$BUILD/bench/rbsr_bench"

echo "== epidemic broadcast, 10,000 nodes (push gossip and Plumtree over HyParView)"
"$BUILD/bench/gossip_bench"
