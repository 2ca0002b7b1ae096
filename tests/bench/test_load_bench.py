"""The load benchmark's parsing and report; end to end against a real server when wrk is installed."""

from __future__ import annotations

import shutil

import pytest

from bench import load_bench

WRK_OUTPUT = """Running 14s test @ http://127.0.0.1:18123/recommend
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    35.84ms   13.07ms 113.98ms   88.21%
    Req/Sec     0.91k   221.47     1.29k    70.00%
  Latency Distribution
     50%   33.06ms
     75%   39.12ms
     90%   47.71ms
     99%   91.43ms
  12688 requests in 14.05s, 38.32MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    903.00
Transfer/sec:      2.73MB
"""


def test_wrk_output_is_parsed():
    r = load_bench.parse_wrk(WRK_OUTPUT)
    assert r == {"rps": 903.0, "requests": 12688, "p50": 33.06, "p75": 39.12, "p90": 47.71, "p99": 91.43,
                 "errors": 7}
    assert load_bench.ms("850us") == pytest.approx(0.85) and load_bench.ms("1.2s") == 1200.0


def row(config, c, rps, p50, p99, errors=0):
    return {"config": config, "connections": c, "rps": rps, "p50": p50, "p99": p99, "errors": errors, "rss_mb": 700.0}


class Args:
    argv, k, duration, warmup, section = [], 20, 10.0, 3.0, load_bench.SECTION


def test_report_ratios_and_targets():
    rows = [row("no-op", 1, 4000, 0.25, 0.5), row("no-op", 32, 4400, 7.0, 14.0),
            row("baseline", 1, 400, 2.4, 3.0), row("baseline", 32, 250, 120.0, 150.0),
            row("batched", 1, 1000, 0.9, 1.1), row("batched", 32, 1100, 25.0, 90.0),
            row("history-50", 32, 1001, 27.0, 95.0)]
    info = {"load_start": 0.5, "load_end": 0.7, "model": "m", "candidates": 100, "index": "i", "items": 10**6}
    text = load_bench.report(rows, Args(), info, load_bench.CONFIGS)
    assert text.startswith("## Serving under load\n") and "- `batched`: RSS 700 MB, 734 bytes per item" in text
    other = Args()
    other.section = "load-bench-10m"  # a run of its own: its heading names the size
    assert load_bench.report(rows, other, info, load_bench.CONFIGS).startswith("## Serving under load at 1,000,000 items")
    # requests/s ×baseline 1100/250, ×no-op 1100/4400; p99 ×no-op 90/14
    assert "| batched | 32 | 1,100 | 4.40 | 0.25 | 25.00 | 90.00 | 6.43 | 0 | 700 |" in text
    assert "p99 90.0 ms, 0 errors: **not met**" in text  # p99 over 80 ms
    assert "p50 0.90 ms, p99 1.10 ms: met" in text
    assert "0.25× and 6.43×: **not met**" in text  # under half the no-op's requests/s
    assert "history per user: ≥ 0.9× the default's requests/s: 0.91×: met" in text


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.slow  # a benchmark: wrk against a live server
def test_end_to_end_on_the_seed_model(seed_artifacts, tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    assert load_bench.main(["--artifacts", str(seed_artifacts), "--connections", "1,4", "--duration", "1",
                            "--warmup", "1", "--configs", "no-op,batched", "--out", str(out)]) == 0
    table = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| ")]
    rows = {(cells[0].strip(), int(cells[1])): cells for cells in table[1:]}
    assert set(rows) == {(c, n) for c in ("no-op", "batched") for n in (1, 4)}
    for cells in rows.values():
        assert float(cells[2].replace(",", "")) > 0 and int(cells[8]) == 0  # requests served, no errors
    assert float(rows[("no-op", 4)][4]) == 1.0 and float(rows[("batched", 4)][4]) > 0  # ratios to the no-op


OVERLOAD_OUTPUT = WRK_OUTPUT.replace("     99%   91.43ms\n", "     99%    1.68s \n") + "STATUS ok=9000 shed=3680 other=8\n"


def test_overload_output_is_parsed(monkeypatch, tmp_path):
    class Done:
        stdout = OVERLOAD_OUTPUT

    monkeypatch.setattr(load_bench.subprocess, "run", lambda *a, **kw: Done())
    r = load_bench.wrk_overload("http://x/recommend", 2000, 10, tmp_path / "s.lua", 10, 20, 0, honour=False)
    assert r["p99"] == 1680.0  # wrk pads a seconds figure with a space
    assert r["ok_rps"] == pytest.approx(9000 / 14.05) and r["shed_rps"] == pytest.approx(3680 / 14.05)
    assert (r["other"], r["socket_errors"]) == (8, 3)


def overload_row(mode, c, ok_rps, shed_p99, other=0):
    return {"mode": mode, "connections": c, "ok_rps": ok_rps, "shed_rps": 5000.0, "other": other, "socket_errors": 0,
            "p99": 40.0, "load": 1.0, "cpu_s": 12.5, "probe": {200: {"n": 100, "p50": 5.0, "p99": 9.0},
                                                 503: {"n": 90, "p50": 2.0, "p99": shed_p99}}}


def test_overload_report_ratios_and_target():
    rows = [overload_row("keep-alive", 64, 1000, 1.0), overload_row("keep-alive", 2000, 650, 20.0),
            overload_row("close", 64, 1000, 1.0), overload_row("close", 2000, 800, 60.0)]
    info = {"load_start": 0.5, "load_end": 0.7, "model": "m", "max_in_flight": 64, "max_queue": 32}
    text = load_bench.report_overload(rows, Args(), info, load_bench.OVERLOAD_MODES)
    assert "| keep-alive | 2,000 | 650 | 0.65 | 5,000 | 0 | 40.0 | 2.0 / 20.0 (90) | 5.0 / 9.0 (100) | 12.5 | 1.00 |" in text
    assert "`keep-alive`, 2,000 connections: 0.65× the 64-connection goodput, probe 503 p99 20.0 ms" in text
    assert text.count("**not met**") == 2  # keep-alive below 0.7×, close's 503 p99 over 50 ms


def test_cpu_seconds_of_this_process_grow_with_work():
    import os

    before = load_bench.cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert load_bench.cpu_seconds(os.getpid()) > before


def test_the_model_line_names_the_epoch_early_stopping_kept():
    assert load_bench.epochs({"history": [{}]}) == "1 training epoch(s)"  # a manifest from before best_epoch
    assert load_bench.epochs({"history": [{}] * 4, "best_epoch": 4}) == "4 training epoch(s)"
    assert load_bench.epochs({"history": [{}] * 4, "best_epoch": 2}) == "4 training epoch(s), the weights of epoch 2"
