#!/bin/sh
# The graphical console: vm screenshot gives a PNG of the VGA screen (the
# text mode's 720x400), written atomically; run/vnc.sock (0600) answers
# with the RFB banner, handed by the worker to QEMU; vm console --vnc
# prints the socket and --listen forwards loopback TCP to it. QEMU's
# command line names no socket or file for VNC.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

guest_vm g shell --new-disk 16M
expect_fail 2 "$HVM" vm screenshot g off.png
[ ! -e off.png ] || fail "a screenshot of an Off VM left a file"
"$HVM" vm start g --accel "$ACCEL"
console_mark g
wait_console g "HVM-GUEST READY" 60
sock="$HVM_STORE/vms/g/run/vnc.sock"
[ -S "$sock" ] || fail "no run/vnc.sock"
[ "$(stat -c %a "$sock")" = 600 ] || fail "run/vnc.sock is $(stat -c %a "$sock"), not 600"

# Screenshot: a valid PNG (signature, IHDR, CRCs, zlib data) of the screen.
echo old > shot.png
"$HVM" vm screenshot g shot.png > out.txt
grep -q "shot.png" out.txt || fail "screenshot prints nothing useful"
$PY - shot.png <<'PY' || fail "not a valid PNG of 720x400"
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
pos, idat, dims = 8, b'', None
while pos < len(b):
    n, = struct.unpack('>I', b[pos:pos + 4]); kind = b[pos + 4:pos + 8]; data = b[pos + 8:pos + 8 + n]
    crc, = struct.unpack('>I', b[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + data) == crc, 'crc of %r' % kind
    if kind == b'IHDR': dims = struct.unpack('>II', data[:8])
    if kind == b'IDAT': idat += data
    pos += 12 + n
assert dims == (720, 400), dims
raw = zlib.decompress(idat)
assert len(raw) == 400 * (1 + 720 * 3), len(raw)
PY
ls "$HVM_STORE/vms/g/run/" | grep -q screendump && fail "a screendump file is left in run/"
expect_fail 2 "$HVM" vm screenshot g "$T/no/such/dir/x.png"

# VNC over the socket: the RFB banner; two clients one after the other.
for i in 1 2; do
    $PY - "$sock" <<'PY' || fail "no RFB banner on run/vnc.sock (client $i)"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
banner = s.recv(12)
assert banner.startswith(b'RFB 003.00'), banner
s.sendall(banner)                       # our version: the same
n = s.recv(1)[0]; types = s.recv(n)      # security types
assert 1 in types, types                 # None (the socket is the access check)
PY
done
"$HVM" vm console g --vnc > vnc.txt
grep -q "$sock" vnc.txt || { cat vnc.txt; fail "console --vnc does not name the socket"; }
expect_fail 2 "$HVM" vm console g --vnc --listen 0.0.0.0:5999
last_error | grep -q "loopback" || fail "unclear --listen error"

# --listen: loopback TCP forwarded while the command runs.
port=$((20000 + $$ % 20000))
"$HVM" vm console g --vnc --listen 127.0.0.1:$port > listen.txt 2>&1 &
lpid=$!
i=0
until grep -q "forwarded" listen.txt; do i=$((i + 1)); [ $i -lt 100 ] || fail "--listen did not start"; sleep 0.1; done
$PY - $port <<'PY' || { kill $lpid; fail "no RFB banner through --listen"; }
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
assert s.recv(12).startswith(b'RFB 003.00')
PY
kill $lpid; wait $lpid 2>/dev/null || true

# QEMU's VNC server has no listener of its own.
qpid=$("$HVM" vm show g --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
[ -n "$qpid" ] || fail "vm show gives no QEMU pid"
tr '\0' '\n' < /proc/$qpid/cmdline > cmdline.txt
grep -qx none cmdline.txt && grep -q "^-vnc$" cmdline.txt || fail "QEMU's -vnc is not none"
grep -q "vnc.sock\|unix:" cmdline.txt && fail "QEMU's command line names a VNC socket"
"$HVM" vm turn-off g
wait_state g Off 10
[ ! -e "$sock" ] || fail "run/vnc.sock left after the VM stopped"
