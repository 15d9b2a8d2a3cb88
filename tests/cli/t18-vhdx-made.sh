#!/bin/sh
# VHDX files built from the spec by tests/cli/vhdx_make.py: 4 KiB logical
# sectors and 1 MiB blocks; differencing chains read like libvhdi and a raw
# model; parent errors (missing, replaced, VHD, other size); a log that
# needs replay, read like qemu-img after its replay and never written;
# damaged files refused with one line naming the file and the field.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
have qemu-img || skip "qemu-img not installed"
$PY -c 'import pyvhdi' 2>/dev/null || skip "python3-libvhdi not installed"
MAKE="import sys; sys.path.insert(0, '$TESTS/cli'); import vhdx_make as V, random; M = V.MiB"

one_line() { # WHAT TEXT: the last expect_fail printed one line holding TEXT
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err" >&2; fail "$1: not one line"; }
    grep -qF -- "$2" "$T/.err" || fail "$1: '$(last_error)' lacks '$2'"
}

# A chain of three (base, child, grandchild) with 4 KiB sectors in the
# middle layer's sibling, written at odd places; the model is the raw truth.
$PY - <<PYEOF
$MAKE
r = random.Random(18)
S = 40 * M
def model(name, writes, base=None):
    m = bytearray(open(base, "rb").read()) if base else bytearray(S)
    for o, b in writes:
        m[o:o + len(b)] = b
    open(name, "wb").write(m)
bw = [(0, r.randbytes(3 * M)), (10 * M, r.randbytes(M)), (39 * M, r.randbytes(M))]
V.build("base.vhdx", S, M, writes=bw)
model("base.raw", bw)
cw = [(512, r.randbytes(512)), (M - 1024, r.randbytes(4096)), (10 * M + 4096, r.randbytes(8192)),
      (20 * M, r.randbytes(2 * M))]
V.build("child.vhdx", S, 2 * M, writes=cw, parent="base.vhdx")
model("child.raw", cw, "base.raw")
gw = [(1024, r.randbytes(1024)), (20 * M + 512, r.randbytes(512))]
V.build("grand.vhdx", S, 8 * M, writes=gw, parent="child.vhdx",
        relative_path="child.vhdx")
model("grand.raw", gw, "child.raw")
# 4 KiB logical sectors (qemu-img cannot open those), a differencing child.
V.build("base4k.vhdx", S, M, logical=4096, writes=[(0, r.randbytes(8192)), (39 * M, r.randbytes(4096))])
V.build("child4k.vhdx", S, 4 * M, logical=4096, writes=[(4096, r.randbytes(4096))],
        parent="base4k.vhdx")
PYEOF
same_content base.vhdx base.raw
same_content child.vhdx child.raw
same_content grand.vhdx grand.raw
for f in base child grand; do check_clean $f.vhdx; done
# libvhdi reads the chains the same.
vhdi_read grand.vhdx g.vhdi child.vhdx base.vhdx
cmp g.vhdi grand.raw || fail "libvhdi reads grand.vhdx differently from the model"
vhdi_read child4k.vhdx c4.vhdi base4k.vhdx
"$HVM" vhd convert child4k.vhdx c4.raw --type raw
cmp c4.vhdi c4.raw || fail "hvm and libvhdi read child4k.vhdx differently"
"$HVM" vhd info --json child4k.vhdx >i.json
[ "$(jget i.json logical_sector_size)" = 4096 ] || fail "4k: logical sector size"
[ "$(jget i.json type)" = differencing ] || fail "4k: type"
"$HVM" vhd info --json --chain grand.vhdx >c.json
[ "$(jget c.json chain 2 file)" = base.vhdx ] || fail "chain: $(cat c.json)"
[ "$(jget c.json chain 0 parent_relative_path)" = child.vhdx ] || fail "relative path"
# Into a dynamic VHD (through the copy engine).
"$HVM" vhd convert grand.vhdx g.vhd
same_content g.vhd grand.raw

# Parent errors, each its own.
mkdir moved && cp child.vhdx moved/
expect_fail 2 "$HVM" vhd convert moved/child.vhdx x.raw --type raw
one_line "missing parent" "moved/child.vhdx: parent '.\\base.vhdx' not found (tried: moved/base.vhdx)"
$PY -c "$MAKE
V.build('moved/base.vhdx', 40 * M, M)"
expect_fail 2 "$HVM" vhd convert moved/child.vhdx x.raw --type raw
one_line "replaced parent" "but the child expects"
rm moved/base.vhdx
qemu-img convert -f raw -O vpc base.raw moved/base.vhdx 2>/dev/null ||
    "$HVM" vhd convert base.raw moved/base.vhdx
