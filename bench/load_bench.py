"""Load test: wrk against `recsys serve` on a 1M-item index, random users, k=20.

    python -m bench.load_bench [--artifacts DIR | --users N --items N --interactions N]
                               [--connections 1,8,32] [--duration 10] [--out docs/PERFORMANCE.md]

Without --artifacts it simulates the realistic profile, trains one epoch of the default
preset and builds the `auto` index (IVF at 1M items) under --work. Then, for each service
configuration below and each connection count, it starts `recsys serve`, warms it up, runs
wrk (closed loop: each connection sends its next request when the previous one is answered)
for --duration seconds with a random known user per request, and records requests/s, p50,
p99, errors (non-2xx answers and socket errors) and the service's resident memory (the sum
over its processes). The baseline is the service without micro-batching in one process,
measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bench.sections import write_section
from recsys.artifacts import host, version

SECTION = "load-bench"
LUA = """
local users = tonumber(os.getenv("RECSYS_BENCH_USERS"))
local k = tonumber(os.getenv("RECSYS_BENCH_K"))
math.randomseed(tonumber(os.getenv("RECSYS_BENCH_SEED")))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, nil, nil, string.format('{"user_id": %d, "k": %d}', math.random(1, users), k))
end
"""
# name, serve flags, what it is
CONFIGS = [
    ("baseline", ["--user-tower", "savedmodel", "--batch-size", "1", "--workers", "1"],
     "the prototype's hot path: one process, the user tower as a TensorFlow SavedModel call, no micro-batching"),
    ("unbatched", ["--batch-size", "1", "--workers", "1"], "one process, numpy user tower, no micro-batching"),
    ("batched", ["--workers", "1"], "the default: one process, numpy user tower, micro-batching"),
    ("batched-2w", ["--workers", "2"], "two processes, micro-batching"),
]


def log(msg: str) -> None:
    print(f"load-bench: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RECSYS = [str(Path(sys.executable).with_name("recsys"))]  # the console script of this environment


def recsys(*args: str) -> None:
    subprocess.run([*RECSYS, *args], check=True)


def prepare(work: Path, users: int, items: int, interactions: int) -> Path:
    """Simulated data, a one-epoch default model and its auto index under `work`."""
    data, artifacts = work / "data", work / "artifacts"
    if not (data / "features.toml").exists():
        recsys("simulate", "--profile", "realistic", "--users", str(users), "--items", str(items),
               "--interactions", str(interactions), "--out", str(data))
    if not any(version.has_index(v) for v in version.list_versions(artifacts)):
        recsys("train", "--data", str(data), "--out", str(artifacts), "--epochs", "1")
        recsys("build-index", "--artifacts", str(artifacts), "--index", "auto")
    return artifacts


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, MB."""
    pids, total = [pid], 0
    while pids:
        p = pids.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total / 2**20


def ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(out: str) -> dict:
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": ms(latency["50"]), "p99": ms(latency["99"]),
            "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)}


def wrk(url: str, connections: int, seconds: float, script: Path, users: int, k: int, seed: int) -> dict:
    env = {**os.environ, "RECSYS_BENCH_USERS": str(users), "RECSYS_BENCH_K": str(k), "RECSYS_BENCH_SEED": str(seed)}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
           "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


