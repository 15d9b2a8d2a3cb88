#!/bin/sh
# hvm vhd serve and hvm vm serve against hostile clients (issues 10 and 11):
# a client that closes while a large read is being spliced to it must not
# kill the server (SIGPIPE) nor lose another client's acknowledged write;
# clients that never finish the handshake are dropped after the handshake
# timeout, clients past the connection limit are refused with a log line, an
# idle client is dropped after the idle timeout, and the server keeps
# serving throughout.
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
    s.connect(path)
    s.settimeout(20)
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

# The same through hvm vm serve (one drive of a VM that is Off).
. "$TESTS/cli/vmlib.sh"
"$HVM" vhd create vbase.vhd --size 64M
"$HVM" vm create v1 --from vbase.vhd >/dev/null
rm -f "$T/v.sock"
"$HVM" vm serve v1 --socket "$T/v.sock" 2>"$T/vserve.err" &
SERVE_PID=$!
while [ ! -S "$T/v.sock" ]; do kill -0 $SERVE_PID 2>/dev/null || fail "vm serve exited early"; sleep 0.05; done
set +e
$PY hangup.py "$T/v.sock" >hangup.out 2>&1
py=$?
set -e
if ! kill -0 $SERVE_PID 2>/dev/null; then
    set +e; wait $SERVE_PID; rc=$?; set -e; SERVE_PID=
    cat "$T/vserve.err" >&2
    fail "vm serve died (exit $rc) from a client hanging up during a read"
fi
[ $py = 0 ] || { cat hangup.out "$T/vserve.err" >&2; fail "vm serve: hang-up client run"; }
kill -TERM $SERVE_PID; wait $SERVE_PID || fail "vm serve exited with an error after SIGTERM"
SERVE_PID=
grep -q "Sanitizer\|runtime error" "$T/vserve.err" && { cat "$T/vserve.err" >&2; fail "vm serve: sanitizer report"; }
vm_flat v1 v1.raw
dd if=v1.raw bs=1M skip=8 count=4 status=none of=v1.got
cmp w.bin v1.got || fail "vm serve: the acknowledged 4 MiB write is not in the drive after SIGTERM"

# A writer that has left has its writes in the files even if the server is
# then killed outright (no chance to flush at exit).
"$HVM" vhd create k.vhd --size 64M
serve_start k.vhd "$T/k.sock"
$PY -c 'import sys; sys.path.insert(0, "."); from nbd import *
w = go(sys.argv[1]); request(w, WRITE, 8 << 20, 4 << 20, open("w.bin", "rb").read())
send_request(w, DISC, 0, 0); w.close()' "$SOCK"
sleep 0.3
kill -9 $SERVE_PID; set +e; wait $SERVE_PID 2>/dev/null; set -e; SERVE_PID=
rm -f "$SOCK"
"$HVM" vhd convert k.vhd k.raw --type raw
dd if=k.raw bs=1M skip=8 count=4 status=none of=k.got
cmp w.bin k.got || fail "a departed writer's 4 MiB write was lost when the server was killed"

# ---- Issue 11: handshake timeout, connection limit, idle timeout ----
# 20 connections that never speak: the 16-client limit refuses the extra
# ones (a log line names the limit) while a connected client goes on; once
# the 1 s handshake timeout has passed a new client is served.
export HVM_NBD_HANDSHAKE_TIMEOUT=1
serve_start d.vhd "$T/t.sock"
unset HVM_NBD_HANDSHAKE_TIMEOUT
cat >flood.py <<'PYEOF'
import socket, sys, time
sys.path.insert(0, ".")
from nbd import *
path = sys.argv[1]
want = open("w.bin", "rb").read(1 << 20)
e = go(path)
assert request(e, READ, 8 << 20, 1 << 20) == want
idle = []
for i in range(20):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)  # blocking: waits for room in the listen backlog
    s.settimeout(5)
    idle.append(s)
start = time.monotonic()
time.sleep(0.3)
try:
    go(path)
    sys.exit("a client past the limit was served")
except (EOFError, ConnectionError):
    pass
assert request(e, READ, 8 << 20, 1 << 20) == want, "the connected client stopped being served"
# Every silent connection is closed: after the greeting (if it had a slot)
# comes the end of the stream, within the timeout and a margin.
for s in idle:
    try:
        while s.recv(4096):
            pass
    except ConnectionError:
        pass
waited = time.monotonic() - start
assert waited < 4, f"silent clients were held {waited:.1f} s"
n = go(path)
assert request(n, READ, 8 << 20, 1 << 20) == want
assert request(e, READ, 8 << 20, 1 << 20) == want
print("ok")
PYEOF
$PY flood.py "$SOCK" >flood.out 2>&1 || { cat flood.out "$T/serve.err" >&2; fail "silent clients locked out a real one"; }
kill -0 $SERVE_PID 2>/dev/null || fail "the server died under a flood of silent clients"
grep -q "refused .* the limit of 16 connected clients" "$T/serve.err" ||
    { cat "$T/serve.err" >&2; fail "no log line names the connection limit"; }
grep -q "no handshake within 1" "$T/serve.err" ||
    { cat "$T/serve.err" >&2; fail "no log line for the handshake timeout"; }
serve_stop

# An idle client and stalled readers (large reads never read) are dropped
# after the idle timeout and free their slots (the limit here: 2).
export HVM_NBD_IDLE_TIMEOUT=1 HVM_NBD_MAX_CLIENTS=2
serve_start d.vhd "$T/i.sock"
unset HVM_NBD_IDLE_TIMEOUT HVM_NBD_MAX_CLIENTS
cat >idle.py <<'PYEOF'
import sys, time
sys.path.insert(0, ".")
from nbd import *
path = sys.argv[1]
want = open("w.bin", "rb").read(1 << 20)
a = go(path)
time.sleep(2)
try:
    request(a, READ, 8 << 20, 1 << 20)
    sys.exit("an idle client was kept past the idle timeout")
except (EOFError, ConnectionError):
    pass
stalled = []
for i in range(2):
    s = go(path)
    for k in range(12):
        send_request(s, READ, 8 << 20, 1 << 20)
    stalled.append(s)
time.sleep(2.5)
n = go(path)
assert request(n, READ, 8 << 20, 1 << 20) == want
print("ok")
PYEOF
$PY idle.py "$SOCK" >idle.out 2>&1 || { cat idle.out "$T/serve.err" >&2; fail "idle timeout"; }
grep -q "idle timeout" "$T/serve.err" || { cat "$T/serve.err" >&2; fail "no log line for the idle timeout"; }
serve_stop

# A malformed limit is one clear line, and nothing is served.
set +e
HVM_NBD_HANDSHAKE_TIMEOUT=1x "$HVM" vhd serve d.vhd --socket "$T/x.sock" 2>x.err
rc=$?
set -e
[ $rc = 2 ] || fail "bad HVM_NBD_HANDSHAKE_TIMEOUT: exit $rc"
[ "$(wc -l <x.err)" = 1 ] && grep -q "HVM_NBD_HANDSHAKE_TIMEOUT=1x" x.err || { cat x.err >&2; fail "bad limit: message"; }
[ ! -e x.sock ] || fail "bad limit: socket left"
check_clean d.vhd

echo "t41 ok"
