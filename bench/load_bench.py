"""Load test: wrk against `recsys serve` on a 1M-item index, random users, k=20.

    python -m bench.load_bench [--artifacts DIR | --users N --items N --interactions N]
                               [--connections 1,8,32] [--duration 10] [--out docs/PERFORMANCE.md]
    python -m bench.load_bench --overload 64,200,500,1000,2000 [...]   (the overload row set)

Without --artifacts it simulates the realistic profile, trains one epoch of the default
preset and builds the `auto` index (IVF at 1M items) under --work. Then, for each service
configuration below and each connection count, it starts `recsys serve`, warms it up, runs
wrk (closed loop: each connection sends its next request when the previous one is answered)
for --duration seconds with a random known user per request, and records requests/s, p50,
p99, errors (non-2xx answers and socket errors) and the service's resident memory (the sum
over its processes). The baseline is the service without micro-batching in one process,
measured in the same run. With --out, two plots go beside that file (bench/plots.py:
performance/load-bench-throughput.png, requests/s and p99 against connections, and
performance/load-bench-latency.png, wrk's p50/p75/p90/p99 at the highest connection count),
linked from the section.

--overload runs the default configuration far past its capacity instead (its own section):
wrk closed loop at each connection count, with shed 503s kept alive or closed
(`--shed-connection`), and a row set of wrk connections that sleep the Retry-After of every
503 before their next request. Successful requests/s are the 2xx answers per second; a
probe client beside wrk (a few requests a second on one keep-alive connection, reconnecting
when the server closes it) measures the client-side latency of the 503s and 200s it gets,
connection set-up included.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bench import plots
from bench.sections import publish
from recsys.artifacts import host, version

SECTION = "load-bench"
OVERLOAD_SECTION = "load-bench-overload"
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
# Counts answers by status; with RECSYS_BENCH_HONOUR=1 each 503's Retry-After becomes the delay
# before a later request. wrk does not say which connection delay() is for, so the delays go
# out first in, first out: as many sleeps as 503s, possibly on another connection of the thread.
OVERLOAD_LUA = LUA + """
ok, shed, other = 0, 0, 0
local honour = os.getenv("RECSYS_BENCH_HONOUR") == "1"
local waits, head, tail = {}, 1, 0
local threads = {}
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  if status < 300 then ok = ok + 1 elseif status == 503 then shed = shed + 1 else other = other + 1 end
  if honour then
    tail = tail + 1
    waits[tail] = status == 503 and 1000 * (tonumber(headers["Retry-After"]) or 1) or 0
  end
end
if honour then
  delay = function()
    if head > tail then return 0 end
    local d = waits[head]; waits[head] = nil; head = head + 1
    return d
  end
end
done = function(summary, latency, requests)
  local o, s, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); s = s + t:get("shed"); x = x + t:get("other") end
  io.write(string.format("STATUS ok=%d shed=%d other=%d\\n", o, s, x))
