# test_link.sh — `p4p link`: the LoRa reference airtime (SF7 BW125 CR4/5, 20 bytes = 56.576 ms)
# in text and JSON, the EU868 off period, BLE and Wi-Fi figures, that --json prints one
# parseable object, and that bad options exit 2 with a one-line message naming the option.
. tests/cli/common.sh

json_get() { # json_get KEY < file: prints the value of a top-level key
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

expect_exit 0 "$P4P" link lora --sf 7 --bw 125 --cr 4/5 --payload 20
expect_out "time on air             56.576 ms"
expect_out "preamble                12.544 ms"
expect_out "payload symbols             43"

expect_exit 0 "$P4P" link lora --sf 7 --bw 125 --cr 4/5 --payload 20 --region EU868 \
    --sub-band g1 --distance 400 --json
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "--json printed more than one line"
[ "$(json_get airtime_ms <"$TMP/out")" = "56.576" ] || fail "airtime_ms is not 56.576"
[ "$(json_get payload_symbols <"$TMP/out")" = "43" ] || fail "payload_symbols is not 43"
[ "$(json_get off_period_s <"$TMP/out")" = "5.601024" ] || fail "off_period_s is not 5.601024"
[ "$(json_get frames_per_hour <"$TMP/out")" = "636" ] || fail "frames_per_hour is not 636"
python3 -c 'import json,sys
d = json.load(sys.stdin)
assert [r["receives"] for r in d["per_sf"]] == [False] * 5 + [True], d["per_sf"]
assert abs(d["rx_power_dbm"] - (14 - 148.21)) < 1e-6, d["rx_power_dbm"]' <"$TMP/out" ||
    fail "per-SF reception at 400 m"

expect_exit 0 "$P4P" link lora --sf 12 --bw 125 --cr 4/5 --payload 51 --json
[ "$(json_get airtime_ms <"$TMP/out")" = "2465.792" ] || fail "SF12 51 bytes is not 2465.792 ms"
expect_exit 0 "$P4P" link lora --sf 10 --bw 125 --cr 4/5 --payload 25 --region US915
expect_out "EXCEEDED"

expect_exit 0 "$P4P" link ble --phy 1M --adv-interval 100ms --payload 31 --conn-interval 30ms \
    --data-length 251 --trials 2000 --json
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "ble --json printed more than one line"
[ "$(json_get pdu_airtime_ms <"$TMP/out")" = "0.376" ] || fail "ADV_IND airtime is not 0.376 ms"
[ "$(json_get throughput_kbps <"$TMP/out")" = "780.8" ] || fail "1M 30 ms throughput"
python3 -c 'import json,sys
d = json.load(sys.stdin)
assert abs(d["discovery_mean_ms"] - d["discovery_mean_ms_closed_form"]) < 2, d' <"$TMP/out" ||
    fail "simulated discovery latency far from the closed form"

expect_exit 0 "$P4P" link wifi --rate 54Mbps --payload 1500 --stations 10 --distance 15 \
    --ge-p 0.01 --ge-r 0.25 --json
[ "$(json_get airtime_us <"$TMP/out")" = "248" ] || fail "54 Mb/s 1500-byte airtime"
python3 -c 'import json,sys; d = json.load(sys.stdin); assert abs(d["ge_mean_burst"] - 4) < 1e-9' \
    <"$TMP/out" || fail "simple Gilbert burst is not 1/r"
expect_exit 0 "$P4P" link wifi --rate 54Mbps --payload 1500
expect_out "single station"

expect_exit 2 "$P4P" link lora --sf 13 --payload 20
expect_err "--sf takes an integer 7..12"
expect_exit 2 "$P4P" link lora --sf 7 --bw 200 --payload 20
expect_err "--bw takes 125, 250 or 500"
expect_exit 2 "$P4P" link lora --sf 7 --cr 4/9 --payload 20
expect_err "--cr takes 4/5, 4/6, 4/7 or 4/8"
expect_exit 2 "$P4P" link lora --sf 7 --payload 20 --region EU868 --sub-band g7
expect_err "--sub-band takes"
expect_exit 2 "$P4P" link lora --sf 7 --payload 20 --frobnicate
expect_err "--frobnicate"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "an unknown option gives more than one line"
expect_exit 2 "$P4P" link ble --adv-interval 10ms --payload 31
expect_err "--adv-interval takes a duration from 20ms to 10.24s"
expect_exit 2 "$P4P" link ble --adv-interval 100ms --payload 31 --conn-interval 8ms
expect_err "--conn-interval takes 7.5ms..4s in steps of 1.25ms"
expect_exit 2 "$P4P" link wifi --rate 11Mbps --payload 1500
expect_err "--rate takes an 802.11a/g rate"
expect_exit 2 "$P4P" link zigbee
expect_err "unknown radio 'zigbee'"
expect_exit 2 "$P4P" link
exit 0
