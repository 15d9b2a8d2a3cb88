#!/bin/sh
# hvm vhd serve: command-line errors (one line, exit 2), then the protocol
# from a raw client: error codes for bad requests, the handshake options,
# read-only refusals, and garbage or hostile clients that must neither crash
# the server nor keep it from stopping.
. "$TESTS/cli/lib.sh"

# one_line_error CMD...: exit 2 with exactly one line "hvm: ..." on stderr
# (timeout: a command that wrongly starts serving must not hang the test).
one_line_error() {
    expect_fail 2 timeout 20 "$@"
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err" >&2; fail "$*: not one line"; }
    grep -q "^hvm: " "$T/.err" || { cat "$T/.err" >&2; fail "$*: no 'hvm: ' prefix"; }
}

"$HVM" vhd create d.vhd --size 16M
"$HVM" vhd create base.vhd --size 16M
"$HVM" vhd diff base.vhd child.vhd
echo "just some text" >notes.txt

# ---- Command-line errors ----
one_line_error "$HVM" vhd serve missing.vhd --socket s.sock
grep -q "missing.vhd" "$T/.err" || fail "missing file: message does not name it"
one_line_error "$HVM" vhd serve notes.txt --socket s.sock
grep -q "not a VHD" "$T/.err" || fail "text file: $(last_error)"
one_line_error "$HVM" vhd serve base.vhd --socket s.sock
grep -q "protected" "$T/.err" || fail "protected parent: $(last_error)"
one_line_error "$HVM" vhd serve d.vhd --socket "$T/no/such/dir/s.sock"
one_line_error "$HVM" vhd serve d.vhd --socket "$T/$(printf '%0120d' 0).sock"
one_line_error "$HVM" vhd serve d.vhd --socket notes.txt
[ "$(cat notes.txt)" = "just some text" ] || fail "a regular file was replaced by the socket"
expect_fail 2 "$HVM" vhd serve d.vhd
expect_fail 2 "$HVM" vhd serve --socket s.sock
expect_fail 2 "$HVM" vhd serve d.vhd --socket s.sock --bogus
[ ! -e s.sock ] || fail "a failed serve left a socket"

# A stale socket file is replaced; a live one (another server) is refused.
$PY -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind("stale.sock")'
[ -S stale.sock ] || fail "could not make a stale socket"
serve_start d.vhd "$T/stale.sock"
# (the stale file satisfied serve_start at once: wait for the real server)
i=0
until $PY -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' stale.sock 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "server on stale.sock never answered"; sleep 0.05
done
one_line_error "$HVM" vhd serve child.vhd --socket "$T/stale.sock"
grep -q "another server" "$T/.err" || fail "live socket: $(last_error)"
serve_stop

# The protected parent may be served read-only.
serve_start base.vhd "$T/base.sock" --read-only
serve_stop

# ---- The protocol, from a raw client ----
cat >client.py <<'EOF'
import os, random, socket, struct, sys, time

NBDMAGIC, IHAVEOPT, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, SIMPLE, STRUCT = 0x25609513, 0x67446698, 0x668E33EF
ACK, SERVER, INFO, META = 1, 2, 3, 4
ERR_UNSUP, ERR_INVALID = 2**31 + 1, 2**31 + 3
READ, WRITE, DISC, FLUSH, TRIM, CACHE, ZEROES, STATUS = range(8)
EPERM, EINVAL, ENOSPC = 1, 22, 28

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"closed after {len(b)}/{n} bytes")
        b += c
    return b

