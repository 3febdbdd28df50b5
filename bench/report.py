"""Benchmark results: machine description, ratios, JSON + Markdown table + PNG plot."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM: what the numbers were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
    }


RATIOS = (("rtep", "raw"), ("rtep", "peer"), ("rtep-nogeo", "raw"), ("rtep", "rtep-nogeo"))
"""Throughput ratios reported when both systems ran; rtep/rtep-nogeo is geolocation's cost."""


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """rtep's throughput against raw, the peer and itself without geolocation."""
    return {
        f"{a}/{b}": round(runs[a]["events_per_s"] / max(runs[b]["events_per_s"], 1), 3)
        for a, b in RATIOS
        if a in runs and b in runs
    }


def _cpu(run: dict[str, Any]) -> str:
    """CPU seconds per 1,000 events: pipeline · postgres · broker · redis."""
    names = ("pipeline", "postgres", "broker", "redis")
    return " · ".join(f"{run.get(f'cpu_s_per_1k_{name}', 0):.3f}" for name in names)


def _table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Date: {result['date']}; machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}. Input: {result['input']['messages']:,} messages "
        f"({result['input']['source']}), {result['input']['partitions']} partitions.",
        "",
        "| system | events/s to PostgreSQL | CPU s / 1k events: pipeline · postgres · broker · redis "
        "| peak RSS (MiB) | p50 / p99 latency (ms) |",
        "|---|---:|---|---:|---:|",
    ]
    for name, run in result["throughput"].items():
        lat = result["latency"].get(name)
        latency = f"{lat['p50_ms']} / {lat['p99_ms']}" if lat else "–"
        done = "" if run["complete"] else f" (incomplete: {run['stored']:,}/{run['target']:,})"
        lines.append(
            f"| {name} | {run['events_per_s']:,}{done} | {_cpu(run)} "
            f"| {run['peak_rss_mb']:.0f} | {latency} |"
        )
    if result["latency"]:
        any_lat = next(iter(result["latency"].values()))
        lines.append("")
        lines.append(
            f"Latency: {any_lat['offered_per_s']:,} events/s offered for {any_lat['seconds']:.0f} s "
            "with real-time timestamps; latency = `stored_at − ts` in `rtep.events`."
        )
    if result["ratios"]:
        lines.append(
            "Throughput ratios: "
            + ", ".join(f"{k} = {v}" for k, v in result["ratios"].items())
            + "."
        )
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["throughput"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, [result["throughput"][n]["events_per_s"] for n in names], color="#4477aa")
    left.set_title("Sustained throughput to PostgreSQL")
    left.set_ylabel("events/s")
    lat = result["latency"]
    if lat:
        paced = list(lat)
        xs = range(len(paced))
        right.bar([x - 0.2 for x in xs], [lat[n]["p50_ms"] or 0 for n in paced], 0.4, label="p50")
        right.bar([x + 0.2 for x in xs], [lat[n]["p99_ms"] or 0 for n in paced], 0.4, label="p99")
        right.set_xticks(list(xs), paced)
        right.set_title(f"e2e latency at {next(iter(lat.values()))['offered_per_s']:,} events/s")
        right.set_ylabel("ms")
        right.legend()
    fig.suptitle(f"rtep bench {result['date']} ({result['machine']['nproc']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: dict[str, Any], out: Path) -> None:
    """``<date>.json``, ``latest.json``, ``latest.md``, ``latest.png`` under ``out``; print the table."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out / f"{result['date'][:10]}.json").write_text(text)
    (out / "latest.json").write_text(text)
    table = _table(result)
    (out / "latest.md").write_text(table)
    _plot(result, out / "latest.png")
    print(table)


def write_rss(result: dict[str, Any], out: Path) -> None:
    """``rss-<date>.json`` and ``rss-latest.md`` under ``out``; print the summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rss-{result['date'][:10]}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Date: {result['date']}; machine: {result['machine']}", "",
             "| events | stored | RSS at rest (MiB) | peak RSS (MiB) |", "|---:|---:|---:|---:|"]  # fmt: skip
    for p in result["rss"]:
        lines.append(
            f"| {p['events']:,} | {p['stored']:,} | {p['rss_mb']:.0f} | {p['peak_rss_mb']:.0f} |"
        )
    first, last = result["rss"][0]["events"], result["rss"][-1]["events"]
    lines.append(
        f"\nFrom {first:,} to {last:,} events: peak RSS (VmHWM, the memory the run needed) "
        f"{result['peak_growth']:+.1%}; RSS at rest after the step (lowest VmRSS over "
        f"{result['rest_seconds']:.0f} s idle, "
        f"after what the process handed back) {result['growth']:+.1%}."
    )
    (out / "rss-latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_scale(result: dict[str, Any], out: Path) -> None:
    """``scale-<date>.json`` and ``scale-latest.md`` under ``out``; print the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{result['date'][:10]}.json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    base = result["scale"][0]["events_per_s"]
    lines = [
        f"Date: {result['date']}; machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM. "
        f"Input: {result['input']['messages']:,} messages, {result['input']['partitions']} "
        "partitions.",
        "",
        "| processes | events/s to PostgreSQL | × first row | CPU s / 1k events: pipeline (all "
        "processes) · postgres · broker · redis | pipeline CPU s / 1k events by process "
        "| peak RSS, all processes (MiB) |",
        "|---:|---:|---:|---|---|---:|",
    ]
    for run in result["scale"]:
        done = "" if run["complete"] else f" (incomplete: {run['stored']:,}/{run['target']:,})"
        lines.append(
            f"| {run['processes']} | {run['events_per_s']:,}{done} "
            f"| {run['events_per_s'] / max(base, 1):.2f} | {_cpu(run)} "
            f"| {' · '.join(f'{c:.3f}' for c in run.get('cpu_s_per_1k_by_process', []))} "
            f"| {run['peak_rss_mb']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    (out / "scale-latest.md").write_text(table)
    print(table)