end
"""
# name, serve flags (None: the no-op endpoint of bench/noop_app.py), what it is
NOOP = "no-op"
CONFIGS = [
    (NOOP, None, "the HTTP stack's ceiling: a FastAPI endpoint with the same request and response models and no "
                 "model work (bench/noop_app.py)"),
    ("baseline", ["--user-tower", "savedmodel", "--batch-size", "1", "--workers", "1"],
     "the prototype's hot path: one process, the user tower as a TensorFlow SavedModel call, no micro-batching"),
    ("unbatched", ["--batch-size", "1", "--workers", "1"], "one process, numpy user tower, no micro-batching"),
    ("batched", ["--workers", "1"], "the default: one process, numpy user tower, micro-batching"),
    ("batched-2w", ["--workers", "2"], "two processes, micro-batching"),
    ("history-50", ["--workers", "1"], "the default on a model of the same data whose user tower pools each "
                                       "user's 50 latest clicks (`recsys train --history-length 50`)"),
]
# Configurations served from the history model (prepare_history) rather than the default one.
HISTORY_CONFIGS = {"history-50": 50}


def log(msg: str) -> None:
    print(f"load-bench: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RECSYS = [str(Path(sys.executable).with_name("recsys"))]  # the console script of this environment


def recsys(*args: str) -> None:
    subprocess.run([*RECSYS, *args], check=True)


# The model every serving benchmark runs on: realistic simulator, users × items × exposures.
SIZE = (200_000, 1_000_000, 2_000_000)


def wrk_ready(parser: argparse.ArgumentParser) -> None:
    """A usage error without wrk; otherwise the descriptor limit raised for many connections."""
    if shutil.which("wrk") is None:
        parser.error("wrk not found: install it (Debian: apt-get install wrk)")
    # wrk and the server each hold one descriptor per connection: 2,000 connections need more
    # than the usual soft limit of 1,024. Children inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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


def prepare_history(work: Path, length: int) -> Path:
    """The same data's one-epoch model with a `length`-click history, and its auto index."""
    artifacts = work / f"artifacts-history{length}"
    if not any(version.has_index(v) for v in version.list_versions(artifacts)):
        recsys("train", "--data", str(work / "data"), "--out", str(artifacts), "--epochs", "1",
               "--history-length", str(length))
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants, s: what the service spent, whatever
    else runs on the machine."""
    pids, total = [pid], 0
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total / os.sysconf("SC_CLK_TCK")


def ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(out: str) -> dict:
    """requests/s, requests, errors and the latency percentiles wrk --latency prints (p50, p75, p90, p99)."""
    latency = dict(re.findall(r"^\s+(50|75|90|99)(?:\.000)?%\s+(\S+)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            **{f"p{q}": ms(latency[str(q)]) for q in plots.PERCENTILES},
            "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)}


def wrk(url: str, connections: int, seconds: float, script: Path, users: int, k: int, seed: int,
        extra: dict[str, str] | None = None) -> dict:
    """One wrk run of `script`; `extra` adds variables the script reads from its environment."""
    env = {**os.environ, "RECSYS_BENCH_USERS": str(users), "RECSYS_BENCH_K": str(k), "RECSYS_BENCH_SEED": str(seed),
           **(extra or {})}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
           "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def wrk_overload(url: str, connections: int, seconds: float, script: Path, users: int, k: int, seed: int,
                 honour: bool) -> dict:
    env = {**os.environ, "RECSYS_BENCH_USERS": str(users), "RECSYS_BENCH_K": str(k), "RECSYS_BENCH_SEED": str(seed),
           "RECSYS_BENCH_HONOUR": "1" if honour else "0"}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    r = parse_wrk(out)
    counts = dict(re.findall(r"(ok|shed|other)=(\d+)", out))
    elapsed = float(re.search(r"\d+ requests in ([\d.]+)(m?s)", out).group(1))
    if re.search(r"\d+ requests in [\d.]+ms", out):
        elapsed /= 1000
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r.update(ok_rps=int(counts["ok"]) / elapsed, shed_rps=int(counts["shed"]) / elapsed, other=int(counts["other"]),
             socket_errors=sum(map(int, sock.groups())) if sock else 0)
    return r


class Probe(threading.Thread):
    """A client beside wrk: one request every `interval` s on one keep-alive connection
    (reconnecting when the server closes it); the latency of each answer by status, set-up
    of a new connection included."""

    def __init__(self, port: int, users: int, k: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.port, self.users, self.k, self.interval = port, users, k, interval
        self.stopping = threading.Event()
        self.latency: dict[int, list[float]] = {}

    def run(self) -> None:
        rng = random.Random(1)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stopping.is_set():
            body = json.dumps({"user_id": rng.randint(1, self.users), "k": self.k})
            start = time.perf_counter()
            try:
                conn.request("POST", "/recommend", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("connection", "").lower() == "close":
                    conn.close()  # the next request opens a new connection, inside its timing
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            self.latency.setdefault(status, []).append((time.perf_counter() - start) * 1000)
            self.stopping.wait(self.interval)
        conn.close()

    def stop(self) -> dict:
        self.stopping.set()
        self.join()
        out = {}
        for status, values in self.latency.items():
            values.sort()
            out[status] = {"n": len(values), "p50": values[len(values) // 2],
                           "p99": values[min(len(values) - 1, int(len(values) * 0.99))]}
        return out


class Service:
    def __init__(self, artifacts: Path, flags: list[str] | None, log_to: Path | None = None):
        """`log_to`: a file for the service's log (a pipe would fill up and block an access log)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RECSYS_LOG_LEVEL": "warning"}
        command = [sys.executable, "-m", "bench.noop_app", "--port", str(self.port)] if flags is None else \
            [*RECSYS, "serve", "--artifacts", str(artifacts), "--port", str(self.port), "--drain-seconds", "0", *flags]
        self.log = open(log_to, "w+") if log_to is not None else subprocess.PIPE  # closed in stop()
        self.proc = subprocess.Popen(command,
                                     env=env, stdout=subprocess.DEVNULL, stderr=self.log, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else Path(self.log.name).read_text()
                raise RuntimeError(f"recsys serve exited {self.proc.returncode}: {err[-2000:]}")
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
        if self.log is not subprocess.PIPE:
            self.log.close()


def run(artifacts: Path, users: int, connections: list[int], seconds: float, k: int, configs,
        warmup: float = 3.0, history: dict[str, Path] | None = None) -> list[dict]:
    """Rows per configuration and connection count; `history` maps the HISTORY_CONFIGS run to
    the artifact root they serve."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "recommend.lua"
        script.write_text(LUA)
        for name, flags, _ in configs:
            log(f"{name}: starting " + ("the no-op endpoint" if flags is None else f"recsys serve {' '.join(flags)}"))
            service = Service((history or {}).get(name, artifacts), flags)
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


# name, serve flags, whether wrk's connections honour Retry-After, what it is
OVERLOAD_MODES = [
    ("keep-alive", ["--shed-connection", "keep-alive"], False,
     "closed loop, shed 503s keep the connection open (the default)"),
    ("close", ["--shed-connection", "close"], False, "closed loop, shed 503s close the connection"),
    ("retry-after", ["--shed-connection", "keep-alive"], True,
     "each wrk connection sleeps the 503's Retry-After (1 s) before its next request"),
]


def run_overload(artifacts: Path, users: int, connections: list[int], seconds: float, k: int, modes,
                 warmup: float = 3.0) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "overload.lua"
        script.write_text(OVERLOAD_LUA)
        for name, flags, honour, _ in modes:
            log(f"overload {name}: starting recsys serve {' '.join(flags)}")
            service = Service(artifacts, ["--workers", "1", *flags])
            try:
                wrk_overload(f"{service.url}/recommend", 8, warmup, script, users, k, 0, honour)
                for c in connections:
                    probe = Probe(service.port, users, k)
                    probe.start()
                    cpu = cpu_seconds(service.proc.pid)
                    r = wrk_overload(f"{service.url}/recommend", c, seconds, script, users, k, c, honour)
                    cpu = cpu_seconds(service.proc.pid) - cpu
                    r.update(mode=name, connections=c, probe=probe.stop(), load=os.getloadavg()[0], cpu_s=cpu)
                    shed = r["probe"].get(503, {})
                    log(f"overload {name} c={c}: {r['ok_rps']:,.0f} ok/s, {r['shed_rps']:,.0f} 503/s, "
                        f"p99 {r['p99']:.1f} ms, probe 503 p99 {shed.get('p99', float('nan')):.1f} ms "
                        f"(n={shed.get('n', 0)}), load {r['load']:.2f}")
                    rows.append(r)
            finally:
                service.stop()
    return rows


def report_overload(rows: list[dict], args, info: dict, modes) -> str:
    def probe(r, status, key):
        p = r["probe"].get(status)
        return f"{p[key]:.1f}" if p else "n/a"

    lines = [
        "## Serving past capacity",
        "",
        f"Generated by `python -m bench.load_bench {' '.join(args.argv)}` (`make bench-overload`) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; re-running replaces this section only.",
        "",
        f"- Machine: {host.describe()}; wrk (1 thread) and the probe client run on the same cores as the service. "
        f"Load average {info['load_start']:.2f} at the start, {info['load_end']:.2f} at the end (per row in the "
        "last column).",
        f"- Model: {info['model']}.",
        f"- Service: the default configuration (`--workers 1`; max_in_flight {info['max_in_flight']}, max_queue "
        f"{info['max_queue']}: beyond {info['max_in_flight'] + info['max_queue']} admitted requests a "
        "`/recommend` is shed with 503 in the HTTP protocol).",
        f"- Requests: `POST /recommend {{\"user_id\": <random known user>, \"k\": {args.k}}}`, {args.duration:g} s per "
        "row. ok/s = 2xx answers per second (goodput); ×64 = ok/s over the same mode's 64-connection row; "
        "p99 = wrk's latency over all answers; probe = one request every 50 ms on its own connection beside wrk, "
        "client-side latency by status (n answers), connection set-up included; CPU = the service's CPU seconds over "
        "the row (user + system, all its threads: what it spent, whatever else ran on the machine).",
        "- Modes: " + "; ".join(f"`{n}` = {d} (`{' '.join(f)}`)" for n, f, _, d in modes) + ".",
        "",
        "| mode | connections | ok/s | ×64 | 503/s | other errors | p99 ms | probe 503 p50 / p99 ms (n) "
        "| probe 200 p50 / p99 ms (n) | CPU s | load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        base = next((b for b in rows if b["mode"] == r["mode"] and b["connections"] == 64), None)
        ratio = f"{r['ok_rps'] / base['ok_rps']:.2f}" if base and base["ok_rps"] else "n/a"
        n503, n200 = r["probe"].get(503, {}).get("n", 0), r["probe"].get(200, {}).get("n", 0)
        lines.append(f"| {r['mode']} | {r['connections']:,} | {r['ok_rps']:,.0f} | {ratio} | {r['shed_rps']:,.0f} | "
                     f"{r['other'] + r['socket_errors']} | {r['p99']:.1f} | {probe(r, 503, 'p50')} / "
                     f"{probe(r, 503, 'p99')} ({n503}) | {probe(r, 200, 'p50')} / {probe(r, 200, 'p99')} ({n200}) | "
                     f"{r['cpu_s']:.1f} | {r['load']:.2f} |")
    lines += ["", "Target (the issue): ok/s at 2,000 connections ≥ 0.7× the 64-connection row, and every 503 "
              "answered within 50 ms at p99 client-side:", ""]
    for name, *_ in modes:
        top = max((r for r in rows if r["mode"] == name), key=lambda r: r["connections"], default=None)
        base = next((r for r in rows if r["mode"] == name and r["connections"] == 64), None)
        if top is None or base is None or top["connections"] == 64:
            continue
        ratio = top["ok_rps"] / base["ok_rps"] if base["ok_rps"] else 0.0
        shed = top["probe"].get(503)
        p99 = shed["p99"] if shed else None
        met = ratio >= 0.7 and (p99 is None or p99 <= 50) and top["other"] + top["socket_errors"] == 0
        lines.append(f"- `{name}`, {top['connections']:,} connections: {ratio:.2f}× the 64-connection goodput, "
                     f"probe 503 p99 " + (f"{p99:.1f} ms" if p99 is not None else "n/a (no 503 sampled)")
                     + f", {top['other'] + top['socket_errors']} other errors: " + ("met" if met else "**not met**"))
    return "\n".join(lines) + "\n"


def report(rows: list[dict], args, info: dict, configs, images: list[tuple[str, str]] | None = None) -> str:
    """The section's Markdown; `images` (alt text, path) from plots.load are linked below the
    table, None when no plots were asked for (the section is only printed)."""
    base = {r["connections"]: r for r in rows if r["config"] == "baseline"}
    ceiling = {r["connections"]: r for r in rows if r["config"] == NOOP}

    def ratio(r: dict, to: dict, key: str) -> str:
        b = to.get(r["connections"])
        return f"{r[key] / b[key]:.2f}" if b and b[key] else "n/a"

    lines = [
        "## Serving under load" + (f" at {info['items']:,} items" if args.section != SECTION else ""),
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
        "- Configurations: " + "; ".join(f"`{n}` = {d}" + (f" (`{' '.join(f)}`)" if f else "")
                                         for n, f, d in configs) + ".",
        "- ×no-op: requests/s and p99 as ratios to the no-op endpoint's at the same connection count, in this run.",
        "",
        "| configuration | connections | requests/s | ×baseline | ×no-op | p50 ms | p99 ms | p99 ×no-op | errors | RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r['connections']} | {r['rps']:,.0f} | {ratio(r, base, 'rps')} | "
                     f"{ratio(r, ceiling, 'rps')} | {r['p50']:.2f} | {r['p99']:.2f} | {ratio(r, ceiling, 'p99')} | "
                     f"{r['errors']} | {r['rss_mb']:,.0f} |")
    lines += ["", f"Memory: {info['index']}."]
    for name in dict.fromkeys(r["config"] for r in rows if r["config"] != NOOP):
        rss = max(r["rss_mb"] for r in rows if r["config"] == name)
        lines.append(f"- `{name}`: RSS {rss:,.0f} MB, {rss * 2**20 / info['items']:,.0f} bytes per item")
    default = {r["connections"]: r for r in rows if r["config"] == "batched"}
    if 1 in default and 32 in default:
        one, many = default[1], default[32]
        lines += ["", "Targets, for the default configuration:", "",
                  f"- 32 connections: ≥ 1000 requests/s, p99 ≤ 80 ms, zero errors: {many['rps']:,.0f} requests/s, "
                  f"p99 {many['p99']:.1f} ms, {many['errors']} errors: "
                  + ("met" if many["rps"] >= 1000 and many["p99"] <= 80 and many["errors"] == 0 else "**not met**"),
                  f"- 1 connection: p50 ≤ 2 ms, p99 ≤ 5 ms: p50 {one['p50']:.2f} ms, p99 {one['p99']:.2f} ms: "
                  + ("met" if one["p50"] <= 2 and one["p99"] <= 5 and one["errors"] == 0 else "**not met**"),
                  "- 1 connection: p50 ≤ 1.0 ms, p99 ≤ 2 ms: "
                  + ("met" if one["p50"] <= 1.0 and one["p99"] <= 2 and one["errors"] == 0 else "**not met**")]
        with_history = next((r for r in rows if r["config"] == "history-50" and r["connections"] == 32), None)
        if with_history:
            share = with_history["rps"] / many["rps"]
            lines.append(f"- 32 connections with a 50-click history per user: ≥ 0.9× the default's requests/s: "
                         f"{share:.2f}×: " + ("met" if share >= 0.9 and with_history["errors"] == 0 else "**not met**"))
        top = ceiling.get(32)
        if top:
            met = many["rps"] >= 0.5 * top["rps"] and many["p99"] <= 2 * top["p99"] and many["errors"] == 0
            lines.append(f"- 32 connections: ≥ 0.5× the no-op's requests/s, p99 ≤ 2× its p99, zero errors: "
                         f"{many['rps'] / top['rps']:.2f}× and {many['p99'] / top['p99']:.2f}×: "
                         + ("met" if met else "**not met**"))
    if images is not None:
        lines += [""] + (plots.links(images) if images else [plots.missing()])
    return "\n".join(lines) + "\n"


def epochs(manifest: dict) -> str:
    """How many epochs trained, and which one's weights the version holds when early stopping
    kept an earlier one (a manifest without `best_epoch` lists the kept epochs only)."""
    trained = len(manifest["history"])
    best = manifest.get("best_epoch", trained)
    return f"{trained} training epoch(s)" + (f", the weights of epoch {best}" if best != trained else "")


def model_info(artifacts: Path) -> tuple[str, int]:
    opened = version.Version.open(artifacts, need_index=True)
    manifest, index = opened.manifest, opened.index_manifest
    data = manifest["data"]
    text = (f"realistic simulator, {data['users']:,} users × {data['items']:,} items × {data['interactions']:,} "
            f"exposures, default preset, {epochs(manifest)}, "
            f"{manifest['embedding_dim']}-d; `{index['kind']}` index over {index['count']:,} items, built in "
            f"{index['build_seconds']:.0f} s")
    return text, data["users"]


def index_info(artifacts: Path) -> tuple[str, int]:
    """The served index's format, recall and bytes per item on disk; its item count."""
    opened = version.Version.open(artifacts, need_index=True)
    index, n = opened.index_manifest, opened.index_manifest["count"]
    sizes = {f.name: f.stat().st_size for f in version.index_dir(opened.path).iterdir() if f.is_file()}
    files = ", ".join(f"{name} {size / n:,.0f}" for name, size in sorted(sizes.items()) if size > 1 << 20)
    recall = index.get("recall_at_100")
    text = (f"`{index['kind']}` index, recall@100 "
            + (f"{recall:.4f} on {index.get('recall_queries', 0):,} of the model's users" if recall else "n/a")
            + f"; bytes per item on disk: {files}")
    return text, n


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.load_bench", description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, help="a served artifact root (default: build one under --work)")
    p.add_argument("--work", type=Path, default=Path("var/bench/load"), help="where data and models are built")
    p.add_argument("--users", type=int, default=SIZE[0])
    p.add_argument("--items", type=int, default=SIZE[1])
    p.add_argument("--interactions", type=int, default=SIZE[2])
    p.add_argument("--connections", default="1,8,32")
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=3, help="seconds of load before each configuration's rows")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--configs", default=",".join(c[0] for c in CONFIGS), help="which configurations to run")
    p.add_argument("--history-artifacts", type=Path,
                   help="the history-50 row's artifact root (default: trained on the same data under --work)")
    p.add_argument("--out", type=Path, help="write the section into this file (e.g. docs/PERFORMANCE.md)")
    p.add_argument("--section", default=SECTION,
                   help="the section of --out to write: another name (e.g. load-bench-10m for a 10M-item run) "
                        "keeps the default run's section")
    p.add_argument("--overload", metavar="CONNECTIONS",
                   help="run the overload row set at these connection counts (e.g. 64,200,500,1000,2000) instead")
    p.add_argument("--modes", default=",".join(m[0] for m in OVERLOAD_MODES), help="which overload modes to run")
    args = p.parse_args(argv)
    args.argv = argv
    wrk_ready(p)
    chosen = [c for c in CONFIGS if c[0] in args.configs.split(",")]
    artifacts = args.artifacts or prepare(args.work, args.users, args.items, args.interactions)
    history = {name: args.history_artifacts or prepare_history(args.work, length)
               for name, length in HISTORY_CONFIGS.items() if name in args.configs.split(",")}
    model, users = model_info(artifacts)
    from recsys.service.settings import Settings

    defaults = Settings()
    index, items = index_info(artifacts)
    info = {"load_start": os.getloadavg()[0], "model": model, "candidates": defaults.candidates,
            "index": index, "items": items,
            "max_in_flight": defaults.max_in_flight, "max_queue": defaults.max_queue}
    if args.overload:
        modes = [m for m in OVERLOAD_MODES if m[0] in args.modes.split(",")]
        rows = run_overload(artifacts, users, [int(c) for c in args.overload.split(",")], args.duration, args.k,
                            modes, args.warmup)
        section, write = OVERLOAD_SECTION, lambda: report_overload(rows, args, info, modes)
    else:
        rows = run(artifacts, users, [int(c) for c in args.connections.split(",")], args.duration, args.k, chosen,
                   args.warmup, history)
        images = plots.load(rows, [c[0] for c in chosen], args.out, args.section) if args.out else None
        section, write = args.section, lambda: report(rows, args, info, chosen, images)
    info["load_end"] = os.getloadavg()[0]
    publish(write(), args.out, section)
    return 0

if __name__ == "__main__":
    sys.exit(main())
