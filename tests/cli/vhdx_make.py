#!/usr/bin/env python3
"""Builds VHDX files from the VHDX v1.0 specification, for hvm's tests:
fixed/dynamic/differencing, 512 or 4096-byte logical sectors, any block
size, a log that needs replay, and damage on request. Used as a module:

    import vhdx_make as V
    V.build("c.vhdx", size, block_size, writes=[(offset, bytes)], parent="p.vhdx",
            log=[[(file_offset, 4096 bytes), ...], ...], tweak={...})

writes are in whole logical sectors. In a differencing file they set the
sector bitmap; elsewhere they allocate whole blocks (zeros around them).
"""
import struct
import uuid

MiB = 1 << 20
KiB = 1 << 10
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf, at=4):
    buf = bytearray(buf)
    buf[at:at + 4] = b"\0\0\0\0"
    buf[at:at + 4] = struct.pack("<I", crc32c(buf))
    return bytes(buf)


def guid(text):
    return uuid.UUID(text).bytes_le


BAT = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
META = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMS = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VSIZE = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83 = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LSS = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PSS = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
LOCATOR = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
LOCATOR_TYPE = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")


def data_write_guid(path):
    """The DataWriteGuid of an existing VHDX (its current header)."""
    with open(path, "rb") as f:
        best = None
        for off in (64 * KiB, 128 * KiB):
            f.seek(off)
            h = f.read(4096)
            if h[:4] != b"head" or struct.unpack_from("<I", h, 4)[0] != crc32c(
                    h[:4] + b"\0\0\0\0" + h[8:]):
                continue
            seq = struct.unpack_from("<Q", h, 8)[0]
            if best is None or seq > best[0]:
                best = (seq, h[32:48])
    return "{%s}" % uuid.UUID(bytes_le=best[1])


def utf16(s):
    return s.encode("utf-16-le")


def locator_item(kv):
    keys = b""
    entries = b""
    base = 20 + 12 * len(kv)
    blob = b""
    for k, v in kv:
        kb, vb = utf16(k), utf16(v)
        ko = base + len(blob)
        blob += kb
        vo = base + len(blob)
        blob += vb
        entries += struct.pack("<IIHH", ko, vo, len(kb), len(vb))
    return LOCATOR_TYPE + struct.pack("<HH", 0, len(kv)) + entries + blob + keys


def log_entry(seq, tail, log_guid, writes, flushed, last, zeros=()):
    """One log entry: data descriptors for (file_offset, 4096 bytes) writes
    and zero descriptors for (file_offset, length)."""
    n = len(writes) + len(zeros)
    hs = (64 + 32 * n + 4095) // 4096
    length = (hs + len(writes)) * 4096
    hdr = bytearray(hs * 4096)
    struct.pack_into("<4sIIIQII16sQQ", hdr, 0, b"loge", 0, length, tail, seq, n, 0,
                     log_guid, flushed, last)
    i = 0
    for off, ln in zeros:
        struct.pack_into("<4sIQQQ", hdr, 64 + 32 * i, b"zero", 0, ln, off, seq)
        i += 1
    data = b""
    for off, sector in writes:
        assert len(sector) == 4096
        struct.pack_into("<4sI8sQQ", hdr, 64 + 32 * i, b"desc", 0, sector[:8], off, seq)
        # TrailingBytes: the last 4 bytes, stored in the descriptor's second field
        hdr[64 + 32 * i + 4:64 + 32 * i + 8] = sector[4092:]
        data += b"data" + struct.pack("<I", seq >> 32) + sector[8:4092] + \
            struct.pack("<I", seq & 0xFFFFFFFF)
        i += 1
    return with_crc(bytes(hdr) + data)


