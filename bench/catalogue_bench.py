"""Live catalogue benchmark: changes served while the service runs, on an indexed artifact root.

    python -m bench.catalogue_bench --artifacts ROOT [--changes 1000 --bulk 100000 --duration 10
                                                      --rounds 3 --connections 8 --out docs/PERFORMANCE.md]

Starts `recsys serve` on ROOT with a fresh catalogue store (the root's own is not touched) and
measures: a POST /admin/items of --changes items made unavailable (the top of one user's list),
from the call until that user's answer no longer holds them; a POST of --changes new items;
`recsys catalogue apply` of --bulk new items from a Parquet file, and until the service serves
them; requests/s at --connections (closed loop, random known users, k=20) with no changes and
while new items stream in at 100 a second (10 every 100 ms), in --rounds alternating windows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from bench.sections import write_section
from recsys.artifacts.feature_store import FeatureStore
from recsys.artifacts.version import Version

SECTION = "catalogue-bench"
TOKEN = "bench-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def attribute_rows(items: FeatureStore, n: int, prefix: str, seed: int) -> list[dict]:
    """n new items named prefix0.. with the attributes of random catalogue items."""
    picks = np.random.default_rng(seed).integers(0, len(items), n)
    cols = {name: col[picks] for name, col in items.columns.items() if name != items.key}
    return [{"item_id": f"{prefix}{i}", **{name: (float(col[i]) if col.dtype.kind == "f" else str(col[i]))
                                           for name, col in cols.items()}} for i in range(n)]


def load(base: str, users: list[str], connections: int, duration: float, seed: int) -> float:
    """Requests/s of a closed loop of `connections` clients."""
    done, stop = [0] * connections, time.monotonic() + duration

    def client(j):
        rng = np.random.default_rng(seed + j)
        with httpx.Client(base_url=base, timeout=10) as c:
            while time.monotonic() < stop:
                r = c.post("/recommend", json={"user_id": users[rng.integers(len(users))], "k": 20})
                if r.status_code != 200:
                    raise RuntimeError(r.text)
                done[j] += 1

    threads = [threading.Thread(target=client, args=(j,)) for j in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / duration


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", required=True, type=Path)
    p.add_argument("--changes", type=int, default=1000)
    p.add_argument("--bulk", type=int, default=100_000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="quiet and streaming windows, alternating, of --duration each")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    version = Version.open(args.artifacts, need_index=True)
    users = [str(u) for u in version.table("user").ids[:10_000]]
    # Read once: the streaming client must not spend the cores the service measures on Parquet.
    items = version.table("item")
    work = Path(tempfile.mkdtemp(prefix="recsys-catalogue-bench-"))
    db = work / "catalogue.db"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}, "RECSYS_ADMIN_TOKEN": TOKEN,
           "RECSYS_CATALOGUE_DB": str(db), "RECSYS_LOG_LEVEL": "warning", "RECSYS_DRAIN_SECONDS": "0"}
    server = subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--artifacts", str(args.artifacts),
                               "--port", str(port), "--max-k", "10000"], env=env)
    base = f"http://127.0.0.1:{port}"
    out = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            while True:
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            out["items"] = c.get("/readyz").json()["items"]
            # A live change: the user's top items made unavailable, until the user's answer lacks them.
            top = [i["item_id"] for i in c.post("/recommend", json={"user_id": users[0], "k": args.changes}).json()["items"]]
            t = time.perf_counter()
            r = c.post("/admin/items", json={"unavailable": top}, headers=AUTH)
            assert r.status_code == 200, r.text
            out["unavailable_post_s"] = time.perf_counter() - t
            while set(i["item_id"] for i in c.post("/recommend", json={"user_id": users[0], "k": 20}).json()["items"]) & set(top):
                if time.perf_counter() - t > 60:
                    raise RuntimeError("items made unavailable were still served after 60 s")
            out["unavailable_visible_s"] = time.perf_counter() - t
            rows = attribute_rows(items, args.changes, "live-", 1)
            t = time.perf_counter()
            r = c.post("/admin/items", json={"upsert": rows}, headers=AUTH)
            assert r.status_code == 200, r.text
            out["upsert_post_s"] = time.perf_counter() - t
            # A bulk file through the CLI, and until the service serves all of it.
            bulk = work / "bulk.parquet"
            pd.DataFrame(attribute_rows(items, args.bulk, "bulk-", 2)).assign(op="upsert").to_parquet(bulk)
            before = c.get("/readyz").json()["items"]
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "recsys", "catalogue", "apply", "--artifacts", str(args.artifacts),
                            "--file", str(bulk), "--catalogue-db", str(db)], check=True, capture_output=True)
            out["bulk_cli_s"] = time.perf_counter() - t
            while c.get("/readyz").json()["items"] < before + args.bulk:
                if time.perf_counter() - t > 600:
                    raise RuntimeError("the bulk change was not served within 600 s")
                time.sleep(0.05)
            out["bulk_served_s"] = time.perf_counter() - t
        # Throughput without and with a stream of 100 new items a second, in alternating
        # windows (quiet, streaming, quiet, ...): a drift of the machine during the run then
        # weighs on both sides alike.
        quiet, streaming, streamed, streamed_s = [], [], 0, 0.0
        for r in range(args.rounds):
            quiet.append(load(base, users, args.connections, args.duration, 10 + r))
            stop = threading.Event()
            sent = [0, 0.0]

            def stream(r=r, stop=stop, sent=sent):
                n, start = 0, time.perf_counter()
                with httpx.Client(base_url=base, timeout=30) as c:
                    while not stop.is_set():
                        rows = [dict(row, item_id=f"stream-{r}-{n}-{j}")
                                for j, row in enumerate(attribute_rows(items, 10, "", n))]
                        c.post("/admin/items", json={"upsert": rows}, headers=AUTH).raise_for_status()
                        n += 1
                        # On a fixed schedule (10 items every 100 ms), whatever each call took.
                        stop.wait(max(0.0, start + 0.1 * n - time.perf_counter()))
                sent[:] = [10 * n, time.perf_counter() - start]

            streamer = threading.Thread(target=stream)
            streamer.start()
            streaming.append(load(base, users, args.connections, args.duration, 20 + r))
            stop.set()
            streamer.join()
            streamed, streamed_s = streamed + sent[0], streamed_s + sent[1]
        out["rps_quiet"], out["rps_streaming"] = float(np.mean(quiet)), float(np.mean(streaming))
        out["rps_windows"] = {"quiet": quiet, "streaming": streaming}
        out["streamed_items"] = streamed
        out["streamed_per_s"] = streamed / streamed_s
        out["streaming_ratio"] = out["rps_streaming"] / out["rps_quiet"]
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(out, indent=2))
    if args.out:
        visible = max(out["unavailable_visible_s"], out["upsert_post_s"])
        targets = [(f"{args.changes:,} changes visible within 1 s", visible <= 1.0),
                   (f"{args.bulk:,} items by the CLI within 30 s", out["bulk_cli_s"] <= 30),
                   ("at least 0.9x the requests/s while 100 items a second stream in", out["streaming_ratio"] >= 0.9)]
        body = (f"### Live catalogue\n\nMeasured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {out['items']:,} items "
                f"(`python -m bench.catalogue_bench --artifacts ROOT`), {args.connections} Python clients:\n\n"
                "| | |\n|---|---|\n"
                f"| {args.changes:,} items made unavailable: POST answered / gone from answers | "
                f"{out['unavailable_post_s']:.3f} s / {out['unavailable_visible_s']:.3f} s |\n"
                f"| {args.changes:,} new items: POST answered (served by that worker) | {out['upsert_post_s']:.3f} s |\n"
                f"| {args.bulk:,} new items by `recsys catalogue apply` / until served | "
                f"{out['bulk_cli_s']:.1f} s / {out['bulk_served_s']:.1f} s |\n"
                f"| requests/s quiet / with new items streaming in ({out['streamed_per_s']:.0f} a second; "
                f"{args.rounds} alternating windows of {args.duration:g} s each) | "
                f"{out['rps_quiet']:.0f} / "
                f"{out['rps_streaming']:.0f} ({out['streaming_ratio']:.2f}x) |\n"
                f"\nLoad average at the end: {os.getloadavg()[0]:.2f} (2 cores; the clients share them). Targets (the "
                "issue): " + "; ".join(f"{name}: {'met' if ok else '**not met**'}" for name, ok in targets) + ".\n")
        write_section(args.out, SECTION, body)


if __name__ == "__main__":
    main()
