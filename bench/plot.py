#!/usr/bin/env python3
"""bench/plot.py [RESULTS_DIR]: the charts docs/performance.md embeds, from latest.json and
latest-latency.json (written by bench/run): throughput.png (ops/s against connections, per
operation, with the direct and p11-kit bests as lines) and latency.png (latency by
percentile, HdrHistogram style, for the single-call and half-of-peak settings)."""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OPS = ["status", "unwrap", "generate_data_key", "encrypt_1k", "sign_p256", "sign_ed25519", "mix",
       "decrypt_batch_10k"]


def load(d):
    with open(os.path.join(d, "latest.json")) as f:
        rows = json.load(f)
    lat = []
    p = os.path.join(d, "latest-latency.json")
    if os.path.exists(p):
        with open(p) as f:
            lat = json.load(f)
    return rows, lat


def best(rows, op, system):
    c = [r for r in rows if r["operation"] == op and r["system"] == system and r["ops_per_s"] is not None]
    return max(c, key=lambda r: r["ops_per_s"]) if c else None


def throughput(rows, out):
    ops = [o for o in OPS if o != "decrypt_batch_10k"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    for ax, op in zip(axes.flat, ops):
        system = "floor" if op == "status" else "daemon"
        for depth, style in ((1, "o-"), (8, "s--"), (4, "^:"), (2, "v:")):
            pts = sorted((r["connections"], r["ops_per_s"], r["ops_per_s_min"], r["ops_per_s_max"]) for r in rows
                         if r["operation"] == op and r["system"] == system and r["depth"] == depth
                         and r["ops_per_s"] is not None)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            err = [[p[1] - (p[2] or p[1]) for p in pts], [(p[3] or p[1]) - p[1] for p in pts]]
            ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=3, label=f"{system}, depth {depth}")
        for sysname, color in (("direct", "tab:green"), ("p11-kit", "tab:red")):
            b = best(rows, op, sysname)
            if b:
                ax.axhline(b["ops_per_s"], color=color, linestyle="--", linewidth=1,
                           label=f"{sysname} best ({b['connections']} thr.)")
        ax.set_xscale("log", base=2)
        conns = sorted({r["connections"] for r in rows if r["operation"] == op and r["system"] == system})
        ax.set_xticks(conns)
        ax.set_xticklabels([str(c) for c in conns])
        ax.minorticks_off()
        ax.set_title(op + (" (floor: empty call)" if op == "status" else ""))
        ax.set_xlabel("connections")
        ax.set_ylabel("ops/s (median; bars: min–max)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes.flat[len(ops)]
    labels, vals, colors = [], [], []
    one = next((r for r in rows if r["operation"] == "unwrap" and r["system"] == "daemon"
                and r["connections"] == 1 and r["depth"] == 1 and r["ops_per_s"]), None)
    for sysname, color in (("daemon", "tab:blue"), ("direct", "tab:green")):
        b = best(rows, "decrypt_batch_10k", sysname)
        if b:
            labels.append(f"DecryptBatch\n{sysname}")
            vals.append(b["ops_per_s"])
            colors.append(color)
    if one:
        labels.append("Decrypt one\nat a time (1×1)")
        vals.append(one["ops_per_s"])
        colors.append("tab:gray")
    ax.bar(labels, vals, color=colors)
    ax.set_title("decrypt_batch_10k: data keys/s")
    ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Throughput against connections (closed loop)", fontsize=13)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput.png"), dpi=90)
    plt.close(fig)


def latency(lat, out):
    def series(op, system, conns=None, depth=None):
        for e in lat:
            if e["operation"] == op and e["system"] == system and (conns is None or e["connections"] == conns) \
                    and (depth is None or e["depth"] == depth):
                return e
        return None

    panels = ["unwrap", "sign_p256", "mix"]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 5.2))
    ticks = [50, 90, 99, 99.9, 99.99]
    colors = {"daemon": "tab:blue", "daemon-open-loop": "tab:orange", "daemon-open-loop-1ms": "tab:purple", "direct": "tab:green", "p11-kit": "tab:red",
              "floor": "tab:gray", "floor-open-loop": "tab:orange"}
    for ax, op in zip(axes, panels):
        wanted = [(op, "daemon", 1, 1, "daemon 1×1"), (op, "daemon-open-loop", None, None, "daemon open loop, 50 % of peak"),
                  (op, "floor-open-loop", None, None, "empty call (Status), open loop at the same rate"),
                  (op, "daemon-open-loop-1ms", None, None, "daemon open loop, highest rate with p99 ≤ 1 ms"),
                  (op, "direct", 1, 1, "direct 1 thread"), (op, "p11-kit", 1, 1, "p11-kit 1 thread"),
                  ("status", "floor", 1, 1, "floor (Status) 1×1")]
        for o, s, c, d, label in wanted:
            e = series(o, s, c, d)
            if not e:
                continue
            xs, ys = [], []
            for p, us in e["percentiles"]:
                if p >= 100 or us <= 0:
                    continue
                xs.append(1 / (1 - p / 100))
                ys.append(us)
            ax.plot(xs, ys, label=label, color=colors[s], linestyle="--" if s.startswith("floor") else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1 / (1 - t / 100) for t in ticks])
        ax.set_xticklabels([f"{t:g}%" for t in ticks])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency µs (log)")
        ax.axhline(1000, color="gray", linewidth=0.8, linestyle=":")
        ax.set_title(op)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    fig.suptitle("Latency by percentile (HdrHistogram; the dotted line is 1 ms)", fontsize=13)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.png"), dpi=90)
    plt.close(fig)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    rows, lat = load(d)
    throughput(rows, d)
    if lat:
        latency(lat, d)
    print("wrote " + ", ".join(os.path.join(d, n) for n in ("throughput.png", "latency.png") if
                               os.path.exists(os.path.join(d, n))))


if __name__ == "__main__":
    main()
