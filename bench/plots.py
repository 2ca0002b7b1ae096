"""Plots of the benchmarks' figures: PNGs in a `performance/` folder beside the report they
are linked from (docs/performance/ for docs/PERFORMANCE.md), named after the section.

matplotlib is the optional `report` extra (the bench make-targets install it). Without it a
benchmark still writes its table, with a line saying why there is no plot: a run of minutes
should not fail at its last step for want of a drawing library.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER = "performance"
PERCENTILES = (50, 75, 90, 99)  # what wrk --latency prints


def pyplot():
    """matplotlib.pyplot drawing to files, or None when the `report` extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def missing() -> str:
    return "No plots: matplotlib is not installed (`pip install -e '.[report]'`; the bench make-targets do)."


def save(fig, out: Path, section: str, what: str) -> str:
    """Write `fig` as <out's folder>/performance/<section>-<what>.png; the path relative to `out`."""
    path = Path(out).parent / FOLDER / f"{section}-{what}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(os.path.relpath(path, Path(out).parent)).as_posix()


def links(images: list[tuple[str, str]]) -> list[str]:
    """Markdown image lines for (alt text, relative path) pairs."""
    return [f"![{alt}]({path})" for alt, path in images]


def load(rows: list[dict], configs: list[str], out: Path, section: str) -> list[tuple[str, str]]:
    """The load benchmark: requests/s and p99 against connections, one line per configuration;
    the latency percentiles of every configuration at the highest connection count."""
    plt = pyplot()
    if plt is None or not rows:
        return []
    images = []
    fig, (rps, p99) = plt.subplots(1, 2, figsize=(10, 3.8))
    counts = sorted({r["connections"] for r in rows})
    for name in configs:
        mine = sorted((r for r in rows if r["config"] == name), key=lambda r: r["connections"])
        if mine:
            x = [r["connections"] for r in mine]
            rps.plot(x, [r["rps"] for r in mine], marker="o", label=name)
            p99.plot(x, [r["p99"] for r in mine], marker="o", label=name)
    rps.set(title="throughput", xlabel="connections", ylabel="requests/s", ylim=(0, None))
    p99.set(title="p99 latency", xlabel="connections", ylabel="ms", ylim=(0, None))
    for ax in (rps, p99):
        ax.set_xscale("log")
        ax.set_xticks(counts, [f"{c:,}" for c in counts])  # the measured counts, not powers of ten
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    images.append(("requests/s and p99 against connections", save(fig, out, section, "throughput")))
    plt.close(fig)

    top = counts[-1]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name in configs:
        r = next((r for r in rows if r["config"] == name and r["connections"] == top), None)
        if r is not None and all(f"p{q}" in r for q in PERCENTILES):
            ax.plot(range(len(PERCENTILES)), [r[f"p{q}"] for q in PERCENTILES], marker="o", label=name)
    ax.set_xticks(range(len(PERCENTILES)), [f"p{q}" for q in PERCENTILES])
    ax.set(title=f"latency distribution at {top:,} connections", xlabel="percentile", ylabel="ms",
           ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    images.append((f"latency percentiles at {top:,} connections", save(fig, out, section, "latency")))
    plt.close(fig)
    return images


def index(rows: list, k: int, out: Path, section: str, targets: tuple[float, float, str] | None = None
          ) -> list[tuple[str, str]]:
    """The index benchmark: recall@k against single-query p50, a colour per format, a marker per
    catalogue size; a thin line joins one format's sizes. `targets`: (p50 ms, recall, label), dashed."""
    plt = pyplot()
    if plt is None or not rows:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = sorted({r.items for r in rows})
    markers = dict(zip(sizes, "os^Dvp*"))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(dict.fromkeys(r.format for r in rows)):
        mine = sorted((r for r in rows if r.format == name), key=lambda r: r.items)
        colour = colours[i % len(colours)]
        ax.plot([r.p50_ms for r in mine], [r.recall for r in mine], color=colour, lw=0.8, alpha=0.6)
        for r in mine:
            ax.scatter(r.p50_ms, r.recall, color=colour, marker=markers.get(r.items, "o"), s=50, zorder=3)
        ax.plot([], [], color=colour, marker="o", lw=0, label=name)  # legend: a colour per format
    if len(sizes) > 1:
        for n in sizes:
            ax.scatter([], [], color="grey", marker=markers.get(n, "o"), label=f"{n:,} items")
    if targets is not None:
        ax.axvline(targets[0], color="grey", ls="--", lw=0.8)
        ax.axhline(targets[1], color="grey", ls="--", lw=0.8, label=targets[2])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:g}"))  # 0.1, not 10^-1
    ax.set(title=f"recall@{k} against query time", xlabel="single-query p50, ms (one thread, log scale)",
           ylabel=f"recall@{k}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    image = (f"recall@{k} against single-query p50 per format and size", save(fig, out, section, "recall"))
    plt.close(fig)
    return [image]
