"""CPU cost of one refused request: shed in the HTTP protocol against refused by the ASGI
backpressure middleware, measured on the service process's CPU time (not the wall clock), so
other work on the machine does not inflate it.

    python -m bench.shed_cost [--connections 200] [--duration 5]

For each path a server is started whose admission gate is held full, wrk sends POST
/recommend on keep-alive connections for --duration seconds, and every answer is a 503; the
server's CPU seconds divided by the answers is the cost of one refusal.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.load_bench import LUA, cpu_seconds, free_port

PATHS = {"protocol": "service/shedding.py: answered once the headers are parsed",
         "asgi": "uvicorn's httptools protocol, refused by limits.Backpressure"}


def serve(port: int, path: str) -> None:
    """A server whose gate is full for good (no model needed: nothing is admitted)."""
    import uvicorn

    from recsys.service.app import create_app
    from recsys.service.server import uvicorn_config
    from recsys.service.settings import Settings

    settings = Settings(artifacts="/nonexistent", port=port, log_level="warning")
    app = create_app(settings, load=lambda *_: time.sleep(10**6))
    app.state.admission.admitted = app.state.admission.capacity
    over = {"log_config": None} if path == "protocol" else {"log_config": None, "http": "httptools"}
    uvicorn.Server(uvicorn_config(app, settings, **over)).run()


def measure(path: str, connections: int, seconds: int, script: Path) -> dict:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.shed_cost", "--serve", str(port), path],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        env = {**os.environ, "RECSYS_BENCH_USERS": "1000", "RECSYS_BENCH_K": "20", "RECSYS_BENCH_SEED": "0"}
        cpu = cpu_seconds(proc.pid)
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                              f"http://127.0.0.1:{port}/recommend"], env=env, capture_output=True, text=True,
                             check=True).stdout
        cpu = cpu_seconds(proc.pid) - cpu
        answers = int(out.split(" requests in ")[0].split()[-1])
        return {"path": path, "answers": answers, "cpu_s": cpu, "us_per_answer": cpu / answers * 1e6}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shed_cost", description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=200)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--serve", nargs=2, metavar=("PORT", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "recommend.lua"
        script.write_text(LUA)
        for path in PATHS:
            r = measure(path, args.connections, args.duration, script)
            print(f"{path}: {r['answers']} answers (all 503), service CPU {r['cpu_s']:.2f} s, "
                  f"{r['us_per_answer']:.0f} µs CPU per refusal ({PATHS[path]}); load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
