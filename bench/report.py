#!/usr/bin/python3
"""Prints the benchmark figures with ratios and a summary table in Markdown
(for the README). Reads what measure.py and run.sh recorded.

usage: report.py RESULTS.tsv NOTES.tsv
"""
import statistics
import sys

TITLES = {
    "1": "Flatten 4-deep 1 GiB chain to raw",
    "2w": "4 KiB writes, fresh dynamic disk",
    "2r": "4 KiB reads, 3-deep chain",
    "3s": "NBD sequential read, whole disk",
    "3r": "NBD 4 KiB reads",
    "4": "Merge 1 GiB child into parent",
    "5c": "Create 2040 GiB dynamic disk",
    "5f": "Flatten 2 TiB sparse chain to raw",
    "6": "Export a VM (1 GiB disk, 25% data)",
}
# Ratio targets (hvm time / peer time), keyed by item and a word of the peer's name.
TARGETS = {
    ("1@cold", "qemu"): 0.8,
    ("1@warm", "qemu"): 1.0,
    ("3s@cold", "qemu"): 0.8,
    ("3s@warm", "qemu"): 1.0,
    ("4@cold", "qemu"): 0.8,
    ("4@warm", "qemu"): 1.0,
    ("6@cold", "cp"): 1.1,
    ("6@warm", "cp"): 1.1,
    ("1", "qemu"): 1.0,
    ("1", "cat"): 1.5,
    ("2w", "qemu"): 1.0,
    ("2r", "qemu"): 1.0,
    ("3s", "qemu"): 1.0,
    ("3r", "qemu"): 1.0,
    ("4", "qemu"): 1.0,
}


def load(results, notes):
    items, facts = {}, {}
    with open(results) as f:
        for line in f:
            item, name, med, lo, hi, rss = line.rstrip("\n").split("\t")
            entries = items.setdefault(item, [])
            # Interleaved rounds record one line per run: merge them by name.
            e = next((x for x in entries if x["name"] == name), None)
            if e is None:
                e = {"name": name, "meds": [], "min": float(lo), "max": float(hi), "rss": 0}
                entries.append(e)
            e["meds"].append(float(med))
            e["min"] = min(e["min"], float(lo))
            e["max"] = max(e["max"], float(hi))
            e["rss"] = max(e["rss"], int(rss))
    for entries in items.values():
        for e in entries:
            e["med"] = statistics.median(e["meds"])
    with open(notes) as f:
        for line in f:
            item, key, value = line.rstrip("\n").split("\t", 2)
            facts[(item, key)] = value
    return items, facts


def fmt_s(s):
    return "%.0f ms" % (s * 1000) if s < 1 else "%.2f s" % s


def target_for(item, name):
    for (i, word), t in TARGETS.items():
        if i == item and word in name:
            return t
    base = item.split("@")[0]
    if base != item:
        return target_for(base, name)
    return None


def ratio_of(hvm, peer):
    """The median of the per-round ratios when both ran in alternating
    rounds (one line each per round), else the ratio of the medians."""
    if len(hvm["meds"]) > 1 and len(hvm["meds"]) == len(peer["meds"]):
        return statistics.median(h / p for h, p in zip(hvm["meds"], peer["meds"]) if p > 0)
    return hvm["med"] / peer["med"] if peer["med"] > 0 else float("inf")


def item_order(items):
    order = []
    for base in ["1", "2w", "2r", "3s", "3r", "4", "5c", "5f", "6"]:
        for suffix in ["", "@cold", "@warm"]:
            if base + suffix in items:
                order.append(base + suffix)
    return order