def build(path, size, block_size=32 * MiB, logical=512, physical=4096, writes=(),
          parent=None, relative_path=None, extra_locator=(), fixed=False, log=None,
          tweak=None):
    """Writes the file; returns a dict of the layout (offsets used)."""
    tweak = tweak or {}
    log_off, log_len = MiB, MiB
    meta_off, meta_len = 2 * MiB, MiB
    bat_off = 3 * MiB
    chunk = (1 << 23) * logical // block_size
    nblocks = (size + block_size - 1) // block_size
    nchunks = (nblocks + chunk - 1) // chunk
    diff = parent is not None or tweak.get("has_parent")
    entries = nchunks * (chunk + 1) if diff else nblocks + (nblocks - 1) // chunk
    bat_len = max(MiB, (entries * 8 + MiB - 1) // MiB * MiB)
    bat_len = tweak.get("bat_len", bat_len)
    data_off = bat_off + bat_len
    bat = [0] * entries
    blocks = {}   # block -> bytearray
    bitmaps = {}  # chunk -> bytearray(1 MiB)
    for off, buf in writes:
        assert off % logical == 0 and len(buf) % logical == 0
        pos = 0
        while pos < len(buf):
            b = (off + pos) // block_size
            inb = (off + pos) % block_size
            n = min(len(buf) - pos, block_size - inb)
            blk = blocks.setdefault(b, bytearray(block_size))
            blk[inb:inb + n] = buf[pos:pos + n]
            if diff:
                bm = bitmaps.setdefault(b // chunk, bytearray(MiB))
                s0 = ((b % chunk) * block_size + inb) // logical
                for s in range(s0, s0 + n // logical):
                    bm[s // 8] |= 1 << (s % 8)
            pos += n
    if fixed:
        for b in range(nblocks):
            blocks.setdefault(b, bytearray(block_size))
    layout = {"bat": bat_off, "meta": meta_off, "log": log_off, "blocks": {}}
    at = data_off
    for c in sorted(bitmaps):
        bat[c * (chunk + 1) + chunk] = (at // MiB) << 20 | 6
        layout.setdefault("bitmaps", {})[c] = at
        at += MiB
    for b in sorted(blocks):
        state = 6
        if diff:
            bm = bitmaps[b // chunk]
            s0 = (b % chunk) * block_size // logical
            ns = block_size // logical
            full = all(bm[(s0 + k) // 8] >> ((s0 + k) % 8) & 1 for k in range(0, ns))
            state = 6 if full else 7
        bat[b + b // chunk] = (at // MiB) << 20 | state
        layout["blocks"][b] = at
        at += block_size
    for k, v in tweak.get("bat", {}).items():
        bat[k] = v
    end = at
    out = bytearray(data_off)
    out[0:8] = b"vhdxfile"
    out[8:8 + 20] = utf16("hvm test vhdx_make")
    dwg = uuid.uuid4().bytes_le
    lg = tweak.get("log_guid", uuid.uuid4().bytes_le if log else b"\0" * 16)
    for i, seq in enumerate(tweak.get("seqs", (1, 2))):
        h = bytearray(4096)
        struct.pack_into("<4sIQ16s16s16sHHIQ", h, 0, b"head", 0, seq, uuid.uuid4().bytes_le,
                         dwg, lg, 0, tweak.get("version", 1), log_len, log_off)
        h = with_crc(h)
        if i in tweak.get("bad_header", ()):
            h = h[:100] + b"X" + h[101:]
        out[(i + 1) * 64 * KiB:(i + 1) * 64 * KiB + 4096] = h
    regions = [(BAT, tweak.get("bat_off", bat_off), bat_len, 1),
               (META, tweak.get("meta_off", meta_off), meta_len, 1)]
    regions += tweak.get("regions", [])
    rt = bytearray(64 * KiB)
    struct.pack_into("<4sIII", rt, 0, b"regi", 0, len(regions), 0)
    for i, (g, o, ln, req) in enumerate(regions):
        struct.pack_into("<16sQII", rt, 16 + 32 * i, g, o, ln, req)
    rt = with_crc(rt)
    for i in range(2):
        r = rt
        if i in tweak.get("bad_region", ()):
            r = r[:200] + b"X" + r[201:]
        out[(3 + i) * 64 * KiB:(4 + i) * 64 * KiB] = r
    # metadata
    fp_flags = (1 if fixed else 0) | (2 if diff else 0)
    items = [(FILE_PARAMS, struct.pack("<II", tweak.get("block_size", block_size), fp_flags), 4),
             (VSIZE, struct.pack("<Q", tweak.get("size", size)), 6),
             (PAGE83, uuid.uuid4().bytes_le, 6),
             (LSS, struct.pack("<I", tweak.get("logical", logical)), 6),
             (PSS, struct.pack("<I", physical), 6)]
    if diff:
        kv = []
        if parent is not None:
            kv.append(("parent_linkage", tweak.get("linkage", data_write_guid(parent))))
            kv.append(("relative_path", relative_path or ".\\" + parent.split("/")[-1]))
        kv += list(extra_locator)
        items.append((LOCATOR, locator_item(kv), 6))
    items += tweak.get("items", [])
    mt = bytearray(meta_len)
    struct.pack_into("<8sHH", mt, 0, b"metadata", 0, len(items))
    pos = 64 * KiB
    for i, (g, blob, flags) in enumerate(items):
        struct.pack_into("<16sIIII", mt, 32 + 32 * i, g, pos, len(blob), flags, 0)
        mt[pos:pos + len(blob)] = blob
        pos += (len(blob) + 7) // 8 * 8
    bat_bytes = struct.pack("<%dQ" % entries, *bat)
    with open(path, "wb") as f:
        f.write(out)
        f.seek(meta_off)
        f.write(mt)
        f.seek(bat_off)
        f.write(bat_bytes)
        for c, o in layout.get("bitmaps", {}).items():
            f.seek(o)
            f.write(bitmaps[c])
        for b, o in layout["blocks"].items():
            f.seek(o)
            f.write(blocks[b])
        f.truncate(max(end, tweak.get("truncate_to", end)) if "truncate_to" not in tweak
                   else tweak["truncate_to"])
        if log:
            # log: a list of entries, each a list of (file_offset, 4096 bytes);
            # entries are laid out from offset 0 of the log, tail = 0.
            lo = tweak.get("log_start", 0)
            tail = lo
            seq = tweak.get("log_seq", 10)
            for writes_ in log:
                zeros = ()
                if isinstance(writes_, tuple):
                    writes_, zeros = writes_
                e = log_entry(seq, tail, lg, writes_, end, tweak.get("last", end), zeros)
                # the log is circular: an entry may run past its end
                first = min(len(e), log_len - lo)
                f.seek(log_off + lo)
                f.write(e[:first])
                f.seek(log_off)
                f.write(e[first:])
                lo = (lo + len(e)) % log_len
                seq += 1
    layout.update(entries=entries, chunk=chunk, end=end, bat_bytes=bat_bytes)
    return layout
