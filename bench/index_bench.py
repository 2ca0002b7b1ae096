"""Index benchmark: build time, memory, latency, throughput and recall of each FAISS format.

    python -m bench.index_bench [--sizes 100000,1000000] [--formats flat,hnsw,ivf-flat,ivf]
                                [--embeddings PATH [--upsample]] [--queries 1000]
                                [--out docs/PERFORMANCE.md]

For each catalogue size and each format: build time (all FAISS threads), index memory (bytes
of the serialized index, and the process's resident-memory growth over the build),
single-query latency on one thread (p50/p99, k=100, one query per call), batched throughput
(batches of 32 queries, all threads), recall@100 against the exact flat index, and the ratio
of each figure to the flat index measured in the same run. Vectors are synthetic clustered,
L2-normalised ones (bench/vectors.py) unless --embeddings names a model's item embeddings.

Progress goes to stderr; the result is a Markdown section of --out between
`<!-- index-bench:start -->` and `<!-- index-bench:end -->`, replaced in place on re-runs so
other sections of the file are kept. The section links a plot of recall@100 against
single-query p50 per format and size, performance/<section>-recall.png beside --out
(bench/plots.py).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from bench import plots
from bench import vectors as vec
from bench.sections import markers, write_section
from recsys.artifacts import host
from recsys.artifacts.metrics import recall_at_k
from recsys.index import formats

SECTION = "index-bench"
START, END = markers(SECTION)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "PERFORMANCE.md"
FORMATS = ("flat", "hnsw", "ivf-flat", "ivf")
COLUMNS = ("items", "format", "parameters", "build s", "build ×flat", "index MB", "index ×flat", "RSS +MB",
           "p50 ms", "p99 ms", "p50 ×flat", "batch q/s", "q/s ×flat", "recall@100")
# The targets at 1M items (single query on one thread, build on two cores).
TARGET_ITEMS, TARGET_BUILD_S, TARGET_RECALL, TARGET_P50_MS = 1_000_000, 60.0, 0.97, 0.3


def log(msg: str) -> None:
    print(f"[index-bench] {msg}", file=sys.stderr, flush=True)


def build_format(name: str, items: np.ndarray) -> faiss.Index:
    """`flat`, `hnsw`, `ivf`: the production formats (index/formats.py), default parameters.

    `ivf-flat` is the `ivf` format before it stored fp16 vectors, kept as a reference point:
    IndexIVFFlat, 4·sqrt(N) lists, k-means on every vector, nprobe 32.
    """
    if name in ("flat", "hnsw", "ivf"):
        return formats.build(name, items)
    if name == "ivf-flat":
        n, dim = items.shape
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = formats.DEFAULT_NPROBE
        index.train(items)
        index.add(items)
        return index
    raise ValueError(f"unknown format {name!r}; expected one of {FORMATS}")


def describe(index: faiss.Index) -> str:
    index = faiss.downcast_index(index)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf = faiss.downcast_index(ivf)
        store = "fp16" if isinstance(ivf, faiss.IndexIVFScalarQuantizer) else "float32"
        return f"{ivf.nlist:,} lists, {store}, nprobe {ivf.nprobe}"
    if isinstance(index, faiss.IndexHNSW):
        h = index.hnsw
        return f"M {h.nb_neighbors(1)}, efConstruction {h.efConstruction}, efSearch {h.efSearch}"
    return "exact"


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so RSS growth is the index's."""
    gc.collect()
    host.release_free_memory()


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Row:
    items: int
    format: str
    parameters: str
    build_s: float
    index_bytes: int
    rss_bytes: int
    p50_ms: float
    p99_ms: float
    qps: float
    recall: float


def measure(name: str, items: np.ndarray, queries: np.ndarray, exact: np.ndarray, k: int, batch: int,
            latency_queries: int, threads: int, nprobe: int | None, ef_search: int | None,
            batch_seconds: float = 0.5) -> Row:
    n = len(items)
    faiss.omp_set_num_threads(threads)
    release_memory()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = build_format(name, items)
    build_s = time.perf_counter() - t0
    release_memory()
    rss_growth = rss_bytes() - rss0
    formats.set_search_params(index, nprobe=nprobe, ef_search=ef_search)
    index_bytes = int(faiss.serialize_index(index).nbytes)
    log(f"{n:,} {name}: built in {build_s:.1f} s ({describe(index)}), {index_bytes / 1e6:.1f} MB")

    # Batched: all threads, batches of `batch`; passes repeated for at least `batch_seconds`.
    found = np.concatenate([index.search(queries[i:i + batch], k)[1] for i in range(0, len(queries), batch)])
    recall = recall_at_k(found, exact)
    done, t0 = 0, time.perf_counter()
    while True:
        for i in range(0, len(queries), batch):
            index.search(queries[i:i + batch], k)
        done += len(queries)
        elapsed = time.perf_counter() - t0
        if elapsed >= batch_seconds or done >= 20 * len(queries):
            break
    qps = done / elapsed

    # Single queries, one thread, one query per call (what one request costs the service).
    faiss.omp_set_num_threads(1)
    try:
        for q in queries[:20]:
            index.search(q[None], k)
        times = np.empty(min(latency_queries, len(queries)))
        for i in range(len(times)):
            q = queries[i:i + 1]
            t0 = time.perf_counter()
            index.search(q, k)
            times[i] = time.perf_counter() - t0
    finally:
        faiss.omp_set_num_threads(threads)
    p50, p99 = (float(x) * 1e3 for x in np.percentile(times, [50, 99]))
    log(f"{n:,} {name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms, {qps:,.0f} q/s batched, recall@{k} {recall:.4f}")
    row = Row(n, name, describe(index), build_s, index_bytes, rss_growth, p50, p99, qps, recall)
    del index
    release_memory()
    return row