def main(results, notes):
    items, facts = load(results, notes)
    rows = []  # (title, hvm figure, peer name, peer figure, ratio, target text, verdict)
    print("== ratios (hvm time / peer time, median of the per-round ratios; below 1: hvm faster)")
    for item in item_order(items):
        entries = items[item]
        hvm = entries[0]
        base, _, cache = item.partition("@")
        title = TITLES[base] + (" (%s cache)" % cache if cache else "")
        print("%s: hvm %s" % (title, fmt_s(hvm["med"])))
        for peer in entries[1:]:
            if peer["name"].startswith("(info)"):
                print("   %-44s %s" % (peer["name"], fmt_s(peer["med"])))
                continue
            ratio = ratio_of(hvm, peer)
            target = target_for(item, peer["name"])
            verdict = "" if target is None else ("met" if ratio <= target else "MISSED")
            print("   vs %-41s %9s   ratio %5.2f%s" % (
                peer["name"], fmt_s(peer["med"]), ratio,
                "" if target is None else "  (target <= %.1f: %s)" % (target, verdict)))
            rows.append((title, fmt_s(hvm["med"]), peer["name"], fmt_s(peer["med"]),
                         "%.2f" % ratio, "<= %.1f" % target if target else "", verdict))
    extra = []
    if "5c" in items:
        hvm = items["5c"][0]
        size = int(facts.get(("5c", "hvm_file_bytes"), "0"))
        ok = hvm["med"] < 0.050
        print("Create 2040 GiB: median %s (target < 50 ms: %s), file %.2f MiB (qemu-img vpc: %.2f MiB)"
              % (fmt_s(hvm["med"]), "met" if ok else "MISSED", size / 2**20,
                 int(facts.get(("5c", "qemu_file_bytes"), "0")) / 2**20))
        extra.append(("Create 2040 GiB dynamic disk: time (median of 31)", fmt_s(hvm["med"]),
                      "< 50 ms", "met" if ok else "MISSED"))
        extra.append(("Create 2040 GiB dynamic disk: file size", "%.2f MiB" % (size / 2**20),
                      "~4 MiB", "met" if size < 5 * 2**20 else "MISSED"))
    if "5f" in items:
        hvm = items["5f"][0]
        mib = hvm["rss"] / 1024
        ok = mib < 64
        out = int(facts.get(("5f", "hvm_out_kib"), "0"))
        line = "Flatten 2 TiB chain: peak RSS %.1f MiB (target < 64 MiB: %s), output allocated %d KiB" % (
            mib, "met" if ok else "MISSED", out)
        if len(items["5f"]) > 1:
            line += "; qemu-img: %.1f MiB" % (items["5f"][1]["rss"] / 1024)
        print(line)
        extra.append(("Flatten 2 TiB sparse chain: peak RSS", "%.1f MiB" % mib, "< 64 MiB",
                      "met" if ok else "MISSED"))
        extra.append(("Flatten 2 TiB sparse chain: output allocated", "%d KiB" % out, "sparse",
                      "met" if out < 64 * 1024 else "MISSED"))
    if ("3", "skipped") in facts:
        print("NBD serve: skipped (%s)" % facts[("3", "skipped")])
    if ("1", "hvm_out_kib") in facts:
        print("Flatten outputs allocated: hvm %s KiB, qemu-img %s KiB (same bytes; cmp checked)" % (
            facts[("1", "hvm_out_kib")], facts.get(("1", "qemu_out_kib"), "?")))
    print("")
    print("== summary (Markdown)")
    print("")
    print("| Benchmark | hvm | Peer | Peer time | hvm/peer | Target | |")
    print("|---|---:|---|---:|---:|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %s | %s | %s |" % r)
    if ("3", "skipped") in facts:
        print("| NBD reads (serve) | skipped | %s | | | | |" % facts[("3", "skipped")])
    print("")
    print("| Figure | hvm | Target | |")
    print("|---|---:|---|---|")
    for r in extra:
        print("| %s | %s | %s | %s |" % r)
    secs = facts.get(("0", "seconds"))
    if secs:
        print("")
        print("Total benchmark time: %s s; load average %s at the start, %s at the end" % (
            secs, facts.get(("0", "load_start"), "?"), facts.get(("0", "load_end"), "?")))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
