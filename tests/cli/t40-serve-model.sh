#!/bin/sh
# The model test for hvm vhd serve: a 3-deep chain (dynamic base, two
# differencing children), thousands of random reads and writes of random
# sizes (1 byte .. 256 KiB, aligned and not) into the top child through NBD
# with qemu-io as the client, applied to a raw reference at the same time.
# Every small read is checked byte for byte, larger ones where they hold a
# pattern; the whole disk is compared with the reference several times, and
# across a server restart. The base and middle layers must not change.
# Reproduce a failure with SEED=<seed printed below>.
. "$TESTS/cli/lib.sh"
for tool in qemu-io qemu-img; do
    command -v $tool >/dev/null 2>&1 || skip "$tool not installed"
done
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "seed: $SEED"
SIZE_MIB=40
BATCHES=${BATCHES:-8}
OPS=${OPS:-300}

compare() { # the whole served disk against the reference
    qemu-img compare -f raw -F raw "$URI" "$T/ref.raw" >"$T/cmp.out" 2>&1 ||
        { cat "$T/cmp.out" >&2; fail "served disk differs from the reference ($1, seed $SEED)"; }
}

# The generator and checker. State (model.json): the reference as runs of
# (start, pattern byte or -1 for random data), so that reads can name the
# pattern each part must hold; ref.raw holds the exact bytes.
cat >model.py <<'EOF'
import bisect, json, os, random, re, struct, sys

T = os.getcwd()
cmd = sys.argv[1]

def load():
    return json.load(open("model.json"))

def save(st):
    json.dump(st, open("model.json", "w"))

class Model:
    def __init__(self, st):
        self.size, self.starts, self.pats = st["size"], st["starts"], st["pats"]

    def state(self, st):
        st.update(starts=self.starts, pats=self.pats)

    def pat_at(self, x):
        return self.pats[bisect.bisect_right(self.starts, x) - 1]

    def mark(self, a, b, p):  # [a, b) now holds pattern p (-1: random)
        after = self.pat_at(b) if b < self.size else None
        i = bisect.bisect_left(self.starts, a)
        j = bisect.bisect_right(self.starts, b)
        del self.starts[i:j], self.pats[i:j]
        self.starts.insert(i, a); self.pats.insert(i, p)
        if after is not None:
            self.starts.insert(i + 1, b); self.pats.insert(i + 1, after)

    def segments(self, a, b):
        i = bisect.bisect_right(self.starts, a) - 1
        while i < len(self.starts) and self.starts[i] < b:
            end = self.starts[i + 1] if i + 1 < len(self.starts) else self.size
            yield max(self.starts[i], a), min(end, b), self.pats[i]
            i += 1