expect_fail 2 "$HVM" vhd convert moved/child.vhdx x.raw --type raw
one_line "VHD parent" "parent moved/base.vhdx is not a VHDX (a VHD); a VHDX child needs a VHDX parent"
rm moved/base.vhdx
$PY -c "$MAKE
V.build('moved/base.vhdx', 48 * M, M)
V.build('moved/c2.vhdx', 40 * M, M, parent='moved/base.vhdx')
V.build('moved/c3.vhdx', 40 * M, M, parent='moved/base.vhdx', relative_path='nowhere.vhdx',
        extra_locator=[('volume_path', '\\\\\\\\?\\\\Volume{0}\\\\x\\\\base.vhdx')])"
expect_fail 2 "$HVM" vhd info --chain moved/c2.vhdx
one_line "parent size" "is 50331648 bytes of 512-byte sectors but the child is 41943040"
# volume_path's file name, beside the child, when the relative path fails.
expect_fail 2 "$HVM" vhd info --chain moved/c3.vhdx
one_line "volume path fallback" "is 50331648 bytes"
[ ! -e x.raw ] || fail "a refused convert left x.raw"

# A log that needs replay: the file's BAT lacks two blocks the log maps, a
# zero descriptor and a data sector change block 0. hvm reads it as qemu
# does after qemu's replay, and leaves the file as it was.
$PY - <<PYEOF
$MAKE
r = random.Random(3)
w = [(0, r.randbytes(2 * M)), (4 * M, r.randbytes(M))]
good = V.build("log.vhdx", 24 * M, 2 * M, writes=w)
sector = good["bat_bytes"][:4096].ljust(4096, b"\0")
b0 = good["blocks"][0]
nd = r.randbytes(4096)
V.build("log.vhdx", 24 * M, 2 * M, writes=w, tweak={"bat": {0: 0, 2: 0}},
        log=[[(good["bat"], sector)], ([(b0 + 8192, nd)], [(b0, 4096)])])
# The same log starting near the end of the log area: the entries wrap.
V.build("wrap.vhdx", 24 * M, 2 * M, writes=w, tweak={"bat": {0: 0, 2: 0}, "log_start": M - 8192},
        log=[[(good["bat"], sector)], ([(b0 + 8192, nd)], [(b0, 4096)])])
PYEOF
before=$(sha log.vhdx)
"$HVM" vhd info --json log.vhdx >l.json
[ "$(jget l.json log_entries)" = 2 ] || fail "log entries: $(cat l.json)"
"$HVM" vhd convert log.vhdx log.raw --type raw
"$HVM" vhd check log.vhdx >chk.txt
grep -q "note: its log holds 2 entries" chk.txt || { cat chk.txt; fail "check of a dirty log"; }
[ "$(sha log.vhdx)" = "$before" ] || fail "reading log.vhdx changed the file"
cp log.vhdx q.vhdx
qemu-img check -q -r all q.vhdx >/dev/null 2>&1 || true
qemu-img convert -f vhdx -O raw q.vhdx q.raw
cmp log.raw q.raw || fail "hvm's log replay differs from qemu-img's"
"$HVM" vhd info --json wrap.vhdx >w.json
[ "$(jget w.json log_entries)" = 2 ] || fail "wrapped log: $(cat w.json)"
"$HVM" vhd convert wrap.vhdx wrap.raw --type raw
cmp wrap.raw q.raw || fail "wrapped log reads differently"

# Block states of a differencing child: NOT_PRESENT, UNDEFINED and UNMAPPED
# show the parent; ZERO reads as zeros (spec 2.5.1.1; libvhdi 20210425
# shows the parent there, so it is no oracle for this).
$PY - <<PYEOF
$MAKE
V.build("p8.vhdx", 8 * M, M, writes=[(0, b"p" * 8 * M)])
for st in (0, 1, 2, 3):
    V.build("s%d.vhdx" % st, 8 * M, M, writes=[(M, b"c" * 512)], parent="p8.vhdx",
            tweak={"bat": {0: st}})
PYEOF
for st in 0 1 2 3; do
    "$HVM" vhd convert s$st.vhdx s$st.raw --type raw
    got=$(head -c 1 s$st.raw | od -An -tx1 | tr -d ' ')
    case $st:$got in 2:00 | [013]:70) ;; *) fail "block state $st reads byte $got first";; esac
    [ "$(dd if=s$st.raw bs=1 skip=$((1 << 20)) count=1 2>/dev/null)" = c ] ||
        fail "block state $st: the child's sector is lost"
