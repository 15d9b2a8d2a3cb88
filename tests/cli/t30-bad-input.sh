#!/bin/sh
# Damaged and hostile images, crafted with python from hvm-made ones: every
# one gives a clear one-line error naming the file, exit 2 (check: 1 or 2),
# never a sanitizer report, a crash or a huge allocation.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
DISKIO=${BUILD:-}/tests/diskio

# Sources: a dynamic disk with data, a fixed disk, a differencing child.
mkraw data.raw 8 41
"$HVM" vhd convert data.raw dyn.vhd
"$HVM" vhd convert data.raw fix.vhd --type fixed
"$HVM" vhd convert data.raw base.vhd
"$HVM" vhd diff base.vhd diff.vhd --no-protect
if [ -x "$DISKIO" ]; then "$DISKIO" fill diff.vhd 1048576 65536 0x5a; fi

$PY - <<'EOF'
import os, shutil, struct

def csum(b, off):
    b[off:off + 4] = bytes(4)
    b[off:off + 4] = struct.pack(">I", ~sum(b) & 0xFFFFFFFF)

def load(src):
    return bytearray(open(src, "rb").read())

def save(name, d):
    open(name, "wb").write(d)

def footers(d, fn, fix=True):
    """apply fn to both footer copies (of a sparse disk), fixing checksums"""
    for off in (0, len(d) - 512):
        f = d[off:off + 512]
        fn(f)
        if fix:
            csum(f, 64)
        d[off:off + 512] = f

def header(d, fn, fix=True):
    off = struct.unpack(">Q", d[16:24])[0]
    h = d[off:off + 1024]
    fn(h)
    if fix:
        csum(h, 36)
    d[off:off + 1024] = h

def bat(d):
    off = struct.unpack(">Q", d[512 + 16:512 + 24])[0]
    n = struct.unpack(">I", d[512 + 28:512 + 32])[0]
    return off, list(struct.unpack(">%dI" % n, d[off:off + 4 * n]))

def set_bat(d, i, v):
    off, _ = bat(d)
    d[off + 4 * i:off + 4 * i + 4] = struct.pack(">I", v)

dyn, fix, dif = load("dyn.vhd"), load("fix.vhd"), load("diff.vhd")
_, entries = bat(dyn)
used = [i for i, e in enumerate(entries) if e != 0xFFFFFFFF]
assert len(used) >= 2, entries

