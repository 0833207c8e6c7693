#!/usr/bin/python3
"""Plots of a benchmark's JSON as PNG files: of the end-to-end benchmark
(bench/e2e_bench.cc) or of `ctrjoin bench --json` (which runs this script for
--plot; the build copies it next to the binary as ctrjoin-plot.py).

    /usr/bin/python3 bench/plot.py bench/results/e2e.json bench/results
    /usr/bin/python3 bench/plot.py --intervals OUT_DIR interval-*.json

The second form (bench/interval_sweep.sh) takes one `ctrjoin bench --json`
per commit interval and draws interval_cost.png: the exactly-once cost and
the visibility p99 at 50% of the peak against the interval.

Draws, prefixed e2e_ or bench_ after the JSON's kind:
  *_throughput.png       events/s of every configuration (e2e only)
  *_load_throughput.png  achieved against offered events/s (paced source)
  *_load_latency.png     processing latency p50/p99/p99.9 against offered load
  *_memory.png           peak RSS, hot join state and RocksDB on disk against
                         pending impressions, with the state budget (e2e only)
Uses Debian's python3-matplotlib (scripts/setup-bench installs it).
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def is_bench(results):
    return results.get("benchmark") == "ctrjoin bench"


def prefix(results):
    return "bench" if is_bench(results) else "e2e"


def swept(results):
    """The load sweep grouped by configuration: {name: [run, ...]} by offered rate."""
    groups = {}
    for run in results.get("load_sweep", []):
        # ctrjoin bench sweeps one configuration: its runs are named by load.
        name = results.get("config", "ctrjoin") if is_bench(results) else run["name"]
        groups.setdefault(name, []).append(run)
    for runs in groups.values():
        runs.sort(key=lambda r: r["offered_rate"])
    return groups


def subtitle(results):
    machine = results.get("machine", {})
    settings = results.get("settings", {})
    shards = settings.get("shards", "?")
    return "{} cores, {} events, {} shards, W {} s".format(
        machine.get("cores", "?"), settings.get("events", "?"), "auto" if shards == 0 else shards,
        settings.get("window_ms", 0) / 1000)


def plot_throughput(results, out):
    configs = results.get("configs", [])
    if not configs:
        return
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [c["name"] for c in configs]
    rates = [c["events_per_s"] / 1000 for c in configs]
    colors = ["tab:blue" if c["system"] == "ctrjoin" else "tab:gray" for c in configs]
    bars = ax.barh(names, rates, color=colors)
    ax.bar_label(bars, fmt="%.0f", padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("thousand events/s (blue: ctrjoin, gray: baselines)")
    ax.set_title("Throughput per configuration\n" + subtitle(results), fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, prefix(results) + "_throughput.png"), dpi=110)
    plt.close(fig)


def plot_load(results, out):
    groups = swept(results)
    if not groups:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    top = 0
    for name, runs in groups.items():
        offered = [r["offered_rate"] / 1000 for r in runs]
        achieved = [r["events_per_s"] / 1000 for r in runs]
        top = max(top, max(offered), max(achieved))
        ax.plot(offered, achieved, marker="o", label=name)
    ax.plot([0, top], [0, top], color="lightgray", linestyle="--", label="achieved = offered")
    ax.set_xlabel("offered thousand events/s")
    ax.set_ylabel("achieved thousand events/s")
    ax.set_title("Throughput against offered load\n" + subtitle(results), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, prefix(results) + "_load_throughput.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {"p50": ":", "p99": "-", "p999": "--"}
    for i, (name, runs) in enumerate(groups.items()):
        color = "C{}".format(i)
        offered = [r["offered_rate"] / 1000 for r in runs]
        for q, style in styles.items():
            ax.plot(offered, [r["latency_ms"][q] for r in runs], linestyle=style, marker="o",
                    markersize=3, color=color, label="{} {}".format(name, q.replace("p999", "p99.9")))
    if not is_bench(results):
        ax.axhline(2, color="red", linewidth=0.8, alpha=0.5, label="target p99 at 50%: 2 ms")
    ax.set_yscale("log")
    ax.set_xlabel("offered thousand events/s")
    ax.set_ylabel("source read (due time) -> sink write, ms")
    ax.set_title("Processing latency against offered load\n" + subtitle(results), fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(os.path.join(out, prefix(results) + "_load_latency.png"), dpi=110)
    plt.close(fig)


def plot_memory(results, out):
    runs = sorted(results.get("memory_sweep", []), key=lambda r: r["peak_state_entries"])
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    pending = [max(r["peak_state_entries"], 1) for r in runs]
    ax.plot(pending, [r["peak_rss_mib"] for r in runs], marker="o", label="peak RSS")
    ax.plot(pending, [r["peak_hot_state_mib"] for r in runs], marker="s",
            label="hot join state (in memory)")
    ax.plot(pending, [r["rocksdb_disk_mib"] for r in runs], marker="^",
            label="spilled state, RocksDB on disk")
    budget = runs[0]["state_budget_mib"]
    ax.axhline(budget, color="red", linewidth=0.8, alpha=0.6,
               label="state budget {} MiB".format(budget))
    ax.set_xscale("log")
    ax.set_xlabel("pending impressions (peak join state keys)")
    ax.set_ylabel("MiB")
    ax.set_title("Memory against pending impressions\n" + subtitle(results), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(os.path.join(out, prefix(results) + "_memory.png"), dpi=110)
    plt.close(fig)


def interval_point(results):
    """(interval ms, cost %, visibility p99 ms at 50% of the peak, commit
    latency p99 ms at the peak, CPU per event added %) of one `ctrjoin bench
    --json` with checkpoints."""
    eos = results["exactly_once"]
    half = [r for r in results["runs"] if abs(r.get("load_fraction", 0) - 0.5) < 1e-9]
    vis = half[0]["visibility_ms"]["p99"] if half else float("nan")
    peak = [r for r in results["runs"] if r["name"] == "peak"][0]
    # No epoch but the final one (an interval longer than the run): no point.
    lag = peak["commit_lag_ms"]
    plain = [r for r in results["runs"] if r["name"] == "plain"][0]
    cpu_percent = (peak["cpu_us_per_event"] / plain["cpu_us_per_event"] - 1) * 100
    return (eos["interval_ms"], eos["cost_percent"], vis,
            lag["p99"] if lag["count"] > 0 else float("nan"), cpu_percent)


def interval_axes(ax, ylabel, title):
    ax.set_xscale("log")
    ax.set_xlabel("commit interval (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")


def plot_intervals(paths, out):
    points = []
    for path in paths:
        with open(path) as f:
            results = json.load(f)
        points.append(interval_point(results))
    points.sort()
    intervals = [p[0] for p in points]
    fig, (cost_ax, vis_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    cost_ax.plot(intervals, [p[1] for p in points], marker="o",
                 label="throughput lost against plain")
    cost_ax.plot(intervals, [p[4] for p in points], marker="s",
                 label="CPU per event added to plain's")
    cost_ax.axhline(5, color="red", linewidth=0.8, alpha=0.6, label="target 5%")
    cost_ax.axhline(0, color="black", linewidth=0.5)
    interval_axes(cost_ax, "%", "Exactly-once cost at the peak (median of the repeats)")
    vis_ax.plot(intervals, [p[2] for p in points], marker="o",
                label="visibility p99 at 50% of the peak")
    vis_ax.plot(intervals, [p[3] for p in points], marker="s",
                label="barrier to commit p99 at the peak")
    vis_ax.plot(intervals, [i + 25 for i in intervals], color="red", linewidth=0.8,
                alpha=0.6, label="interval + 25 ms")
    vis_ax.set_yscale("log")
    interval_axes(vis_ax, "ms", "Output visibility")
    with open(paths[0]) as f:
        fig.suptitle("Exactly once against the commit interval: " + subtitle(json.load(f)),
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "interval_cost.png"), dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--intervals":
        os.makedirs(sys.argv[2], exist_ok=True)
        plot_intervals(sys.argv[3:], sys.argv[2])
        return
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.json OUT_DIR | plot.py --intervals OUT_DIR RESULT.json...")
    with open(sys.argv[1]) as f:
        results = json.load(f)
    os.makedirs(sys.argv[2], exist_ok=True)
    plot_throughput(results, sys.argv[2])
    plot_load(results, sys.argv[2])
    plot_memory(results, sys.argv[2])


if __name__ == "__main__":
    main()
