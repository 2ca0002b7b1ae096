"""The events benchmark's report: the ratio and the targets it checks."""

from __future__ import annotations

from bench import events_bench


class Args:
    argv, k, connections, duration, rate = [], 20, 32, 10.0, 1000


def result(busy_rps: float, events_per_s: float, visible: list[float]) -> dict:
    run = lambda rps: {"rps": rps, "p50": 20.0, "p99": 60.0, "errors": 0}  # noqa: E731
    return {"quiet": run(1000.0), "busy": run(busy_rps), "events": 10_000, "events_per_s": events_per_s,
            "visible_s": visible}


def test_the_targets_need_the_ratio_the_rate_and_the_visibility():
    text = events_bench.report(result(920.0, 1001.0, [0.004, 0.2]), Args(), "m")
    assert "0.92× the quiet requests/s (target ≥ 0.9× at 1,000 events/s): met" in text
    assert "median 102 ms, max 200 ms (target ≤ 1 s): met" in text
    assert "**not met**" in events_bench.report(result(850.0, 1001.0, [0.01]), Args(), "m")
    assert "**not met**" in events_bench.report(result(990.0, 400.0, [0.01]), Args(), "m")  # too few events
    assert "max 1500 ms (target ≤ 1 s): **not met**" in events_bench.report(result(990.0, 1001.0, [1.5]), Args(), "m")