def rand_len(r):
    # 1 byte .. 256 KiB, log-uniform; half of them sector multiples
    n = int(2 ** r.uniform(0, 18))
    if r.random() < 0.5:
        n = max(512, n // 512 * 512)
    return max(1, min(n, 256 << 10))

def rand_off(r, size, n):
    off = r.randrange(0, size - n + 1)
    k = r.random()
    if k < 0.4:
        off = off // 512 * 512
    elif k < 0.5:
        off = off // (2 << 20) * (2 << 20) + r.choice([0, (2 << 20) - min(n, 4096)])
        off = min(max(off, 0), size - n)
    elif k < 0.55:
        off = size - n  # the end of the disk
    return off

if cmd == "init":  # init SEED SIZE_MIB: base.raw, random sources, state
    seed, mib = int(sys.argv[2]), int(sys.argv[3])
    r = random.Random(seed)
    size = mib << 20
    for k in range(8):
        open(f"rnd{k}.bin", "wb").write(r.randbytes(256 << 10))
    m = Model({"size": size, "starts": [0], "pats": [0]})
    with open("base.raw", "wb") as f:
        f.truncate(size)
        pos = 0
        while pos < size:
            n = min(size - pos, r.choice([4096, 65536, 1 << 20, 3 << 20]) + r.randrange(0, 3) * 512)
            k = r.random()
            if k < 0.35:  # random data
                f.seek(pos); f.write(r.randbytes(n)); m.mark(pos, pos + n, -1)
            elif k < 0.7:  # a pattern
                p = r.randrange(1, 256)
                f.seek(pos); f.write(bytes([p]) * n); m.mark(pos, pos + n, p)
            else:  # zeros: stays a hole
                m.mark(pos, pos + n, 0)
            pos += n
    st = {"size": size, "seed": seed}
    m.state(st)
    save(st)

elif cmd == "batch":  # batch NAME OPS: NAME.cmds (qemu-io input), NAME.expect
    name, ops = sys.argv[2], int(sys.argv[3])
    st = load()
    m = Model(st)
    r = random.Random(f"{st['seed']}-{name}")
    size = m.size
    srcs = [open(f"rnd{k}.bin", "rb").read() for k in range(8)]
    ref = open("ref.raw", "r+b")
    cmds, expect = [], []
    nwrites = nreads = 0
    for _ in range(ops):
        n = rand_len(r)
        off = rand_off(r, size, n)
        k = r.random()
        if k < 0.55:  # a write
            nwrites += 1
            fua = "-f " if r.random() < 0.1 else ""
            w = r.random()
            if w < 0.45:
                src = r.randrange(8)
                cmds.append(f"write {fua}-s {T}/rnd{src}.bin {off} {n}")
                data, p = srcs[src][:n], -1
            elif w < 0.85:
                p = r.randrange(0, 256)
                cmds.append(f"write {fua}-P {p} {off} {n}")
                data = bytes([p]) * n
            else:  # WRITE_ZEROES, sometimes allowed to unmap
                u = "-u " if r.random() < 0.5 else ""
                cmds.append(f"write {fua}-z {u}{off} {n}")
                data, p = bytes(n), 0
            ref.seek(off); ref.write(data)
            m.mark(off, off + n, p)
        else:  # a read
            nreads += 1
            if n <= 32 << 10:  # checked byte for byte from the hex dump
                ref.seek(off)
                expect.append((off, ref.read(n)))
                cmds.append(f"read -v {off} {n}")
            else:  # checked where it holds a pattern
                segs = [s for s in m.segments(off, off + n) if s[2] >= 0]
                if len(segs) > 4:
                    segs = segs[:2] + r.sample(segs[2:-1], 1) + segs[-1:]
                if not segs:
                    cmds.append(f"read {off} {n}")
                for a, b, p in segs:
                    cmds.append(f"read -P {p} -s {a - off} -l {b - a} {off} {n}")
                nreads += max(len(segs), 1) - 1
    ref.close()
    open(f"{name}.cmds", "w").write("\n".join(cmds) + "\n")
    with open(f"{name}.expect", "wb") as f:
        f.write(struct.pack(">II", nwrites, nreads))
        for off, data in expect:
            f.write(struct.pack(">QI", off, len(data)) + data)
    m.state(st)
    save(st)

elif cmd == "check":  # check NAME OUTPUT: the qemu-io output of a batch
    name, out = sys.argv[2], open(sys.argv[3]).read()
    e = open(f"{name}.expect", "rb").read()
    nwrites, nreads = struct.unpack(">II", e[:8])
    recs, pos = [], 8
    while pos < len(e):
        off, n = struct.unpack(">QI", e[pos:pos + 12])
        recs.append((off, e[pos + 12:pos + 12 + n])); pos += 12 + n
    bad = [l for l in out.splitlines() if re.search(r"fail|error|denied|permitted|invalid", l, re.I)]
    if bad:
        sys.exit(f"{name}: qemu-io reported: {bad[:5]}")
    got_w = len(re.findall(r"^(?:qemu-io> )*wrote \d+/\d+ bytes", out, re.M))
    got_r = len(re.findall(r"^(?:qemu-io> )*read \d+/\d+ bytes", out, re.M))
    if (got_w, got_r) != (nwrites, nreads):
        sys.exit(f"{name}: {got_w} writes and {got_r} reads done, expected {nwrites} and {nreads}")
    # Hex dumps: "OFFSET:  hh hh ... ascii", then "read N/N bytes at offset X".
    dumps, cur = [], bytearray()
    for line in out.splitlines():
        line = re.sub(r"^(qemu-io> )+", "", line)
        h = re.match(r"^([0-9a-f]{8}):  ((?:[0-9a-f]{2} )+)", line)
        if h:
            if not cur:
                start = int(h.group(1), 16)
            cur += bytes.fromhex(h.group(2))
            continue
        rd = re.match(r"^read (\d+)/\d+ bytes at offset (\d+)", line)
        if rd and cur:
            dumps.append((start, int(rd.group(2)), bytes(cur)))
            cur = bytearray()
    if len(dumps) != len(recs):
        sys.exit(f"{name}: {len(dumps)} hex dumps, expected {len(recs)}")
    for (start, off, got), (eoff, want) in zip(dumps, recs):
        if off != eoff or start != eoff or got != want:
            i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)
            sys.exit(f"{name}: read {eoff}+{len(want)} differs (got {len(got)} bytes from "
                     f"{start}, first difference at +{i})")
EOF

# The chain: base (dynamic, data from convert), mid (written through serve),
# top (the model's target).
$PY model.py init "$SEED" $SIZE_MIB
"$HVM" vhd convert base.raw base.vhd --type dynamic
cp base.raw ref.raw
"$HVM" vhd diff base.vhd mid.vhd

run_batch() { # NAME OPS
    $PY model.py batch "$1" "$2"
    qemu-io -f raw "$URI" <"$1.cmds" >"$1.out" 2>&1 || { tail -5 "$1.out" >&2; fail "qemu-io exited $? in $1 (seed $SEED)"; }
    $PY model.py check "$1" "$1.out" || fail "batch $1 (seed $SEED)"
    rm -f "$1.out"
}

serve_start mid.vhd "$T/mid.sock"
compare "base through mid"
run_batch mid 300
compare "mid written"
serve_stop
"$HVM" vhd diff mid.vhd top.vhd
base_sha=$(sha base.vhd)
mid_sha=$(sha mid.vhd)
cp ref.raw mid-ref.raw

serve_start top.vhd "$T/top.sock"
compare "top, fresh"
b=1
while [ $b -le "$BATCHES" ]; do
    run_batch top$b "$OPS"
    if [ $((b % 2)) = 0 ]; then compare "after batch $b"; fi
    if [ $b = $((BATCHES / 2)) ]; then # persistence across a restart
        serve_stop
        "$HVM" vhd check top.vhd >/dev/null || fail "check top.vhd mid-way"
        serve_start top.vhd "$T/top.sock"
        compare "after restart"
    fi
    b=$((b + 1))
done
compare "final"
serve_stop

[ "$(sha base.vhd)" = "$base_sha" ] || fail "base.vhd changed"
[ "$(sha mid.vhd)" = "$mid_sha" ] || fail "mid.vhd changed"
for f in base.vhd mid.vhd top.vhd; do
    "$HVM" vhd check "$f" >"$T/chk" 2>&1 || { cat "$T/chk" >&2; fail "check $f"; }
done
same_content top.vhd ref.raw
same_content mid.vhd mid-ref.raw
same_content base.vhd base.raw
echo "ok: $((300 + BATCHES * OPS)) random operations, seed $SEED"
