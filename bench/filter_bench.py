"""Filtered search at scale: per-query time and recall@K against exact filtered search, for
filters matching 50 %, 5 %, 0.5 % and 0.01 % of the items, beside the unfiltered search, in
one run on clustered vectors (the searcher the service uses: exact scan, post-filter or bitmap selector).

    python -m bench.filter_bench [--items 1000000 --queries 200 --k 100 --out docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import faiss
import numpy as np

from bench.sections import write_section
from bench.vectors import clustered
from recsys.artifacts.version import ItemIndex
from recsys.index import formats
from recsys.index import searcher as module
from recsys.index.searcher import Searcher, top_rows

SHARES = (0.5, 0.05, 0.005, 0.0001)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--kind", default="ivf", choices=("ivf", "hnsw", "flat"))
    p.add_argument("--out", type=Path, default=Path("docs/PERFORMANCE.md"))
    args = p.parse_args(argv)
    faiss.omp_set_num_threads(1)
    items, queries = clustered(args.items, args.queries)
    t = time.perf_counter()
    searcher = Searcher(ItemIndex(formats.build(args.kind, items), np.arange(len(items)).astype(str), items, {}))
    print(f"built {args.kind} over {len(items)} items in {time.perf_counter() - t:.1f} s", flush=True)
    rng = np.random.default_rng(0)
    rows_ = [f"| filter matches | rows | path | ms per query (p50 / p99) | vs unfiltered p50 | recall@{args.k} |",
             "|---|---|---|---|---|---|"]
    times = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q[None], args.k)
        times.append(time.perf_counter() - t)
    base = np.percentile(times, 50)
    rows_.append(f"| everything (unfiltered) | {len(items)} | index | {1000 * base:.3f} / "
                 f"{1000 * np.percentile(times, 99):.3f} | 1.00x | |")
    posted: list = []  # per broad query, whether post-filtering answered it
    search_post = searcher.search_post
    searcher.search_post = lambda *a, **kw: posted.append(search_post(*a, **kw)) or posted[-1]
    for share in SHARES:
        posted.clear()
        mask = rng.random(len(items)) < share
        rows = np.flatnonzero(mask)
        times, recalls = [], []
        for q in queries:
            t = time.perf_counter()
            _, got = searcher.search_subset(q, args.k, None, mask, len(rows))
            times.append(time.perf_counter() - t)
            _, want = top_rows(q[None], items, rows, args.k)
            recalls.append(len(set(got.tolist()) & set(want[0].tolist())) / max(1, want.shape[1]))
        answered = sum(p is not None for p in posted)
        path = ("exact scan" if len(rows) <= module.EXACT_SCAN_MAX else
                f"post-filter ({answered}/{len(posted)}), else selector" if answered else "selector")
        p50 = np.percentile(times, 50)
        rows_.append(f"| {100 * share:g} % | {len(rows)} | {path} | {1000 * p50:.3f} / "
                     f"{1000 * np.percentile(times, 99):.3f} | {p50 / base:.2f}x | {np.mean(recalls):.3f} |")
        print(rows_[-1], flush=True)
    load = os.getloadavg()
    body = "\n".join([
        "## Filtered search", "",
        f"`python -m bench.filter_bench --items {args.items} --kind {args.kind}`: one thread, {args.queries} "
        f"queries, top {args.k}, clustered unit vectors (32 dims); recall against an exact scan of the "
        f"matching rows. Load average during the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(a shared machine: compare rows of one run, not runs).", "", *rows_])
    write_section(args.out, "filter-bench", body)
    print(body)


if __name__ == "__main__":
    main()