# Truncated files.
save("trunc-100.vhd", dyn[:100])
save("trunc-511.vhd", dyn[:511])
save("trunc-1000.vhd", dyn[:1000])
save("trunc-bat.vhd", dyn[:1536 + 100])
save("trunc-block.vhd", dyn[:len(dyn) // 2])
save("trunc-footer.vhd", dyn[:-100])
save("trunc-fixed.vhd", fix[:-512])
save("trunc-fixed-half.vhd", fix[:len(fix) // 2])
# Footer checksums: the end bad with a good copy at 0 (recoverable), both
# bad, a fixed disk's only footer bad.
d = load("dyn.vhd"); d[-512 + 64] ^= 0xFF; save("foot-end-bad.vhd", d)
d = load("dyn.vhd"); d[-512 + 64] ^= 0xFF; d[64] ^= 0xFF; save("foot-both-bad.vhd", d)
d = load("fix.vhd"); d[-512 + 64] ^= 0xFF; save("foot-fixed-bad.vhd", d)
d = load("dyn.vhd"); d[-512:-504] = b"garbage!"; d[0:8] = b"garbage!"; save("cookie-bad.vhd", d)
# Header checksum and cookie.
d = load("dyn.vhd"); d[512 + 36] ^= 0xFF; save("head-csum.vhd", d)
d = load("dyn.vhd"); header(d, lambda h: h.__setitem__(slice(0, 8), b"cxsparsX")); save("head-cookie.vhd", d)
# BAT entries past the end, into the metadata, overlapping, at the 32-bit top.
d = load("dyn.vhd"); set_bat(d, used[0], len(d) // 512 + 100); save("bat-past-end.vhd", d)
d = load("dyn.vhd"); set_bat(d, used[0], 0xFFFFFFFE); save("bat-max.vhd", d)
d = load("dyn.vhd"); set_bat(d, used[0], 0xFFFFFF00); save("bat-far.vhd", d)
d = load("dyn.vhd"); set_bat(d, used[0], 1); save("bat-in-header.vhd", d)
d = load("dyn.vhd"); set_bat(d, used[1], entries[used[0]]); save("bat-same.vhd", d)
d = load("dyn.vhd"); set_bat(d, used[1], entries[used[0]] + 8); save("bat-overlap.vhd", d)
# Absurd sizes.
def size(v):
    def f(b):
        b[40:48] = struct.pack(">Q", v); b[48:56] = struct.pack(">Q", v)
    return f
d = load("dyn.vhd"); footers(d, size(3 << 40)); save("size-3t.vhd", d)
d = load("dyn.vhd"); footers(d, size((8 << 20) + 100)); save("size-odd.vhd", d)
d = load("dyn.vhd"); footers(d, size(1 << 63)); save("size-huge.vhd", d)
d = load("fix.vhd"); footers(d, size(1 << 40)); save("size-fixed-big.vhd", d)
d = load("dyn.vhd"); footers(d, lambda b: b.__setitem__(slice(60, 64), struct.pack(">I", 7))); save("type-7.vhd", d)
d = load("dyn.vhd"); footers(d, lambda b: b.__setitem__(slice(16, 24), struct.pack(">Q", 1 << 62))); save("dataoff-huge.vhd", d)
d = load("dyn.vhd"); footers(d, lambda b: b.__setitem__(slice(16, 24), struct.pack(">Q", 0))); save("dataoff-zero.vhd", d)
# max_table_entries: huge (vs the file), too small for the size.
def mte(v):
    return lambda h: h.__setitem__(slice(28, 32), struct.pack(">I", v))
d = load("dyn.vhd"); header(d, mte(0xFFFFFFFF)); save("mte-huge.vhd", d)
d = load("dyn.vhd"); header(d, mte(0x10000000)); save("mte-big.vhd", d)
d = load("dyn.vhd"); header(d, mte(2)); save("mte-small.vhd", d)
d = load("dyn.vhd"); header(d, lambda h: h.__setitem__(slice(16, 24), struct.pack(">Q", 1 << 63))); save("bat-offset-huge.vhd", d)
# Block sizes.
for name, v in (("bs-0", 0), ("bs-3", 3), ("bs-1g", 1 << 30), ("bs-4g-1", 0xFFFFFFFF), ("bs-768k", 768 << 10)):
    d = load("dyn.vhd"); header(d, lambda h, v=v: h.__setitem__(slice(32, 36), struct.pack(">I", v))); save(name + ".vhd", d)
# Locators with garbage offsets and lengths (the parent name still finds
# the parent), and with the parent name blanked too.
def garbage_locators(h):
    for i in range(8):
        e = 576 + 24 * i
        if h[e:e + 4] != bytes(4):
            h[e + 4:e + 8] = struct.pack(">I", 0xFFFFFFFF)        # space
            h[e + 8:e + 12] = struct.pack(">I", 0xFFFFFFF0 + i)  # length
            h[e + 16:e + 24] = struct.pack(">Q", (1 << 63) + i)  # offset
d = load("diff.vhd"); header(d, garbage_locators); save("loc-garbage.vhd", d)
def short_locators(h):
    for i in range(8):
        e = 576 + 24 * i
        if h[e:e + 4] != bytes(4):
            h[e + 4:e + 8] = struct.pack(">I", 1)                  # 1 sector
            h[e + 8:e + 12] = struct.pack(">I", 5000)              # longer
def inside_bat(h):
    for i in range(8):
        e = 576 + 24 * i
        if h[e:e + 4] != bytes(4):
            h[e + 8:e + 12] = struct.pack(">I", 7)                 # odd length
            h[e + 16:e + 24] = struct.pack(">Q", 1536)             # the BAT
d = load("diff.vhd"); header(d, short_locators); save("loc-short.vhd", d)
d = load("diff.vhd"); header(d, inside_bat); save("loc-bat.vhd", d)
def no_parent(h):
    garbage_locators(h)
    h[64:576] = bytes(512)
d = load("diff.vhd"); header(d, no_parent); save("loc-none.vhd", d)
def unknown_codes(h):
    for i in range(8):
        e = 576 + 24 * i
        h[e:e + 4] = b"Zz%d!" % i
    h[64:576] = bytes(512)
d = load("diff.vhd"); header(d, unknown_codes); save("loc-unknown.vhd", d)
# A differencing disk whose parent name is invalid UTF-16 (lone surrogates).
def bad_name(h):
    garbage_locators(h)
    h[64:576] = (b"\xd8\x00\xd8\x00\xdc\x00\xdf\xff" * 64)[:510] + bytes(2)
d = load("diff.vhd"); header(d, bad_name); save("name-bad.vhd", d)
# Random garbage of several sizes, with a valid-looking footer cookie.
import random
rng = random.Random(5)
for n in (512, 4096, 70000):
    g = bytearray(rng.randbytes(n)); g[-512:-504] = b"conectix"; save("garbage-%d.vhd" % n, g)
EOF

# run_expect NAME OPEN_RC CHECK_RCS: info --chain and convert exit with
# OPEN_RC; check exits with one of CHECK_RCS.
run_expect() {
    rf=$1 want=$2 checks=$3
    for cmd in info convert; do
        set +e
        if [ $cmd = info ]; then
            "$HVM" vhd info --chain "$rf" >"$T/.out" 2>"$T/.err"
        else
            rm -f "$T/out.raw"
            "$HVM" vhd convert "$rf" "$T/out.raw" --type raw >"$T/.out" 2>"$T/.err"
        fi
        rc=$?
        set -e
        grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$T/.err" && { cat "$T/.err"; fail "$cmd $rf: sanitizer report"; }
        [ $rc = "$want" ] || { cat "$T/.err"; fail "$cmd $rf exited $rc, expected $want"; }
        if [ $rc = 2 ]; then
            [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$cmd $rf: not one line"; }
            grep -q "$rf" "$T/.err" || fail "$cmd $rf: file not named: $(cat "$T/.err")"
            [ $cmd = convert ] && [ -e "$T/out.raw" ] && fail "convert $rf left its output"
        fi
    done
    set +e
    "$HVM" vhd check "$rf" >"$T/.out" 2>"$T/.err"
    rc=$?
    set -e
    grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$T/.out" "$T/.err" && { cat "$T/.err"; fail "check $rf: sanitizer report"; }
    case " $checks " in *" $rc "*) ;; *) cat "$T/.out" "$T/.err"; fail "check $rf exited $rc, expected one of $checks";; esac
    [ $rc = 0 ] || grep -q "$rf" "$T/.out" "$T/.err" || fail "check $rf: file not named"
    # repair never crashes, and never turns a refused image into a sanitizer report.
    [ -f "$rf" ] || return 0
    cp "$rf" "$T/rep.vhd"
    set +e
    "$HVM" vhd repair "$T/rep.vhd" >"$T/.out" 2>"$T/.err"
    rc=$?
    set -e
    grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$T/.out" "$T/.err" && { cat "$T/.err"; fail "repair $rf: sanitizer report"; }
    [ $rc = 0 ] || [ $rc = 2 ] || fail "repair $rf exited $rc"
    rm -f "$T/rep.vhd"
}
# msg NAME PATTERN: the last error (of check) names the problem.
msg() {
    set +e; "$HVM" vhd info --chain "$1" >/dev/null 2>"$T/.err"; set -e
    grep -q -- "$2" "$T/.err" || fail "$1: message does not match '$2': $(cat "$T/.err")"
}

for f in trunc-100 trunc-511 trunc-1000 trunc-bat trunc-block trunc-fixed \
         trunc-fixed-half foot-both-bad foot-fixed-bad cookie-bad head-csum head-cookie \
         bat-past-end bat-max bat-far bat-in-header bat-same bat-overlap size-3t size-odd \
         size-huge size-fixed-big type-7 dataoff-huge dataoff-zero mte-huge mte-big \
         mte-small bat-offset-huge bs-0 bs-3 bs-1g bs-4g-1 bs-768k loc-none loc-unknown \
         name-bad garbage-512 garbage-4096 garbage-70000; do
    run_expect $f.vhd 2 "1 2"
done
msg trunc-100.vhd "not a VHD file"
msg trunc-1000.vhd "outside the file"
msg trunc-block.vhd "past the end"
msg trunc-fixed.vhd "not a VHD file"
msg foot-both-bad.vhd "footer checksum mismatch"
msg foot-fixed-bad.vhd "footer checksum mismatch"
msg cookie-bad.vhd "not a VHD file"
msg head-csum.vhd "dynamic header checksum mismatch"
msg head-cookie.vhd "no dynamic disk header"
msg bat-past-end.vhd "BAT entry"
msg bat-in-header.vhd "overlaps the header"
# An entry far beyond the file is reported as such, and leaked space is
# counted inside the file only (not up to where the entry points).
for f in bat-far bat-max bat-past-end; do
    set +e; "$HVM" vhd check $f.vhd >"$T/.chk" 2>&1; set -e
    grep -q "beyond the end of the file" "$T/.chk" || fail "$f: $(cat "$T/.chk")"
    leak=$(sed -n 's/.* \([0-9]*\) bytes of leaked space.*/\1/p' "$T/.chk")
    [ "${leak:-0}" -lt "$(stat -c %s $f.vhd)" ] || fail "$f: leaked space beyond the file: $(cat "$T/.chk")"
done
msg bat-same.vhd "overlap"
msg bat-overlap.vhd "overlap"
msg size-3t.vhd "beyond the VHD limit"
msg size-odd.vhd "not a multiple of 512"
msg size-fixed-big.vhd "truncated"
msg type-7.vhd "unsupported disk type 7"
msg mte-huge.vhd "BAT"
msg mte-small.vhd "BAT has 2 entries"
msg bs-0.vhd "block size 0"
msg bs-3.vhd "block size 3 "
msg bs-1g.vhd "block size 1073741824"
msg bs-768k.vhd "block size 786432"
msg loc-none.vhd "not found"
# Recoverable: the footer at the end is bad, the copy at 0 good.
run_expect foot-end-bad.vhd 0 "1"
"$HVM" vhd check foot-end-bad.vhd | grep -q "footer at the end is damaged" || fail "foot-end-bad: not reported"
same_content foot-end-bad.vhd data.raw
# A footer cut short (the last 100 bytes gone): the copy at 0 is used.
run_expect trunc-footer.vhd 0 "1"
same_content trunc-footer.vhd data.raw
"$HVM" vhd repair trunc-footer.vhd >/dev/null
check_clean trunc-footer.vhd
same_content trunc-footer.vhd data.raw
# Garbage locators: the parent is still found by its name; check reports
# the locators, and reads are right.
for f in loc-garbage loc-short loc-bat; do
    run_expect $f.vhd 0 "1"
    "$HVM" vhd check $f.vhd | grep -q "locator" || fail "$f: locators not reported"
    "$HVM" vhd info --json $f.vhd >/dev/null
done
"$HVM" vhd convert diff.vhd diff.raw --type raw
same_content loc-garbage.vhd diff.raw
same_content loc-short.vhd diff.raw

# Neither a file nor a VHD.
mkdir folder.vhd
run_expect folder.vhd 2 "2"
: >empty.vhd
run_expect empty.vhd 2 "2"
msg empty.vhd "not a VHD file"
mkfifo fifo.vhd fifo.raw
for verb in info check; do
    expect_fail 2 timeout 20 "$HVM" vhd $verb fifo.vhd
    grep -q "fifo.vhd" .err || fail "fifo: $(last_error)"
done
expect_fail 2 timeout 20 "$HVM" vhd convert fifo.raw out.vhd
grep -q "fifo.raw: not a regular file" .err || fail "fifo source: $(last_error)"
# An empty raw source cannot become a VHD: the message names DST, not a
# temporary file.
: >zero.raw
expect_fail 2 "$HVM" vhd convert zero.raw zero.vhd
grep -q "^hvm: zero.vhd: size must be" .err || fail "empty source: $(last_error)"
ls | grep -q converting && fail "a failed convert left a temporary file"
expect_fail 2 "$HVM" vhd check missing.vhd
grep -q "missing.vhd" .err || fail "missing file not named"
expect_fail 2 "$HVM" vhd info /dev/null
# A sparse file far larger than memory with a BAT of 2^28 entries: refused
# (or read) without allocating gigabytes.
cp mte-big.vhd mte-big-sparse.vhd
$PY - mte-big-sparse.vhd <<'EOF'
import os, sys
p = sys.argv[1]
d = open(p, "rb").read()
foot = d[-512:]
with open(p, "r+b") as f:
    f.truncate(5 << 30)
    f.seek((5 << 30) - 512); f.write(foot)
EOF
run_expect mte-big-sparse.vhd 2 "1 2"
msg mte-big-sparse.vhd "more than any disk of 2097152-byte blocks"
echo ok