class Service:
    def __init__(self, artifacts: Path, flags: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RECSYS_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen([*RECSYS, "serve", "--artifacts", str(artifacts),
                                      "--port", str(self.port), "--drain-seconds", "0", *flags],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"recsys serve exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("recsys serve did not become ready within 300 s")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run(artifacts: Path, users: int, connections: list[int], seconds: float, k: int, configs,
        warmup: float = 3.0) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "recommend.lua"
        script.write_text(LUA)
        for name, flags, _ in configs:
            log(f"{name}: starting recsys serve {' '.join(flags)}")
            service = Service(artifacts, flags)
            try:
                wrk(f"{service.url}/recommend", 8, warmup, script, users, k, seed=0)
                for c in connections:
                    r = wrk(f"{service.url}/recommend", c, seconds, script, users, k, seed=c)
                    r.update(config=name, connections=c, rss_mb=rss_mb(service.proc.pid))
                    log(f"{name} c={c}: {r['rps']:,.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                        f"{r['errors']} errors, RSS {r['rss_mb']:,.0f} MB")
                    rows.append(r)
            finally:
                service.stop()
    return rows


def report(rows: list[dict], args, info: dict, configs) -> str:
    base = {r["connections"]: r for r in rows if r["config"] == configs[0][0]}
    lines = [
        "## Serving under load",
        "",
        f"Generated by `python -m bench.load_bench {' '.join(args.argv)}` (`make bench-load`) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; re-running replaces this section only.",
        "",
        f"- Machine: {host.describe()}; wrk (1 thread) runs on the same cores as the service. Load average "
        f"{info['load_start']:.2f} at the start, {info['load_end']:.2f} at the end.",
        f"- Model: {info['model']}.",
        f"- Requests: `POST /recommend {{\"user_id\": <random known user>, \"k\": {args.k}}}` (objective ctcvr: user "
        f"tower, {info['candidates']} candidates from the index, CTR/CVR heads); closed loop, {args.duration:g} s per "
        f"row after a {args.warmup:g} s warm-up; access log at `warning` (no line per request). Errors = "
        "non-2xx answers + socket errors. RSS = resident memory of the service's processes after the row.",
        "- Configurations: " + "; ".join(f"`{n}` = {d} (`{' '.join(f)}`)" for n, f, d in configs) + ".",
        "",
        "| configuration | connections | requests/s | ×baseline | p50 ms | p99 ms | errors | RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        b = base.get(r["connections"])
        ratio = f"{r['rps'] / b['rps']:.2f}" if b else "n/a"
        lines.append(f"| {r['config']} | {r['connections']} | {r['rps']:,.0f} | {ratio} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {r['errors']} | {r['rss_mb']:,.0f} |")
    default = {r["connections"]: r for r in rows if r["config"] == "batched"}
    if 1 in default and 32 in default:
        one, many = default[1], default[32]
        lines += ["", "Targets (the issue), for the default configuration:", "",
                  f"- 32 connections: ≥ 1000 requests/s, p99 ≤ 80 ms, zero errors: {many['rps']:,.0f} requests/s, "
                  f"p99 {many['p99']:.1f} ms, {many['errors']} errors: "
                  + ("met" if many["rps"] >= 1000 and many["p99"] <= 80 and many["errors"] == 0 else "**not met**"),
                  f"- 1 connection: p50 ≤ 2 ms, p99 ≤ 5 ms: p50 {one['p50']:.2f} ms, p99 {one['p99']:.2f} ms: "
                  + ("met" if one["p50"] <= 2 and one["p99"] <= 5 and one["errors"] == 0 else "**not met**")]
    return "\n".join(lines) + "\n"


def model_info(artifacts: Path) -> tuple[str, int]:
    opened = version.Version.open(artifacts, need_index=True)
    manifest, index = opened.manifest, opened.index_manifest
    data = manifest["data"]
    text = (f"realistic simulator, {data['users']:,} users × {data['items']:,} items × {data['interactions']:,} "
            f"exposures, default preset, {len(manifest['history'])} training epoch(s), "
            f"{manifest['embedding_dim']}-d; `{index['kind']}` index over {index['count']:,} items, built in "
            f"{index['build_seconds']:.0f} s")
    return text, data["users"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.load_bench", description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, help="a served artifact root (default: build one under --work)")
    p.add_argument("--work", type=Path, default=Path("var/bench/load"), help="where data and models are built")
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--interactions", type=int, default=2_000_000)
    p.add_argument("--connections", default="1,8,32")
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=3, help="seconds of load before each configuration's rows")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--configs", default=",".join(c[0] for c in CONFIGS), help="which configurations to run")
    p.add_argument("--out", type=Path, help="write the section into this file (e.g. docs/PERFORMANCE.md)")
    args = p.parse_args(argv)
    args.argv = argv
    if shutil.which("wrk") is None:
        p.error("wrk not found: install it (Debian: apt-get install wrk)")
    chosen = [c for c in CONFIGS if c[0] in args.configs.split(",")]
    artifacts = args.artifacts or prepare(args.work, args.users, args.items, args.interactions)
    model, users = model_info(artifacts)
    from recsys.service.settings import Settings

    info = {"load_start": os.getloadavg()[0], "model": model, "candidates": Settings().candidates}
    rows = run(artifacts, users, [int(c) for c in args.connections.split(",")], args.duration, args.k, chosen,
               args.warmup)
    info["load_end"] = os.getloadavg()[0]
    text = report(rows, args, info, chosen)
    print(text)
    if args.out:
        write_section(args.out, SECTION, text)
        log(f"wrote the {SECTION} section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
