#!/usr/bin/python3
"""Alternating runs of a few commands, cold or warm, and the median of the
per-round ratios of each to the last one (the peer). Run in the folder of
the data; used for the hand-run cold figures in the README.

usage: alternate.py ROUNDS cold|warm NAME=[PREP &&& ]CMD ...
  PREP runs untimed before CMD; out.raw, out.vhd and m/ are removed first.
  cold: sync and drop_caches (root) before each run; warm: the l*.vhd and
  l*.qcow2 files of the folder are read first, then sync.
"""
import os
import statistics
import subprocess
import sys


def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm():
    for f in os.listdir("."):
        if f.startswith("l") and (f.endswith(".vhd") or f.endswith(".qcow2")):
            subprocess.run(["cat", f], stdout=subprocess.DEVNULL)
    os.sync()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, cache = int(sys.argv[1]), sys.argv[2]
    cmds = [a.split("=", 1) for a in sys.argv[3:]]
    res = {n: [] for n, _ in cmds}
    import time
    for _ in range(rounds):
        for n, c in cmds:
            prep, _, cmd = c.rpartition("&&&")
            subprocess.run("rm -rf out.raw out.vhd m; " + (prep or "true"), shell=True, check=True)
            drop() if cache == "cold" else warm()
            t = time.perf_counter()
            subprocess.run(cmd, shell=True, check=True)
            res[n].append(time.perf_counter() - t)
    peer = cmds[-1][0]
    print("cache=%s load=%s" % (cache, open("/proc/loadavg").read().split()[0]))
    for n, _ in cmds:
        ratios = [a / b for a, b in zip(res[n], res[peer])]
        print("%-10s times %s  median ratio vs %s: %.2f" % (
            n, " ".join("%.2f" % x for x in res[n]), peer, statistics.median(ratios)))


if __name__ == "__main__":
    main()
