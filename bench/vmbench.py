#!/usr/bin/python3
"""The VM-layer and runtime benchmarks behind bench/vm.sh and bench/runtime.sh.

    vmbench.py vm        (run by bench/vm.sh, which sets HVM and S)
    vmbench.py runtime   (run by bench/runtime.sh)

HVM is the hvm binary, S an empty scratch folder on a real disk that the
calling script removes afterwards. Every hvm command gets its own store in S.
Times are wall times of the whole command (fork to exit) from
time.perf_counter; medians are reported. All data is written through hvm
itself (hvm vm serve / hvm vhd serve, and qemu-io over NBD).
"""
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

from measure import drop_caches, warm as warm_files  # (bench/measure.py)

HVM = os.environ["HVM"]
S = os.environ["S"]
MiB = 1 << 20
GiB = 1 << 30
ROWS = []  # (section, figure, hvm, peer, ratio, target, verdict)


def say(*a):
    print(*a, flush=True)


def run(cmd, env=None, check=True, capture=True, input=None):
    p = subprocess.run(cmd, env=env, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None, text=True)
    if check and p.returncode != 0:
        raise SystemExit("bench: %s failed (%d): %s%s" % (" ".join(cmd), p.returncode,
                                                         p.stdout or "", p.stderr or ""))
    return p


