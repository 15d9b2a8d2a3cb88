#!/usr/bin/python3
"""Times a command: N runs, each after an optional untimed preparation, with
the page cache either warm (the inputs read beforehand) or cold (dropped),
and dirty pages always written back first so that an earlier step's
writeback does not land in this measurement. Wall time covers the child
process only (fork to exit); peak memory is the child's maximum resident
set size, from GNU time when installed, else from wait4 (see child_rss).

usage: measure.py --out FILE --item ID --name NAME [--runs N] [--prepare SH]
                  [--warm PATH]... [--cache warm|cold] [--stdout FILE] -- CMD...
Appends one line to FILE: item, name, median s, min s, max s, peak RSS KiB,
and prints a human line.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def warm(paths):
    buf = bytearray(1 << 20)
    for p in paths:
        try:
            with open(p, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass
        except OSError:
            pass


# Linux carries the peak RSS of the forking process (this Python, ~12 MiB)
# over exec into the child's figure. GNU time is a small C program whose
# child starts from ~2 MiB, so prefer it when installed; else the figure is
# an upper bound with a ~12 MiB floor.
RSS_FILE = "/tmp/measure-rss.%d" % os.getpid()
TIME = ["/usr/bin/time", "-f", "%M", "-o", RSS_FILE] if os.access("/usr/bin/time", os.X_OK) else None


def child_rss(usage):
    if not TIME:
        return usage.ru_maxrss
    try:
        with open(RSS_FILE) as f:
            value = int(f.read().split()[-1])
        os.unlink(RSS_FILE)
        return value
    except (OSError, ValueError, IndexError):
        return usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--item", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prepare")
    ap.add_argument("--warm", action="append", default=[])
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE", "warm"))
    ap.add_argument("--stdout", help="keep the last run's standard output here")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("measure.py: no command")
    times, rss = [], 0
    for _ in range(a.runs):
        if a.prepare:
            subprocess.run(["sh", "-c", a.prepare], check=True)
        if a.cache == "cold":
            if not drop_caches():
                sys.exit("measure.py: cannot drop caches (not root?); use BENCH_CACHE=warm")
        else:
            warm(a.warm)
            os.sync()
        out = open(a.stdout, "w") if a.stdout else subprocess.DEVNULL
        t0 = time.perf_counter()
        p = subprocess.Popen(TIME + cmd if TIME else cmd, stdout=out)
        _, status, usage = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
        p.returncode = os.waitstatus_to_exitcode(status)
        if a.stdout:
            out.close()
        if p.returncode != 0:
            sys.exit("measure.py: %s failed (exit %d)" % (" ".join(cmd), p.returncode))
        times.append(t1 - t0)
        rss = max(rss, child_rss(usage))
    med = statistics.median(times)
    with open(a.out, "a") as f:
        f.write("%s\t%s\t%.6f\t%.6f\t%.6f\t%d\n" % (a.item, a.name, med, min(times), max(times), rss))
    print("  %-44s %9.3f s  (min %.3f, max %.3f, %d run%s)  peak RSS %6.1f MiB" % (
        a.name, med, min(times), max(times), a.runs, "" if a.runs == 1 else "s", rss / 1024))


if __name__ == "__main__":
    main()