def machine() -> dict:
    """The host, with what the index figures depend on: FAISS threads and versions, the commit."""
    try:
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if commit and subprocess.run([*git, "status", "--porcelain", "--", "index", "bench"], capture_output=True,
                                     text=True, timeout=10).stdout.strip():
            commit += ", with uncommitted changes to index/ or bench/"
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {**host.machine(), "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__,
            "numpy": np.__version__, "commit": commit or "unknown"}


def _ratio(x: float, base: float | None) -> str:
    if base is None or base == 0:
        return "–"
    r = x / base
    return f"{r:.3g}×" if r < 100 else f"{r:,.0f}×"


def table(rows: list[Row], k: int = 100) -> list[str]:
    columns = COLUMNS[:-1] + (f"recall@{k}",)
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if c in ("format", "parameters") else "--:" for c in columns) + "|"]
    flat = {r.items: r for r in rows if r.format == "flat"}
    for r in rows:
        f = flat.get(r.items)
        cells = [f"{r.items:,}", r.format, r.parameters, f"{r.build_s:.2f}", _ratio(r.build_s, f and f.build_s),
                 f"{r.index_bytes / 1e6:.1f}", _ratio(r.index_bytes, f and f.index_bytes),
                 f"{r.rss_bytes / 1e6:.1f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", _ratio(r.p50_ms, f and f.p50_ms),
                 f"{r.qps:,.0f}", _ratio(r.qps, f and f.qps), f"{r.recall:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(rows: list[Row], k: int) -> list[str]:
    big = [r for r in rows if r.items >= TARGET_ITEMS and r.format == formats.choose("auto", r.items)]
    head = (f"Targets (the issue, at {TARGET_ITEMS:,} items: build ≤ {TARGET_BUILD_S:g} s on two cores, "
            f"recall@{k} ≥ {TARGET_RECALL}, ≤ {TARGET_P50_MS} ms per single query on one thread, read as p50)")
    if not big:
        return [f"{head}: not measured in this run (no size ≥ {TARGET_ITEMS:,} with the auto format)."]
    out = [f"{head}:", ""]
    for r in big:
        checks = [("build", f"{r.build_s:.1f} s", r.build_s <= TARGET_BUILD_S),
                  (f"recall@{k}", f"{r.recall:.4f}", r.recall >= TARGET_RECALL),
                  ("p50", f"{r.p50_ms:.3f} ms", r.p50_ms <= TARGET_P50_MS)]
        out.append(f"- {r.items:,} items, {r.format}: " + ", ".join(
            f"{what} {value} {'met' if ok else 'NOT met'}" for what, value, ok in checks))
    return out


def section(rows: list[Row], info: dict, command: str, data: str, args, load: tuple[float, float],
            images: list[tuple[str, str]] = ()) -> str:
    """The Markdown section; `images` (alt text, path) from plots.index are linked at its end."""
    sizes = sorted({r.items for r in rows})
    auto = ", ".join(f"{formats.choose('auto', n)} at {n:,}" for n in sizes)
    lines = [
        "## Index: build, memory, latency, recall" + ("" if args.embeddings is None else ", trained embeddings"),
        "",
        f"Generated by `{command}` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
        f"(commit {info['commit']}); re-running replaces this section only.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores (FAISS OpenMP threads {info['threads']}), "
        f"{info['system']}; Python {info['python']}, faiss {info['faiss']}, numpy {info['numpy']}. "
        f"Load average {load[0]:.2f} at the start, {load[1]:.2f} at the end (other work on the machine "
        f"inflates timings; ratios within one run are the comparable figures).",
        f"- Data: {data}",
        f"- Method: build with all threads; memory = serialized index bytes and the process's resident "
        f"growth over the build; single query = one query per `search` call on one thread, k={args.k}, "
        f"p50/p99 over {min(args.latency_queries, args.queries):,} queries after a warm-up; batched = "
        f"batches of {args.batch} with all threads; recall@{args.k} against the exact flat index. "
        f"×flat = the figure divided by flat's at the same size, in this run. `auto` picks {auto}.",
        "- Formats: flat = exact IndexFlatIP (the baseline); hnsw = IndexHNSWFlat; ivf = the production "
        "IVF format (index/formats.py); ivf-flat = the ivf format before this change (IndexIVFFlat, "
        "4·√N lists, k-means on every vector), for reference.",
        "",
        *table(rows, args.k),
        "",
        *targets(rows, args.k),
        "",
        *(plots.links(images) if images else [plots.missing()]),
    ]
    return "\n".join(lines) + "\n"


def load_data(args, n: int, rng_seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(items (n, D), queries, description) for one size."""
    if args.embeddings is None:
        world = vec.ClusteredWorld(dim=args.dim, seed=args.seed)
        items = world.sample(n, args.seed + 1)
        queries = world.sample(args.queries, args.seed + 2)
        desc = (f"synthetic clustered vectors (bench/vectors.py: {len(world.centres):,} Gaussian clusters with "
                f"power-law sizes, decaying spectrum, L2-normalised, {args.dim}-d, seed {args.seed}); "
                f"{args.queries:,} queries from the same mixture.")
        return items, queries, desc
    source = vec.load_embeddings(args.embeddings)
    rng = np.random.default_rng(rng_seed)
    if n > len(source) and not args.upsample:
        raise SystemExit(f"index-bench: error: --sizes {n:,} > {len(source):,} rows in {args.embeddings} "
                         f"(pass --upsample to add jittered copies)")
    perm = rng.permutation(len(source))
    items = vec.resample(source[perm], n, seed=rng_seed)
    queries = vec.user_queries(args.embeddings, args.queries, seed=rng_seed + 1)
    if queries is not None:
        what = "the user tower's embeddings of random stored users (real queries)"
    else:
        queries = vec.jittered_queries(source, args.queries, seed=rng_seed + 1)
        what = "random items plus noise (5% of the per-dimension spread), normalised like the items"
    desc = (f"item embeddings from `{args.embeddings}` ({len(source):,} × {source.shape[1]}"
            f"{', upsampled with jittered copies' if n > len(source) else ''}); {len(queries):,} queries = "
            f"{what}.")
    return items, queries, desc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.index_bench", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000", help="catalogue sizes, comma-separated")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"formats to measure, from {','.join(FORMATS)}")
    p.add_argument("--embeddings", help="a trained VERSION dir, its index dir, or a .npy file of item embeddings")
    p.add_argument("--upsample", action="store_true", help="allow sizes above the embeddings' row count")
    p.add_argument("--queries", type=int, default=1000, help="query vectors (default 1000)")
    p.add_argument("--latency-queries", type=int, default=1000, help="single queries timed (default 1000)")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batch-seconds", type=float, default=0.5,
                   help="repeat the batched passes for at least this long (default 0.5)")
    p.add_argument("--dim", type=int, default=32, help="dimension of the synthetic vectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nprobe", type=int, help="override ivf nprobe (default: the format's, 32)")
    p.add_argument("--ef-search", type=int, help="override hnsw efSearch (default: the format's, 64)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown file to write the section into")
    p.add_argument("--section", default=SECTION,
                   help=f"name of the section to (re)write (default {SECTION}; e.g. index-bench-trained for a run "
                        "on --embeddings, so both stay in the file)")
    args = p.parse_args(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    names = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not sizes or min(sizes) < 1 or not names or set(names) - set(FORMATS):
        p.error(f"--sizes must be positive and --formats from {','.join(FORMATS)}")
    names = [f for f in FORMATS if f in names]   # flat first: it is the baseline and the exact answer

    threads = faiss.omp_get_max_threads()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows, data = [], ""
    try:
        for n in sizes:
            log(f"{n:,} items: generating data")
            items, queries, data = load_data(args, n, args.seed)
            k = min(args.k, n)
            exact = faiss.IndexFlatIP(items.shape[1])
            exact.add(items)
            _, truth = exact.search(queries, k)
            del exact
            for name in names:
                rows.append(measure(name, items, queries, truth, k, args.batch, args.latency_queries,
                                    threads, args.nprobe, args.ef_search, args.batch_seconds))
            del items
    finally:
        faiss.omp_set_num_threads(threads)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = "python -m bench.index_bench " + shlex.join(argv) if argv else "python -m bench.index_bench"
    images = plots.index(rows, args.k, Path(args.out), args.section,
                         (TARGET_P50_MS, TARGET_RECALL, f"targets at {TARGET_ITEMS:,} items"))
    text = section(rows, machine(), command.strip(), data, args, (load0, load1), images)
    write_section(Path(args.out), args.section, text)
    log(f"wrote {args.out}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