def timed(cmd, env=None, then_sync=False):
    """Wall seconds of cmd (and of a sync(1) after it when then_sync)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if then_sync:
        os.sync()
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("bench: %s failed (%d): %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return t, p


def med(v):
    return statistics.median(v) if v else float("nan")


def can_drop_caches():
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def du_kib(path):
    return int(run(["du", "-sk", path]).stdout.split()[0])


def remember_pid(pid):
    with open(os.path.join(S, "pids"), "a") as f:
        f.write("%d\n" % pid)


class Store:
    def __init__(self, name):
        self.root = os.path.join(S, name)
        os.makedirs(self.root, exist_ok=True)
        self.env = dict(os.environ, HVM_STORE=self.root)

    def hvm(self, *args, check=True):
        return run([HVM] + list(args), env=self.env, check=check)

    def t(self, *args, then_sync=False):
        return timed([HVM] + list(args), env=self.env, then_sync=then_sync)[0]

    def vm_dir(self, vm):
        return os.path.join(self.root, "vms", vm)

    def vm_json(self, vm):
        with open(os.path.join(self.vm_dir(vm), "vm.json")) as f:
            return json.load(f)


class Served:
    """hvm vm serve VM / hvm vhd serve FILE on a socket, for qemu-io."""

    def __init__(self, store, args, sock):
        self.sock = sock
        if os.path.exists(sock):
            os.unlink(sock)
        self.p = subprocess.Popen([HVM] + args + ["--socket", sock], env=store.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        remember_pid(self.p.pid)
        for _ in range(500):
            if os.path.exists(sock):
                return
            if self.p.poll() is not None:
                raise SystemExit("bench: serve failed: %s" % self.p.stderr.read().decode())
            time.sleep(0.01)
        raise SystemExit("bench: serve did not listen on %s" % sock)

    @property
    def uri(self):
        return "nbd+unix:///?socket=" + self.sock

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        if self.p.wait(timeout=60) != 0:
            raise SystemExit("bench: serve ended with %d: %s" % (self.p.returncode, self.p.stderr.read().decode()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qemu_io(target, cmds, fmt="raw"):
    """Runs qemu-io commands (one per line, fed on stdin) with write-back
    caching (qemu-io's default, writethrough, flushes after every write)."""
    run(["qemu-io", "-t", "writeback", "-f", fmt, target], input="\n".join(cmds) + "\n")


def write_cmds(spans):
    """spans: (offset, length, pattern) -> qemu-io write commands."""
    return ["write -q -P %d %d %d" % (pat, off, ln) for off, ln, pat in spans]


def row(section, figure, hvm, peer, target, ok):
    ratio = hvm / peer if (peer and peer == peer and hvm == hvm) else None
    ROWS.append((section, figure, hvm, peer, ratio, target, ok))


def fmt_v(v, unit):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v != v:
        return "n/a"
    if unit == "ms":
        return "%.1f ms" % (v * 1e3)
    if unit == "s":
        return "%.2f s" % v
    if unit == "MB/s":
        return "%.1f MB/s" % v
    if unit == "KiB":
        return "%d KiB" % v
    return "%g %s" % (v, unit)


def print_table(title, cols, rows):
    widths = [max(len(str(r[i])) for r in [cols] + rows) for i in range(len(cols))]
    line = "  ".join("%-*s" % (w, c) for w, c in zip(widths, cols))
    say("")
    say(title)
    say(line)
    say("  ".join("-" * w for w in widths))
    for r in rows:
        say("  ".join("%-*s" % (w, str(c)) for w, c in zip(widths, r)))


# ---------------------------------------------------------------------------
# bench/vm.sh
# ---------------------------------------------------------------------------

def vm_checkpoint_ops(runs, table):
    """1. take / revert / apply on 1 GiB of data vs a 100 GiB disk, every block allocated."""
    st = Store("s1")
    say("== 1. offline checkpoint take / revert / apply: 1 GiB vs 100 GiB ==")
    t0 = time.perf_counter()
    st.hvm("vm", "create", "small", "--new-disk", "1G")
    with Served(st, ["vm", "serve", "small"], os.path.join(S, "small.sock")) as s:
        qemu_io(s.uri, write_cmds([(i * 2 * MiB, 2 * MiB, 1 + i % 250) for i in range(512)]))
    st.hvm("vm", "create", "big", "--new-disk", "100G")
    with Served(st, ["vm", "serve", "big"], os.path.join(S, "big.sock")) as s:
        qemu_io(s.uri, write_cmds([(i * 2 * MiB + (i % 31) * 64 * 1024, 64 * 1024, 1 + i % 250)
                                   for i in range(51200)]))
    for vm in ("small", "big"):
        st.hvm("checkpoint", "take", vm, "base")
    sizes = {}
    for vm in ("small", "big"):
        cfg = st.vm_json(vm)
        layer = None
        for cp in cfg["checkpoints"]:
            if cp["name"] == "base":
                layer = cp["config"]["drives"][0]["file"]
        path = os.path.join(st.vm_dir(vm), layer)
        sizes[vm] = (os.stat(path).st_size, du_kib(path))
    say("setup %.1f s: 1 GiB VM: disk file %.2f GiB, %d MiB allocated; 100 GiB VM: disk file %.1f GiB, "
        "%d MiB allocated (51,200 blocks of 2 MiB, 64 KiB written in each)"
        % (time.perf_counter() - t0, sizes["small"][0] / GiB, sizes["small"][1] >> 10,
           sizes["big"][0] / GiB, sizes["big"][1] >> 10))
    times = {(vm, op): [] for vm in ("small", "big") for op in ("take", "revert", "apply", "list")}
    for i in range(runs):
        for vm in ("small", "big"):
            # each op starts with no dirty data of an earlier one pending
            os.sync()
            times[vm, "take"].append(st.t("checkpoint", "take", vm, "c%d" % i))
            os.sync()
            times[vm, "revert"].append(st.t("checkpoint", "revert", vm))
            os.sync()
            times[vm, "apply"].append(st.t("checkpoint", "apply", vm, "base"))
            times[vm, "list"].append(st.t("checkpoint", "list", vm))
            st.hvm("checkpoint", "delete", vm, "c%d" % i)  # keeps the tree the same size
    for op in ("take", "revert", "apply"):
        a, b = med(times["small", op]), med(times["big", op])
        say("%-7s 1 GiB: median %.1f ms (max %.1f)   100 GiB: median %.1f ms (max %.1f)   ratio %.2f"
            % (op, a * 1e3, max(times["small", op]) * 1e3, b * 1e3, max(times["big", op]) * 1e3, b / a))
        table.append(("1", "checkpoint %s (median of %d)" % (op, runs), fmt_v(a, "ms"), fmt_v(b, "ms"),
                       "%.2f" % (b / a), "~1, each < 20 ms",
                       "ok" if a < 0.02 and b < 0.02 and b / a < 1.5 else "MISSED"))
    a, b = med(times["small", "list"]), med(times["big", "list"])
    say("floor: hvm checkpoint list (start, open vm.json, print) 1 GiB %.1f ms, 100 GiB %.1f ms" % (a * 1e3, b * 1e3))
    table.append(("1", "(floor: checkpoint list)", fmt_v(a, "ms"), fmt_v(b, "ms"), "%.2f" % (b / a), "-", "-"))
    shutil.rmtree(st.root, ignore_errors=True)
    run(["chmod", "-R", "u+w", st.root], check=False)
    shutil.rmtree(st.root, ignore_errors=True)


def vm_create_many(table):
    """2. 100 VMs from one base."""
    say("== 2. 100 VMs from one base ==")
    st = Store("s2")
    basefile = os.path.join(S, "base.vhd")
    st.hvm("vhd", "create", basefile, "--size", "20G")
    with Served(st, ["vhd", "serve", basefile], os.path.join(S, "basevhd.sock")) as s:
        # 256 MiB spread over the disk: 2 MiB into every 40th block
        qemu_io(s.uri, write_cmds([(i * 80 * MiB, 2 * MiB, 7) for i in range(128)]))
    os.sync()
    per = []
    t0 = time.perf_counter()
    for i in range(100):
        per.append(st.t("vm", "create", "vm%02d" % i, "--from", basefile))
    total = time.perf_counter() - t0
    os.sync()
    dus = [du_kib(st.vm_dir("vm%02d" % i)) for i in range(100)]
    say("100 creates: total %.2f s, per VM median %.1f ms (first %.1f ms, max %.1f ms); "
        "per VM folder du median %d KiB (max %d KiB); base %d MiB allocated"
        % (total, med(per) * 1e3, per[0] * 1e3, max(per) * 1e3, med(dus), max(dus), du_kib(basefile) >> 10))
    table.append(("2", "100 x vm create --from base: total", fmt_v(total, "s"), "-", "-", "-", "-"))
    table.append(("2", "  per VM (median / max)", "%.1f / %.1f ms" % (med(per) * 1e3, max(per) * 1e3),
                  "-", "-", "-", "-"))
    table.append(("2", "  du of a VM folder (median / max)", "%d / %d KiB" % (med(dus), max(dus)),
                  "-", "-", "-", "-"))
    run(["chmod", "-R", "u+w", st.root], check=False)
    shutil.rmtree(st.root, ignore_errors=True)
    os.chmod(basefile, 0o644)
    os.unlink(basefile)


def vm_delete_middle(table, above, runs=3):
    """3. delete a middle checkpoint holding 1 GiB vs qemu-img rebase + rm.

    Chain: A (512 MiB) <- B (1 GiB of changes) <- C (16 MiB). With above ==
    "now", C is Now's leaf, with above == "checkpoint" a checkpoint (frozen)
    under an empty Now. Either way hvm merges the small C up into B's layer,
    which then becomes C (name and identity); it rebases C onto A only when C
    owns more than B (tests/cli/t53 covers both ways). The peer
    does the same job on the qcow2 equivalent in both cases: qemu-img rebase
    of the top onto A (safe mode), then rm of the middle file (deleting a
    checkpoint removes its layer)."""
    say("== 3%s. delete a middle checkpoint holding 1 GiB under %s vs qemu-img rebase + rm =="
        % ("a" if above == "now" else "b", "Now's small leaf" if above == "now" else "a checkpoint"))
    cold = can_drop_caches()
    st = Store("s3")
    size = 4 * GiB
    l0 = [(i * 2 * MiB, 2 * MiB, 0x11) for i in range(256)]            # 512 MiB
    l1 = [(i * 2 * MiB + MiB // 2, MiB, 0x22) for i in range(1024)]     # 1 GiB over the first 2 GiB
    l2 = [(i * 16 * MiB, 64 * 1024, 0x33) for i in range(256)]          # 16 MiB
    st.hvm("vm", "create", "d", "--new-disk", "4G")
    sock = os.path.join(S, "d.sock")
    for k, spans in enumerate((l0, l1, l2)):
        with Served(st, ["vm", "serve", "d"], sock) as s:
            qemu_io(s.uri, write_cmds(spans))
        if k < 2 or above == "checkpoint":
            st.hvm("checkpoint", "take", "d", "ABC"[k])
    q = [os.path.join(S, "q%d.qcow2" % k) for k in range(3)]
    run(["qemu-img", "create", "-q", "-f", "qcow2", q[0], str(size)])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", q[0], "-F", "qcow2", q[1]])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", q[1], "-F", "qcow2", q[2]])
    for k, spans in enumerate((l0, l1, l2)):
        qemu_io(q[k], write_cmds(spans), fmt="qcow2")
    os.sync()
    vmd = st.vm_dir("d")
    mid = [cp for cp in st.vm_json("d")["checkpoints"] if cp["name"] == "B"][0]["config"]["drives"][0]["file"]
    say("chain: A 512 MiB, B %d MiB allocated (the 1 GiB of changes), C 16 MiB%s; qcow2: %s"
        % (du_kib(os.path.join(vmd, mid)) >> 10, ", Now empty" if above == "checkpoint" else " (Now)",
           ", ".join("%d MiB" % (du_kib(x) >> 10) for x in q)))
    # Pristine copies to start each run from: hard links (files that are
    # only read, deleted or replaced by rename), except the one layer each
    # side writes in place, which is copied: B's layer, which hvm merges C
    # into, and the top qcow2 for qemu-img.
    written = mid
    pristine = os.path.join(S, "d.pristine")

    def restore_vm(src, dst):
        run(["cp", "-al", src, dst])
        os.unlink(os.path.join(dst, written))
        run(["cp", "-a", "--sparse=always", os.path.join(src, written), os.path.join(dst, written)])

    restore_vm(vmd, pristine)
    qp = [x + ".pristine" for x in q[1:]]
    run(["ln", q[1], qp[0]])
    run(["cp", "-a", "--sparse=always", q[2], qp[1]])
    qcmd = ["sh", "-c", "qemu-img rebase -f qcow2 -F qcow2 -b %s %s && rm %s" % (q[0], q[2], q[1])]
    modes = ["cold", "warm"] if cold else ["warm"]
    res = {}
    first = True
    for mode in modes:
        th, tq = [], []
        for i in range(runs):
            if not first:
                run(["chmod", "-R", "u+w", vmd])
                shutil.rmtree(vmd)
                restore_vm(pristine, vmd)
                run(["ln", "-f", qp[0], q[1]])
                run(["cp", "-a", "--sparse=always", qp[1], q[2]])
                os.sync()
            first = False
            # Alternate who goes first: a run pays for the writeback the
            # previous one left to the host's disk.
            for who in (("hvm", "qemu-img") if i % 2 == 0 else ("qemu-img", "hvm")):
                if mode == "cold":
                    drop_caches()
                else:
                    warm_files([os.path.join(vmd, "disks", f) for f in os.listdir(os.path.join(vmd, "disks"))]
                               if who == "hvm" else q)
                    os.sync()
                if who == "hvm":
                    th.append(timed([HVM, "checkpoint", "delete", "d", "B"], env=st.env, then_sync=True)[0])
                else:
                    tq.append(timed(qcmd, then_sync=True)[0])
        res[mode] = (th, tq)
    # the two results read the same (Now, and C's checkpoint when there is one)
    same = True
    views = [(["vm", "serve", "d", "--read-only"], q[2])]
    for args, qf in views:
        with Served(st, args, sock) as s:
            cmp = run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", s.uri, qf], check=False)
        same = same and cmp.returncode == 0
    chain = run(["qemu-img", "info", "--backing-chain", "-U", q[2]]).stdout.count("image:")
    say("peer: %s, then sync; results of the last runs %s"
        % (qcmd[2], "identical (qemu-img compare)" if same else "DIFFER: " + cmp.stdout.strip()))
    if chain != 2:
        say("warning: the qcow2 chain is %d deep after the rebase" % chain)
    what = "under Now's small leaf" if above == "now" else "under a small checkpoint"
    for mode in modes:
        th, tq = res[mode]
        a, b = med(th), med(tq)
        say("%s cache: hvm checkpoint delete d B (+ sync): median %.2f s %s; qemu-img rebase + rm (+ sync): "
            "median %.2f s %s; ratio %.2f" % (mode, a, [round(x, 2) for x in th], b, [round(x, 2) for x in tq], a / b))
        table.append(("3", "delete middle checkpoint (1 GiB) %s vs qemu-img rebase -b + rm, %s cache, median of %d"
                      % (what, mode, runs), fmt_v(a, "s"), fmt_v(b, "s"), "%.2f" % (a / b), "<= 1",
                      ("ok" if a / b <= 1 else "MISSED") + ("" if same else ", DATA DIFFERS")))
    run(["chmod", "-R", "u+w", S + "/s3", pristine], check=False)
    shutil.rmtree(st.root, ignore_errors=True)
    shutil.rmtree(pristine, ignore_errors=True)
    for x in q + qp:
        if os.path.exists(x):
            os.unlink(x)


def vm_export_import(table, runs=5):
    """4. export / import of a VM with 10 checkpoints vs cp -r."""
    say("== 4. export / import of a VM with 10 checkpoints vs cp -r ==")
    st = Store("s4")
    st.hvm("vm", "create", "e", "--new-disk", "8G")
    sock = os.path.join(S, "e.sock")
    for k in range(10):
        with Served(st, ["vm", "serve", "e"], sock) as s:
            qemu_io(s.uri, write_cmds([((k * 16 + j) * 4 * MiB + k * 64 * 1024, 2 * MiB, 1 + k)
                                       for j in range(16)]))
        st.hvm("checkpoint", "take", "e", "ck%d" % k)
    vmd = st.vm_dir("e")
    os.sync()
    say("VM folder: %d MiB allocated, %d files"
        % (du_kib(vmd) >> 10, sum(len(f) for _, _, f in os.walk(vmd))))
    out = os.path.join(S, "out")
    os.makedirs(out)
    te, tc, ti, tci = [], [], [], []
    for i in range(runs):
        exp, cpd = os.path.join(out, "exp%d" % i), os.path.join(out, "cp%d" % i)
        os.sync()
        te.append(timed([HVM, "vm", "export", "e", exp], env=st.env)[0])
        os.sync()
        tc.append(timed(["cp", "-r", vmd, cpd], then_sync=True)[0])
        os.sync()
        ti.append(timed([HVM, "vm", "import", exp, "--mode", "copy", "--name", "imp%d" % i], env=st.env)[0])
        os.sync()
        tci.append(timed(["cp", "-r", exp, os.path.join(out, "cpimp%d" % i)], then_sync=True)[0])
        # keep the disk use flat
        st.hvm("vm", "delete", "imp%d" % i)
        for d in (cpd, os.path.join(out, "cpimp%d" % i)) + ((exp,) if i < runs - 1 else ()):
            run(["chmod", "-R", "u+w", d], check=False)
            shutil.rmtree(d)
    exp_kib = du_kib(os.path.join(out, "exp%d" % (runs - 1)))
    for name, a, b, what in (("export", te, tc, "cp -r VM folder + sync"),
                             ("import", ti, tci, "cp -r export folder + sync")):
        say("%s: hvm median %.2f s %s; %s median %.2f s %s; ratio %.2f"
            % (name, med(a), [round(x, 2) for x in a], what, med(b), [round(x, 2) for x in b], med(a) / med(b)))
        table.append(("4", "vm %s, 10 checkpoints, %d MiB (vs %s)" % (name, exp_kib >> 10, what),
                      fmt_v(med(a), "s"), fmt_v(med(b), "s"), "%.2f" % (med(a) / med(b)), "<= 1.2",
                      "ok" if med(a) / med(b) <= 1.2 else "MISSED"))
    run(["chmod", "-R", "u+w", st.root, out], check=False)
    shutil.rmtree(st.root, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def main_vm():
    runs = int(os.environ.get("BENCH_VM_RUNS", "10"))
    started = time.time()
    table = []
    say("bench/vm.sh: %s; scratch %s" % (run([HVM, "--version"], check=False).stdout.strip() or HVM, S))
    which = os.environ.get("BENCH_ONLY", "1234")
    if "1" in which:
        vm_checkpoint_ops(runs, table)
    if "2" in which:
        vm_create_many(table)
    if "3" in which:
        vm_delete_middle(table, "now")
        vm_delete_middle(table, "checkpoint")
    if "4" in which:
        vm_export_import(table)
    print_table("Results (hvm vs peer; ratio = hvm / peer; for section 1, 1 GiB | 100 GiB | 100/1)",
                ("#", "figure", "hvm / 1 GiB", "peer / 100 GiB", "ratio", "target", ""), table)
    say("total %.0f s" % (time.time() - started))


# ---------------------------------------------------------------------------
# bench/runtime.sh
# ---------------------------------------------------------------------------

GUEST = os.environ.get("GUEST_DIR", "")
RT_MEM = "256M"


def guest_seconds(text):
    """Guest seconds between two readings of the guest's clock (GUEST_NOW) printed
    as 'a b', in nanoseconds."""
    v = [int(x) for x in re.findall(r"\b\d{4,}\b", text)]
    return (v[1] - v[0]) / 1e9 if len(v) >= 2 else float("nan")


class Console:
    """The guest's serial console on a Unix socket (hvm's run/console.sock,
    or the same chardev given to plain QEMU): type a command, read its
    output between two markers the echo of the command line cannot match."""

    def __init__(self, path, timeout=120):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.time() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.s.settimeout(0.2)
        self.n = 0

    def run(self, cmd, timeout=300):
        self.n += 1
        n = self.n
        buf = b""
        self.s.sendall(('echo HVM""BEGIN-%d; %s; echo HVM""END-%d\n' % (n, cmd, n)).encode())
        deadline = time.time() + timeout
        pat = re.compile(rb"HVMBEGIN-%d(.*)HVMEND-%d" % (n, n), re.S)
        while time.time() < deadline:
            try:
                d = self.s.recv(65536)
                if not d:
                    break
                buf += d
            except socket.timeout:
                pass
            m = pat.search(buf)
            if m:
                return m.group(1).decode(errors="replace")
        raise SystemExit("bench: no answer from the guest to %r: %r" % (cmd, buf[-500:]))

    def close(self):
        self.s.close()


def wait_line(log, regex, timeout, offset=0, poll=0.01):
    """Seconds until a line matching regex appears in log after offset."""
    pat = re.compile(regex.encode())
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                if pat.search(f.read()):
                    return True
        except FileNotFoundError:
            pass
        time.sleep(poll)
    return False


def qemu_argv(name, rundir, drive, append):
    """The command line hvm's worker gives QEMU (src/runtime/worker.c,
    spawn_qemu), with the drive replaced by a local file."""
    return ["qemu-system-x86_64", "-name", name, "-nodefaults", "-no-user-config", "-accel", "tcg",
            "-m", RT_MEM, "-smp", "1", "-display", "none",
            "-chardev", "socket,id=ser0,path=%s/console.sock,server=on,wait=off,logfile=%s/console.log,"
                        "logappend=on" % (rundir, rundir),
            "-serial", "chardev:ser0", "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % rundir,
            "-drive", drive,
            "-kernel", os.path.join(GUEST, "vmlinuz"), "-initrd", os.path.join(GUEST, "initrd.img"),
            "-append", append]


class PlainQemu:
    def __init__(self, name, drive, append):
        self.rundir = os.path.join(S, "q-" + name)
        os.makedirs(self.rundir, exist_ok=True)
        self.log = os.path.join(self.rundir, "console.log")
        self.offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(qemu_argv(name, self.rundir, drive, append), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        remember_pid(self.p.pid)

    def ready(self, timeout=180):
        if not wait_line(self.log, r"HVM-GUEST READY", timeout, self.offset):
            raise SystemExit("bench: plain QEMU guest not READY: %s" % self.p.stderr.read1().decode())
        return time.perf_counter() - self.t0

    def console(self):
        return Console(os.path.join(self.rundir, "console.sock"))

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)



RAND_N = int(os.environ.get("BENCH_RAND_IOS", "2000"))


# The guest's monotonic clock in nanoseconds (/proc/uptime counts in 10 ms
# steps: 5% of a 0.2 s figure).
GUEST_NOW = 'sed -n "s/^now at \\([0-9]*\\) nsecs$/\\1/p" /proc/timer_list'


SEQ_PASSES = 2


def fig_seq(con, size_mib, rnd):
    """Sequential 1 MiB O_DIRECT reads of the whole disk, SEQ_PASSES times
    (one pass takes about 0.25 s, short enough for one hiccup of the
    machine to decide it) (MB/s)."""
    t = guest_seconds(con.run("a=$(%s); for p in %s; do dd if=/dev/vda of=/dev/null bs=1M count=%d "
                            "iflag=direct 2>/dev/null; done; b=$(%s); echo $a $b"
                            % (GUEST_NOW, " ".join(str(i) for i in range(SEQ_PASSES)), size_mib, GUEST_NOW)))
    return SEQ_PASSES * size_mib * MiB / 1e6 / t


def fig_qd1(con, size_mib, rnd):
    """4 KiB requests one after the other from one dd (queue depth 1): the
    per-request cost of each backend, without starting a process per read
    (reads/s)."""
    n4k = 8192
    t = guest_seconds(con.run("a=$(%s); dd if=/dev/vda of=/dev/null bs=4k count=%d skip=%d iflag=direct 2>/dev/null; "
                            "b=$(%s); echo $a $b" % (GUEST_NOW, n4k, size_mib * 64, GUEST_NOW)))
    return n4k / t


def randio(con, op, rnd):
    """RAND_N random 4 KiB O_DIRECT requests at queue depth 1 over the whole
    disk, from one process (the guest's /bin/randio; the same offsets for
    every peer in a round) (requests/s)."""
    out = con.run("randio /dev/vda %s %d %d" % (op, RAND_N, 1000 + rnd))
    m = re.search(r"RANDIO \S+ (\d+) (\d+)", out)
    if not m:
        raise SystemExit("bench: randio failed in the guest: %r" % out)
    return int(m.group(1)) / (int(m.group(2)) / 1e9)


def fig_rand(con, size_mib, rnd):
    return randio(con, "read", rnd)


WRITE_MIB = 64


def write_seek(size_mib, rnd):
    """Where round rnd writes (MiB): a region of its own in the second half
    of the disk, which the top layers (hvm's, qcow2's) do not hold yet."""
    half = size_mib // 2
    return half + (rnd % (half // (WRITE_MIB + 16))) * (WRITE_MIB + 16)


def fig_write(con, size_mib, rnd):
    """WRITE_MIB of sequential 1 MiB O_DIRECT writes + fsync, into a region of
    the disk of this round's own that nobody wrote before: new blocks of
    hvm's layer and of qcow2's top layer, a hole punched into the raw
    files just before (MB/s)."""
    seek = write_seek(size_mib, rnd)
    t = guest_seconds(con.run("a=$(%s); dd if=/dev/zero of=/dev/vda bs=1M count=%d seek=%d oflag=direct "
                            "conv=fsync 2>/dev/null; b=$(%s); echo $a $b" % (GUEST_NOW, WRITE_MIB, seek, GUEST_NOW)))
    return WRITE_MIB * MiB / 1e6 / t


def punch_write_region(path, size_mib, rnd):
    """Gives a raw file a hole where round rnd writes: its first write there
    then allocates, as a new layer's does."""
    run(["fallocate", "-p", "-o", str(write_seek(size_mib, rnd) * MiB), "-l", str(WRITE_MIB * MiB), path])


def fig_rewrite(con, size_mib, rnd):
    """The same WRITE_MIB written again (MB/s): every peer owns those
    blocks by now, so this is the cost of a write without allocation."""
    return fig_write(con, size_mib, rnd)


def fig_rand_write(con, size_mib, rnd):
    """randio writes, then one fdatasync (writes/s). Random places all
    over the disk: in hvm's layer most land in blocks it does not own yet,
    as in qcow2's top layer; the raw files own everything."""
    return randio(con, "write", rnd)


def rt_throughput(table):
    say("== 1. guest disk throughput (TCG; dd inside the guest) ==")
    st = Store("r1")
    size_mib = int(os.environ.get("BENCH_DISK_MIB", "1024"))
    append = "console=ttyS0 panic=-1 hvm.mode=shell"
    a_spans = [(i * 2 * MiB, 2 * MiB, 0x11) for i in range(size_mib // 2)]             # every byte
    # a quarter of the first half: reads cross layers there, writes go to
    # the second half (write_seek)
    b_spans = [(i * 4 * MiB + MiB, MiB, 0x22) for i in range(size_mib // 8)]
    st.hvm("vm", "create", "r", "--new-disk", "%dM" % size_mib, "--memory", RT_MEM)
    sock = os.path.join(S, "r.sock")
    with Served(st, ["vm", "serve", "r"], sock) as s:
        qemu_io(s.uri, write_cmds(a_spans))
    st.hvm("checkpoint", "take", "r", "A")
    with Served(st, ["vm", "serve", "r"], sock) as s:
        qemu_io(s.uri, write_cmds(b_spans))
    raw = os.path.join(S, "r.raw")
    with Served(st, ["vm", "serve", "r", "--read-only"], sock) as s:
        run(["qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri, raw])
    q0, q1 = os.path.join(S, "r0.qcow2"), os.path.join(S, "r1.qcow2")
    run(["qemu-img", "create", "-q", "-f", "qcow2", q0, "%dM" % size_mib])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", q0, "-F", "qcow2", q1])
    qemu_io(q0, write_cmds(a_spans), fmt="qcow2")
    qemu_io(q1, write_cmds(b_spans), fmt="qcow2")
    st.hvm("vm", "set", "r", "--kernel", os.path.join(GUEST, "vmlinuz"), "--initrd",
           os.path.join(GUEST, "initrd.img"), "--cmdline", append,
           "--disk-io", os.environ.get("BENCH_DISK_IO", "vhost-user"))
    vmd = st.vm_dir("r")
    nbdsock = os.path.join(S, "qemu-nbd.sock")
    res = {}
    peers = ("hvm", "raw", "qcow2", "qemu-nbd")
    # All four guests run at once and each figure is taken in rounds, every
    # peer once per round, in alternating order: this machine's speed drifts
    # by tens of percent within minutes, so hvm is compared with each peer
    # round by round (the median of the per-round ratios), never with a run
    # made minutes apart. An idle guest costs little (it sleeps in HLT).
    rounds = int(os.environ.get("BENCH_RT_ROUNDS", "5"))
    os.sync()
    warm_files([os.path.join(vmd, "disks", f) for f in os.listdir(os.path.join(vmd, "disks"))] + [raw, q0, q1])
    st.hvm("vm", "start", "r", "--accel", "tcg")
    # qemu-nbd serves a copy of its own: the raw guest holds r.raw's lock
    raw_nbd = raw + ".nbd"
    run(["cp", raw, raw_nbd])
    nbdp = subprocess.Popen(["qemu-nbd", "-f", "raw", "-t", "--cache=writeback", "--socket=" + nbdsock, raw_nbd],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remember_pid(nbdp.pid)
    for _ in range(500):
        if os.path.exists(nbdsock):
            break
        time.sleep(0.01)
    plain = {}
    for who in peers[1:]:
        drive = {"raw": "file=%s,format=raw,if=virtio,cache=writeback,discard=unmap" % raw,
                 "qcow2": "file=%s,format=qcow2,if=virtio,cache=writeback,discard=unmap" % q1,
                 "qemu-nbd": "driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=%s,"
                             "if=virtio,cache=writeback,discard=unmap" % nbdsock}[who]
        plain[who] = PlainQemu(who, drive, append)
    if not wait_line(os.path.join(vmd, "run", "console.log"), r"HVM-GUEST READY", 180):
        raise SystemExit("bench: hvm guest not READY")
    cons = {"hvm": Console(os.path.join(vmd, "run", "console.sock"))}
    for who, vmq in plain.items():
        vmq.ready()
        cons[who] = vmq.console()
    time.sleep(1)
    for con in cons.values():
        con.run("true")
    figures = (("seq", fig_seq, "seq read 1 MiB O_DIRECT, whole disk (MB/s)"),
               ("qd1", fig_qd1, "4 KiB O_DIRECT reads at QD1, one dd (reads/s)"),
               ("rand", fig_rand, "random read 4 KiB at QD1, randio (reads/s)"),
               ("wr", fig_write, "seq write 1 MiB + fsync, %d MiB of new space (MB/s)" % WRITE_MIB),
               ("rewr", fig_rewrite, "seq rewrite of the same %d MiB + fsync (MB/s)" % WRITE_MIB),
               ("rwr", fig_rand_write, "random write 4 KiB at QD1 + fdatasync, randio (writes/s)"))
    res = {who: {} for who in peers}
    for key, fig, label in figures:
        for rnd in range(rounds):
            if key == "wr":
                for f in (raw, raw_nbd):
                    punch_write_region(f, size_mib, rnd)
            for who in (peers if rnd % 2 == 0 else tuple(reversed(peers))):
                res[who].setdefault(key, []).append(fig(cons[who], size_mib, rnd))
        say("%s, %d rounds: %s" % (label, rounds, "; ".join(
            "%s %s" % (who, " ".join("%.0f" % v for v in res[who][key])) for who in peers)))
    for con in cons.values():
        con.close()
    st.hvm("vm", "turn-off", "r")
    for vmq in plain.values():
        vmq.stop()
    nbdp.terminate()
    nbdp.wait()
    say("medians over %d rounds:" % rounds)
    for who in peers:
        f = res[who]
        say("%-8s seq %.1f MB/s; QD1 %.0f/s; random %.0f/s; write %.1f MB/s; rewrite %.1f MB/s; "
            "random write %.0f/s" % (who, med(f["seq"]), med(f["qd1"]), med(f["rand"]), med(f["wr"]),
                                     med(f["rewr"]), med(f["rwr"])))
    h = res["hvm"]
    for key, fig, label in figures:
        for peer in ("raw", "qcow2", "qemu-nbd"):
            r = med([a / b for a, b in zip(h[key], res[peer][key])])
            target = {"raw": 0.9, "qcow2": 1.0}.get(peer)
            if key in ("wr", "rewr", "rwr") and peer == "qcow2":
                target = None
            table.append(("1", "%s vs %s" % (label, peer), "%.1f" % med(h[key]), "%.1f" % med(res[peer][key]),
                          "%.2f" % r, ">= %.1f" % target if target else "-",
                          ("ok" if r >= target else "MISSED") if target else "-"))

    run(["chmod", "-R", "u+w", st.root], check=False)
    shutil.rmtree(st.root, ignore_errors=True)
    for x in (raw, raw_nbd, q0, q1):
        os.unlink(x)


def rt_checkpoint_modes(table, n=3):
    """2b. The pause of an online checkpoint against the guest's memory size,
    the old way (HVM_MEMORY_MODE=stop) and pre-copy, in one run. Idle guests
    (counter mode); BENCH_CK_SIZES in MiB (default 256,1024,2048)."""
    sizes = [int(x) for x in os.environ.get("BENCH_CK_SIZES", "256,1024,2048").split(",")]
    say("== 2b. online checkpoint pause vs memory size (stop vs precopy), %d each ==" % n)
    res = {}
    for mib in sizes:
        for mode in ("stop", "precopy"):
            st = Store("r2b")
            st.hvm("vm", "create", "c", "--new-disk", "64M", "--memory", "%dM" % mib)
            st.hvm("vm", "set", "c", "--kernel", os.path.join(GUEST, "vmlinuz"), "--initrd",
                   os.path.join(GUEST, "initrd.img"), "--cmdline", "console=ttyS0 panic=-1 hvm.mode=counter")
            st.hvm("vm", "start", "c", "--accel", "tcg")
            log = os.path.join(st.vm_dir("c"), "run", "console.log")
            if not wait_line(log, r"HVM-GUEST COUNT 5\b", 180):
                raise SystemExit("bench: counter guest did not count")
            env = dict(st.env, HVM_MEMORY_MODE=mode)
            pauses, walls = [], []
            for i in range(n):
                time.sleep(1)
                t, p = timed([HVM, "checkpoint", "take", "c", "k%d" % i], env=env)
                m = re.search(r"paused for (\d+) ms", p.stdout)
                if not m:
                    raise SystemExit("bench: no pause figure in %r" % p.stdout)
                pauses.append(float(m.group(1)))
                walls.append(t * 1e3)
            d = os.path.join(st.vm_dir("c"), "checkpoints")
            states = [os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)]
            st.hvm("vm", "turn-off", "c")
            res[(mib, mode)] = pauses
            say("%5d MiB %-7s pauses %s ms (median %.0f, max %.0f); take wall median %.0f ms; state median %.0f MiB"
                % (mib, mode, [int(x) for x in pauses], med(pauses), max(pauses), med(walls),
                   med(states) / MiB if states else 0))
            table.append(("2b", "%d MiB %s: pause median/max (ms)" % (mib, mode),
                          "%.0f/%.0f" % (med(pauses), max(pauses)), "-", "-",
                          "< 50/100" if mode == "precopy" else "-",
                          ("ok" if med(pauses) < 50 and max(pauses) < 100 else "MISSED") if mode == "precopy" else "-"))
            run(["chmod", "-R", "u+w", st.root], check=False)
            shutil.rmtree(st.root, ignore_errors=True)
        say("%5d MiB: stop/precopy median pause ratio %.1f" % (
            mib, med(res[(mib, "stop")]) / max(1.0, med(res[(mib, "precopy")]))))
    if len(sizes) > 1:
        say("precopy: largest/smallest median pause ratio %.2f (target <= 1.5)" % (
            med(res[(sizes[-1], "precopy")]) / max(1.0, med(res[(sizes[0], "precopy")]))))


def rt_online_checkpoint(table, n=5):
    say("== 2. online checkpoint pause, 256 MiB guest in counter mode ==")
    st = Store("r2")
    st.hvm("vm", "create", "c", "--new-disk", "64M", "--memory", RT_MEM)
    st.hvm("vm", "set", "c", "--kernel", os.path.join(GUEST, "vmlinuz"), "--initrd",
           os.path.join(GUEST, "initrd.img"), "--cmdline", "console=ttyS0 panic=-1 hvm.mode=counter",
           "--disk-io", os.environ.get("BENCH_DISK_IO", "vhost-user"))
    st.hvm("vm", "start", "c", "--accel", "tcg")
    log = os.path.join(st.vm_dir("c"), "run", "console.log")
    if not wait_line(log, r"HVM-GUEST COUNT 5\b", 180):
        raise SystemExit("bench: counter guest did not count")
    pauses, walls, sizes = [], [], []
    for i in range(n):
        time.sleep(1)
        t, p = timed([HVM, "checkpoint", "take", "c", "k%d" % i], env=st.env)
        m = re.search(r"paused for (\d+) ms", p.stdout)
        if not m:
            raise SystemExit("bench: no pause figure in %r" % p.stdout)
        pauses.append(float(m.group(1)))
        walls.append(t * 1e3)
    for f in os.listdir(os.path.join(st.vm_dir("c"), "checkpoints")):
        sizes.append(os.path.getsize(os.path.join(st.vm_dir("c"), "checkpoints", f)))
    with open(log, "rb") as f:
        counts = [int(x) for x in re.findall(rb"HVM-GUEST COUNT (\d+)", f.read())]
    time.sleep(1)
    with open(log, "rb") as f:
        after = [int(x) for x in re.findall(rb"HVM-GUEST COUNT (\d+)", f.read())]
    going = bool(after) and after[-1] > counts[-1]
    st.hvm("vm", "turn-off", "c")
    say("pause (printed by hvm): %s ms; median %.0f, max %.0f; command wall time median %.0f ms; "
        "memory state %.0f MiB; guest still counting: %s"
        % ([int(x) for x in pauses], med(pauses), max(pauses), med(walls),
           med(sizes) / MiB if sizes else 0, "yes" if going else "NO"))
    table.append(("2", "online checkpoint pause, median of %d (ms)" % n, "%.0f" % med(pauses), "-", "-",
                  "< 300", "ok" if med(pauses) < 300 else "MISSED"))
    table.append(("2", "online checkpoint pause, max (ms)", "%.0f" % max(pauses), "-", "-",
                  "< 300", "ok" if max(pauses) < 300 else "MISSED"))
    table.append(("2", "hvm checkpoint take wall time, median (ms)", "%.0f" % med(walls), "-", "-", "-", "-"))
    run(["chmod", "-R", "u+w", st.root], check=False)
    shutil.rmtree(st.root, ignore_errors=True)


def rt_start(table, n=5):
    say("== 3. start to first guest output (READY) vs plain QEMU ==")
    st = Store("r3")
    append = "console=ttyS0 panic=-1 hvm.mode=shell"
    st.hvm("vm", "create", "s", "--new-disk", "64M", "--memory", RT_MEM)
    st.hvm("vm", "set", "s", "--kernel", os.path.join(GUEST, "vmlinuz"), "--initrd",
           os.path.join(GUEST, "initrd.img"), "--cmdline", append)
    raw = os.path.join(S, "s.raw")
    with Served(st, ["vm", "serve", "s", "--read-only"], os.path.join(S, "s.sock")) as s:
        run(["qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri, raw])
    log = os.path.join(st.vm_dir("s"), "run", "console.log")
    th, tq = [], []
    def hvm_once():
        off = os.path.getsize(log) if os.path.exists(log) else 0
        os.sync()
        t0 = time.perf_counter()
        run([HVM, "vm", "start", "s", "--accel", "tcg"], env=st.env)
        if not wait_line(log, r"HVM-GUEST READY", 180, off):
            raise SystemExit("bench: hvm guest not READY")
        th.append(time.perf_counter() - t0)
        st.hvm("vm", "turn-off", "s")

    def qemu_once():
        os.sync()
        q = PlainQemu("s", "file=%s,format=raw,if=virtio,cache=writeback,discard=unmap" % raw, append)
        tq.append(q.ready())
        q.stop()

    # alternating who goes first: the machine's speed drifts
    for i in range(n):
        for once in ((hvm_once, qemu_once) if i % 2 == 0 else (qemu_once, hvm_once)):
            once()
    a, b = med(th), med(tq)
    say("hvm vm start -> READY: %s s, median %.2f; plain QEMU -> READY: %s s, median %.2f; overhead %+.1f%%"
        % ([round(x, 2) for x in th], a, [round(x, 2) for x in tq], b, (a / b - 1) * 100))
    table.append(("3", "start -> READY in console.log, median of %d (s)" % n, "%.2f" % a, "%.2f" % b,
                  "%.2f" % (a / b), "< 1.10", "ok" if a / b < 1.10 else "MISSED"))
    run(["chmod", "-R", "u+w", st.root], check=False)
    shutil.rmtree(st.root, ignore_errors=True)
    os.unlink(raw)


def main_runtime():
    started = time.time()
    table = []
    say("bench/runtime.sh: %s; guest %s; scratch %s; load average %s"
        % (run([HVM, "--version"], check=False).stdout.strip(), GUEST, S,
           open("/proc/loadavg").read().split()[0]))
    which = os.environ.get("BENCH_ONLY", "123")
    if "1" in which:
        rt_throughput(table)
    if "2" in which:
        rt_online_checkpoint(table)
        rt_checkpoint_modes(table)
    if "3" in which:
        rt_start(table)
    print_table("Results (ratio = hvm / peer)", ("#", "figure", "hvm", "peer", "ratio", "target", ""), table)
    say("total %.0f s; load average at the end %s" % (time.time() - started, open("/proc/loadavg").read().split()[0]))


if __name__ == "__main__":
    if sys.argv[1:] == ["vm"]:
        main_vm()
    elif sys.argv[1:] == ["runtime"]:
        main_runtime()
    else:
        raise SystemExit("usage: vmbench.py vm|runtime")