def connect(path, cflags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(path)
    magic, opt, hflags = struct.unpack(">QQH", recvn(s, 18))
    assert (magic, opt) == (NBDMAGIC, IHAVEOPT) and hflags & 1, (magic, opt, hflags)
    s.sendall(struct.pack(">I", cflags))
    return s

def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    replies = []
    while True:
        magic, o, typ, n = struct.unpack(">QIII", recvn(s, 20))
        assert magic == REPMAGIC and o == opt, (hex(magic), o, opt)
        replies.append((typ, recvn(s, n)))
        if typ == ACK or typ & 2**31:
            return replies

def meta(names):
    q = b"".join(struct.pack(">I", len(n)) + n for n in names)
    return struct.pack(">I", 0) + struct.pack(">I", len(names)) + q

def go(path, structured=True, base_alloc=True):
    s = connect(path)
    if structured:
        assert option(s, 8) == [(ACK, b"")]
        if base_alloc:
            r = option(s, 10, meta([b"base:allocation"]))
            assert r[0][0] == META and r[0][1][4:] == b"base:allocation" and r[-1][0] == ACK, r
    r = option(s, 7, struct.pack(">IH", 0, 0))
    assert r[-1][0] == ACK, r
    size = flags = None
    for typ, d in r:
        if typ == INFO and struct.unpack(">H", d[:2])[0] == 0:
            _, size, flags = struct.unpack(">HQH", d)
    assert size is not None, r
    return s, size, flags

handle = 0
def request(s, typ, off, n, flags=0, data=b""):
    """Returns (error, data, extents)."""
    global handle
    handle += 1
    s.sendall(struct.pack(">IHHQQI", REQ, flags, typ, handle, off, n) + data)
    magic = struct.unpack(">I", recvn(s, 4))[0]
    if magic == SIMPLE:
        err, h = struct.unpack(">IQ", recvn(s, 12))
        assert h == handle
        return err, (recvn(s, n) if typ == READ and err == 0 else b""), None
    assert magic == STRUCT, hex(magic)
    err, out, ext = 0, bytearray(), None
    while True:
        cflags, ctype, h, clen = struct.unpack(">HHQI", recvn(s, 16))
        assert h == handle
        payload = recvn(s, clen)
        if ctype == 1:
            out += payload[8:]
        elif ctype == 5:
            ext = [struct.unpack(">II", payload[4 + 8 * i:12 + 8 * i]) for i in range((clen - 4) // 8)]
        elif ctype & 0x8000:
            err = struct.unpack(">I", payload[:4])[0]
        if cflags & 1:
            return err, bytes(out), ext

def expect(got, want, what):
    if got != want:
        sys.exit(f"{what}: got {got}, expected {want}")

def protocol(path):
    s = connect(path)
    r = option(s, 3)  # LIST: one export, the default
    expect([t for t, _ in r], [SERVER, ACK], "LIST")
    expect(option(s, 99)[-1][0], ERR_UNSUP, "unknown option")
    expect(option(s, 10, meta([b"base:allocation"]))[-1][0], ERR_INVALID, "meta before structured")
    expect(option(s, 8, b"x")[-1][0], ERR_INVALID, "STRUCTURED_REPLY with data")
    expect(option(s, 7, b"\0\0")[-1][0], ERR_INVALID, "truncated GO")
    expect(option(s, 7, struct.pack(">I", 1000) + b"\0\0")[-1][0], ERR_INVALID, "bad name length")
    option(s, 8)
    r = option(s, 9, meta([]))  # LIST_META_CONTEXT, everything
    expect([(t, d[4:]) for t, d in r], [(META, b"base:allocation"), (ACK, b"")], "list meta")
    r = option(s, 10, meta([b"x-nope:thing"]))
    expect([t for t, _ in r], [ACK], "unknown context")
    r = option(s, 6, struct.pack(">I", 3) + b"abc" + struct.pack(">HH", 1, 1))  # INFO, NAME
    expect(r[-1][0], ACK, "INFO")
    assert any(t == INFO and d == b"\0\x01abc" for t, d in r), r
    expect(option(s, 2), [(ACK, b"")], "ABORT")
    s.close()

    s, size, flags = go(path)
    expect(flags & 0x16d, 0x16d, "transmission flags")  # HAS_FLAGS FLUSH FUA TRIM ZEROES MULTI_CONN
    M = 1 << 20
    expect(request(s, READ, size - 10, 20)[0], EINVAL, "read past the end")
    expect(request(s, READ, 2**64 - 512, 1024)[0], EINVAL, "read at a wrapping offset")
    expect(request(s, READ, 0, 0)[0], EINVAL, "empty read")
    expect(request(s, READ, 0, 33 * M)[0], EINVAL, "oversized read")
    expect(request(s, WRITE, size - 1, 2, data=b"xy")[0], ENOSPC, "write past the end")
    expect(request(s, ZEROES, size - 512, 1024)[0], ENOSPC, "write zeroes past the end")
    expect(request(s, TRIM, size, 512)[0], EINVAL, "trim past the end")
    expect(request(s, STATUS, size, 1)[0], EINVAL, "block status past the end")
    expect(request(s, 42, 0, 0)[0], EINVAL, "unknown command")
    expect(request(s, CACHE, 0, 512)[0], EINVAL, "CACHE (not advertised)")
    expect(request(s, FLUSH, 0, 0, flags=0x40)[0], EINVAL, "unknown flag")
    expect(request(s, FLUSH, 0, 0, flags=2)[0], EINVAL, "NO_HOLE on FLUSH")
    expect(request(s, FLUSH, 0, 0, flags=1)[0], 0, "FUA on FLUSH")
    expect(request(s, WRITE, 0, 4, flags=0x40, data=b"abcd")[0], EINVAL, "write, unknown flag")
    data = os.urandom(12345)
    expect(request(s, WRITE, 777, len(data), flags=1, data=data)[0], 0, "FUA write")
    expect(request(s, READ, 777, len(data)), (0, data, None), "read back")
    expect(request(s, ZEROES, 1000, 3000)[0], 0, "write zeroes")
    expect(request(s, READ, 1000, 3000)[1], bytes(3000), "zeroes read back")
    expect(request(s, TRIM, 8 * M, M)[0], 0, "trim")
    expect(request(s, FLUSH, 0, 0)[0], 0, "flush")
    err, _, ext = request(s, STATUS, 0, size)
    expect(err, 0, "block status")
    assert ext and all(n > 0 for n, _ in ext) and sum(n for n, _ in ext) <= size, ext
    expect(ext[0][1], 0, "block 0 is data")
    assert any(f == 3 for _, f in ext), ext  # hole|zero somewhere
    err, _, ext = request(s, STATUS, 0, size, flags=8)  # REQ_ONE
    expect((err, len(ext)), (0, 1), "REQ_ONE")
    s.sendall(struct.pack(">IHHQQI", REQ, 0, DISC, 0, 0, 0))  # no reply
    s.settimeout(5)
    expect(s.recv(1), b"", "connection after DISC")
    s.close()

    # Simple replies (no structured reply negotiated).
    s, size, _ = go(path, structured=False)
    expect(request(s, READ, 777, 10), (0, data[:10], None), "simple read")
    big = os.urandom(200001)  # large enough to be spliced from the file
    expect(request(s, WRITE, 70001, len(big), data=big)[0], 0, "simple write of 200001 bytes")
    expect(request(s, READ, 70001, len(big)), (0, big, None), "simple read of 200001 bytes")
    expect(request(s, READ, size, 1), (EINVAL, b"", None), "simple read past the end")
    expect(request(s, STATUS, 0, 512)[0], EINVAL, "block status without a context")
    s.close()

    # NBD_OPT_EXPORT_NAME, with and without the 124 zero bytes.
    for cflags, tail in ((3, 0), (1, 124)):
        s = connect(path, cflags)
        s.sendall(struct.pack(">QII", IHAVEOPT, 1, 0))
        sz, fl = struct.unpack(">QH", recvn(s, 10))
        expect((sz, recvn(s, tail)), (size, bytes(tail)), "EXPORT_NAME")
        expect(request(s, READ, 777, 10), (0, data[:10], None), "read after EXPORT_NAME")
        s.close()

def read_only(path):
    s, size, flags = go(path)
    expect(flags & 2, 2, "READ_ONLY flag")
    expect(request(s, WRITE, 0, 3, data=b"abc")[0], EPERM, "write on read-only")
    expect(request(s, ZEROES, 0, 512)[0], EPERM, "write zeroes on read-only")
    expect(request(s, TRIM, 0, 512)[0], EPERM, "trim on read-only")
    expect(request(s, READ, 777, 1)[0], 0, "read on read-only")
    s.close()

def garbage(path, seed):
    r = random.Random(seed)
    def attempt(fn):
        try:
            fn()
        except (EOFError, OSError, AssertionError, struct.error):
            pass
    for i in range(40):  # random bytes from the first byte
        def f():
            s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(path)
            s.sendall(r.randbytes(r.randrange(1, 5000))); s.recv(100); s.close()
        attempt(f)
    for i in range(40):  # a valid handshake, then garbage options
        def f():
            s = connect(path); s.settimeout(2)
            if r.random() < 0.5:
                s.sendall(struct.pack(">QII", IHAVEOPT, r.randrange(0, 20), r.randrange(0, 64)))
            s.sendall(r.randbytes(r.randrange(1, 3000))); s.recv(100); s.close()
        attempt(f)
    for i in range(40):  # connected, then garbage requests
        def f():
            s, size, _ = go(path); s.settimeout(2)
            if r.random() < 0.5:  # well framed but absurd
                for _ in range(20):
                    t = r.choice([READ, TRIM, ZEROES, STATUS, FLUSH, CACHE, 9, 0xffff])
                    s.sendall(struct.pack(">IHHQQI", REQ, r.randrange(0, 1 << 16), t, 0,
                                          r.choice([0, size - 1, size, 2**64 - 1, r.randrange(0, 2**64)]),
                                          r.choice([0, 1, 2**32 - 1, r.randrange(0, 2**32)])))
            s.sendall(r.randbytes(r.randrange(1, 3000))); s.recv(100); s.close()
        attempt(f)
    def huge_option():
        s = connect(path); s.sendall(struct.pack(">QII", IHAVEOPT, 7, 2**32 - 1)); s.recv(1)
    def bad_client_flags():
        s = connect(path, 0xffffffff); s.recv(1)
    def huge_write():
        s, _, _ = go(path); s.sendall(struct.pack(">IHHQQI", REQ, 0, WRITE, 1, 0, 2**31)); s.recv(1)
    def half_write():
        s, _, _ = go(path)
        s.sendall(struct.pack(">IHHQQI", REQ, 0, WRITE, 1, 0, 65536) + b"x" * 1000); s.close()
    for f in (huge_option, bad_client_flags, huge_write, half_write):
        attempt(f)

def stall(path):
    """Clients that hang: idle, mid-handshake, mid-request. Keeps them open
    (the test sends SIGTERM meanwhile) until the server closes them."""
    socks = [connect(path)]
    s = connect(path); s.sendall(struct.pack(">QII", IHAVEOPT, 7, 100)); socks.append(s)
    s, _, _ = go(path); s.sendall(struct.pack(">IHHQQI", REQ, 0, WRITE, 1, 0, 65536) + b"x"); socks.append(s)
    s, _, _ = go(path); socks.append(s)  # connected, then silent
    print("stalled", flush=True)
    for s in socks:
        s.settimeout(30)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass

def many(path, n):
    """More clients than the server serves at once: the extra ones are
    closed; the server still answers afterwards."""
    socks = []
    for _ in range(n):
        try:
            socks.append(go(path)[0])
        except (EOFError, OSError, AssertionError):
            pass
    assert 1 <= len(socks) < n, len(socks)
    for s in socks:
        s.close()

cmd, path = sys.argv[1], sys.argv[2]
{"protocol": lambda: protocol(path), "read-only": lambda: read_only(path),
 "garbage": lambda: garbage(path, int(sys.argv[3])), "stall": lambda: stall(path),
 "many": lambda: many(path, int(sys.argv[3]))}[cmd]()
EOF

serve_start d.vhd "$T/d.sock"
$PY client.py protocol "$SOCK" || fail "protocol checks"
$PY client.py garbage "$SOCK" 1 || fail "garbage client script"
$PY client.py garbage "$SOCK" 2 || fail "garbage client script"
$PY client.py many "$SOCK" 40 || fail "too many clients"
kill -0 $SERVE_PID || fail "the server died"
# Still serving correctly after all that.
if command -v qemu-io >/dev/null 2>&1; then
    qemu-io -f raw -c "write -P 7 1M 64k" -c "read -P 7 1M 64k" "$URI" >qio.out 2>&1 ||
        { cat qio.out >&2; fail "qemu-io after garbage"; }
    grep -qi "fail\|error" qio.out && { cat qio.out >&2; fail "qemu-io after garbage"; }
fi
$PY client.py protocol "$SOCK" || fail "protocol checks after garbage"

# Stalled clients do not keep the server from stopping.
: >stall.out
$PY client.py stall "$SOCK" >stall.out &
STALL=$!
i=0
until grep -q stalled stall.out; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "stall client did not connect"; sleep 0.05
done
serve_stop
wait $STALL || fail "stall client"
"$HVM" vhd check d.vhd >/dev/null || fail "d.vhd not clean after the abuse"

serve_start d.vhd "$T/ro.sock" --read-only
$PY client.py read-only "$SOCK" || fail "read-only checks"
serve_stop
echo "ok"
