# test_negentropy_harness.sh — `p4p negentropy-harness` speaks the line protocol of the negentropy
# reference test harness (hoytech/negentropy test/cpp/harness.cpp):
#  1. canned conversation: the messages the C++ reference harness printed for a 40-item set
#     (initiate) and for a 40-item set that differs by four items (response) are reproduced byte
#     for byte, and the initiator ends with the right have/need lines and `done`;
#  2. two harness processes, driven like the reference's test/fuzz.pl, reconcile random sets
#     exactly, with no frame limit and with FRAMESIZELIMIT=4096 (every message within it);
#  3. the non-standard 200-byte mode reconciles too;
#  4. errors: unknown command, item after seal, bad id, message before seal, bad frame limit,
#     malformed message (exit 2, one line naming the input line); another protocol version gets
#     the bare version byte back, as from the reference.
. tests/cli/common.sh

# Items of the golden set: three per timestamp, the first id byte shared by six in a row.
golden_items() { # golden_items FROM TO [SKIP...]
    python3 - "$@" <<'EOF'
import sys
lo, hi, skip = int(sys.argv[1]), int(sys.argv[2]), {int(x) for x in sys.argv[3:]}
for i in range(lo, hi):
    if i in skip:
        continue
    idb = bytes([i // 6] + [(i * 31 + j * 17) & 0xff for j in range(1, 32)])
    print(f"item,{1000 + i // 3},{idb.hex()}")
EOF
}

# The reference harness's output for these inputs.
INIT=61876a000136208d63e8989d10570b15db499c5b1702000197fa54cf1d4ac7c406edaf57446c7d50020001754\
7cddd3a46884ec24f70dffd777395020001b69946b298a00b5679716bf6b97e34d00200012ab179f478b0341990be8c4\
dc9a08852020001b62f7f60d13249ecb355d621056110e30200019be322f40e45993c1bdee6ad17421f0b02000100b8b\
96257c0845ae0187f802ac93680010204f901e4d56fb94f5f309fce8dcd673ff900450202047501a04e81b2ba1ac701b\
c91854e55a0432d0200016e8b433d235ee94e344626b28b3b9874010205f101106ff530f8288b32ac0f2506c7a47d490\
202052f01b1d3355bacdcf5279d38a6b2ab5cfa1a02000169288d4cb75a2cd7f72ae7686e64a05d010206ab01110616\
5cd05a3d17480671894a363fca0000017b5fa3b6a35598594d8aac14a8cdcd4e
RESP=61876a000002000202006e7f90a1b2c3d4e5f60718293a4b5c6d7e8fa0b1c2d3e4f5061728394a5b6c008d9eafc\
0d1e2f30415263748596a7b8c9daebfd0e1f2031425364758697a8b05000002000202033f5061728394a5b6c7d8e9fa0\
b1c2d3e4f60718293a4b5c6d7e8f90a1b2c3d035e6f8091a2b3c4d5e6f708192a3b4c5d6e7f90a1b2c3d4e5f6071829\
3a4b5c060206ab000000020406abbccddeef00112233445566778899aabbccddeeff102132435465768798a90608192a\
3b4c5d6e7f90a1b2c3d4e5f60718293a4b5c6d7e8fa0b1c2d3e4f50606cadbecfd0e1f30415263748596a7b8c9daebfc\
0d1e2f405162738495a6b7c806e9fa0b1c2d3e4f60718293a4b5c6d7e8f90a1b2c3d4e5f708192a3b4c5d6e7

# 1. Canned conversation.
{ golden_items 0 40; echo seal; echo initiate; } >"$TMP/a.in"
expect_exit 0 "$P4P" negentropy-harness <"$TMP/a.in"
[ "$(cat "$TMP/out")" = "msg,$INIT" ] || fail "initiate differs from the reference"

{ golden_items 0 42 5 20; echo seal; echo "msg,$INIT"; } >"$TMP/b.in"
expect_exit 0 "$P4P" negentropy-harness <"$TMP/b.in"
[ "$(cat "$TMP/out")" = "msg,$RESP" ] || fail "response differs from the reference"

{ golden_items 0 40; echo seal; echo initiate; echo "msg,$RESP"; } >"$TMP/a2.in"
expect_exit 0 "$P4P" negentropy-harness <"$TMP/a2.in"
cat >"$TMP/want" <<EOF
msg,$INIT
have,00acbdcedff00112233445566778899aabbccddeef00112233445566778899aa
have,037d8e9fb0c1d2e3f405162738495a6b7c8d9eafc0d1e2f30415263748596a7b
need,0608192a3b4c5d6e7f90a1b2c3d4e5f60718293a4b5c6d7e8fa0b1c2d3e4f506
need,06e9fa0b1c2d3e4f60718293a4b5c6d7e8f90a1b2c3d4e5f708192a3b4c5d6e7
done
EOF
diff -u "$TMP/want" "$TMP/out" >&2 || fail "initiator's have/need/done"

# 2-3. Two harness processes in conversation (the reference's fuzz.pl, in Python).
cat >"$TMP/drive.py" <<'EOF'
import os, random, subprocess, sys
recs, limit, rng = int(sys.argv[1]), int(sys.argv[2]), random.Random(int(sys.argv[3]))
cmd = sys.argv[4:]  # the harness command line
env = dict(os.environ, FRAMESIZELIMIT=str(limit))
h1, h2 = (subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env=env, bufsize=1) for _ in range(2))
ids1, ids2, in1, in2 = set(), set(), [], []
for _ in range(recs):
    line = "item,%d,%064x" % (1677970534 + rng.randrange(recs // 4 + 1), rng.getrandbits(256))
    r = rng.random()
    if r < 0.9 or r >= 0.95:
        in1.append(line); ids1.add(line[-64:])
    if r >= 0.9:
        in2.append(line); ids2.add(line[-64:])
want = ids1 | ids2
h1.stdin.write("\n".join(in1 + ["seal", "initiate"]) + "\n"); h1.stdin.flush()
h2.stdin.write("\n".join(in2 + ["seal"]) + "\n"); h2.stdin.flush()
rounds = 0
while True:
    m = h1.stdout.readline().strip()
    if m.startswith(("have,", "need,")):
        (ids2 if m[0] == "h" else ids1).add(m[5:])
        continue
    if m == "done":
        break
    assert m.startswith("msg,"), "initiator said %r" % m
    assert limit == 0 or len(m) // 2 - 2 <= limit, "initiator message over the limit"
    h2.stdin.write(m + "\n"); h2.stdin.flush()
    m = h2.stdout.readline().strip()
    assert m.startswith("msg,"), "responder said %r" % m
    assert limit == 0 or len(m) // 2 - 2 <= limit, "responder message over the limit"
    h1.stdin.write(m + "\n"); h1.stdin.flush()
    rounds += 1
    assert rounds < 20000, "no end"
for h in (h1, h2):
    h.stdin.close()
    assert h.wait() == 0, "a harness failed"
assert ids1 == want and ids2 == want, "sets differ after reconciliation"
print("rounds", rounds)
EOF
python3 "$TMP/drive.py" 20000 0 1 "$P4P" negentropy-harness >/dev/null ||
    fail "reconciliation without a frame limit"
python3 "$TMP/drive.py" 20000 4096 2 "$P4P" negentropy-harness >/dev/null ||
    fail "reconciliation with FRAMESIZELIMIT=4096"
python3 "$TMP/drive.py" 2000 200 3 "$P4P" negentropy-harness --nonstandard --buckets 4 \
    >/dev/null || fail "reconciliation in the non-standard 200-byte mode"

# 4. Errors.
printf 'seal\nfrob\n' >"$TMP/e.in"
expect_exit 2 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 2: unknown cmd: frob"
printf 'seal\nitem,1,%064d\n' 0 >"$TMP/e.in"
expect_exit 2 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 2: already sealed"
printf 'item,1,abcd\n' >"$TMP/e.in"
expect_exit 2 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 1: bad id"
printf 'msg,6100\n' >"$TMP/e.in"
expect_exit 2 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 1: not sealed"
printf 'seal\n' >"$TMP/e.in"
expect_exit 2 env FRAMESIZELIMIT=1000 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 1: cannot seal"
printf 'seal\nmsg,61000003\n' >"$TMP/e.in"
expect_exit 2 "$P4P" negentropy-harness <"$TMP/e.in"
expect_err "line 2: bad message: malformed input"
printf 'seal\nmsg,62aabbcc\nmsg,6100000200\n' >"$TMP/e.in"
expect_exit 0 "$P4P" negentropy-harness <"$TMP/e.in"
[ "$(cat "$TMP/out")" = "$(printf 'msg,61\nmsg,6100000200')" ] || fail "version downgrade answer"
expect_exit 2 "$P4P" negentropy-harness --buckets
exit 0