done

# Damage: one line naming the file and the field, never a crash.
$PY - <<PYEOF
$MAKE
cases = {
    "hdrs": {"bad_header": (0, 1)},
    "regs": {"bad_region": (0, 1)},
    "overlap": {"meta_off": 3 * M},
    "logoverlap": {"bat_off": M},
    "pastend": {"bat": {0: (900 << 20) | 6}},
    "state": {"bat": {1: 4}},
    "bsize": {"block_size": 3 * M},
    "lsec": {"logical": 1000},
    "vsize": {"size": 0},
    "version": {"version": 2},
    "batsmall": {"bat_len": 0},
    "region": {"regions": [(bytes(range(16)), 9 * M, M, 1)]},
    "item": {"items": [(bytes(16), b"12345678", 4)]},
    "noparent": {"has_parent": 1},
    "short": {"truncate_to": 2 * M + 4096},
}
for name, tweak in cases.items():
    V.build(name + ".vhdx", 8 * M, M, writes=[(0, b"x" * 4096)], tweak=tweak)
V.build("linkage.vhdx", 8 * M, M, parent="base.vhdx", tweak={"linkage": "nonsense"})
PYEOF
bad() { # NAME EXPECTED: info (and check, which opens the same way) refuse it
    expect_fail 2 "$HVM" vhd info "$1.vhdx"
    one_line "$1" "$1.vhdx: $2"
}
bad hdrs "VHDX header 1 (at 64 KiB): bad CRC-32C; header 2 (at 128 KiB): bad CRC-32C"
expect_fail 2 "$HVM" vhd check hdrs.vhdx
one_line "check hdrs" "hdrs.vhdx: VHDX header 1 (at 64 KiB): bad CRC-32C"
bad regs "VHDX region table: both copies (at 192 and 256 KiB) are invalid (bad CRC-32C)"
bad overlap "VHDX BAT region (at 3145728, 1048576 bytes) overlaps the metadata region"
bad logoverlap "VHDX log (at 1048576, 1048576 bytes) overlaps the BAT region"
bad pastend "VHDX BAT entry 0 (block 0): data at 943718400 is past the end of the file"
expect_fail 2 "$HVM" vhd check pastend.vhdx
one_line "check pastend" "pastend.vhdx: VHDX BAT entry 0 (block 0): data at 943718400 is past"
bad state "VHDX BAT entry 1 (block 1): state 4 is not defined"
bad bsize "VHDX file parameters: block size 3145728 (must be a power of two"
bad lsec "VHDX logical sector size 1000 (must be 512 or 4096)"
bad vsize "VHDX virtual disk size 0"
bad version "VHDX header 2: version 2 (only 1 is defined)"
bad batsmall "VHDX region table: BAT region at 3145728, 0 bytes"
bad region "VHDX region table: unknown required region {03020100-0504-0706-0809-0a0b0c0d0e0f}"
bad item "VHDX metadata: unknown required item {00000000-0000-0000-0000-000000000000}"
bad noparent "VHDX parent locator: no parent_linkage"
bad linkage "VHDX parent locator: parent_linkage 'nonsense' is not a GUID"
bad short "VHDX region table: BAT region (at 3145728, 1048576 bytes) is past the end of the file"
# One bad header: the other is current.
$PY -c "$MAKE
V.build('onehdr.vhdx', 8 * M, M, tweak={'bad_header': (1,)})
V.build('sameseq.vhdx', 8 * M, M, tweak={'seqs': (7, 7)})"
"$HVM" vhd info --json onehdr.vhdx >h.json
[ "$(jget h.json header)" = 1 ] || fail "one bad header: $(cat h.json)"
"$HVM" vhd info --json sameseq.vhdx >h.json
[ "$(jget h.json header_sequence)" = 7 ] || fail "equal sequence numbers: $(cat h.json)"
# A log entry with a bad CRC is no sequence: nothing to replay.
$PY -c "$MAKE
good = V.build('badlog.vhdx', 8 * M, M, writes=[(0, b'y' * 4096)])
V.build('badlog.vhdx', 8 * M, M, writes=[(0, b'y' * 4096)], log=[[(good['bat'], bytes(4096))]])
f = open('badlog.vhdx', 'r+b'); f.seek(M + 100); f.write(b'Z'); f.close()"
"$HVM" vhd info --json badlog.vhdx >b.json
case $(jget b.json log) in clean*"no valid entries"*) ;; *) fail "bad log CRC: $(cat b.json)";; esac
echo ok
