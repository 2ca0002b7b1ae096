"""Request metrics: counted and timed per label set, label values bounded."""

from __future__ import annotations

import asyncio

from recsys.service.observability import Metrics, RequestContext


def sample(metrics: Metrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def call(app, method: str, path: str) -> None:
    scope = {"type": "http", "method": method, "path": path, "headers": []}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    asyncio.run(app(scope, receive, send))


def test_requests_are_counted_and_timed_per_label_set_and_unknown_methods_are_other():
    metrics = Metrics()

    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = RequestContext(ok, metrics=metrics, routes=frozenset({"/recommend"}))
    for method, path in [("POST", "/recommend"), ("POST", "/recommend"), ("BREW", "/recommend"), ("GET", "/nope")]:
        call(app, method, path)
    labels = {"method": "POST", "route": "/recommend", "status": "200"}
    assert sample(metrics, "recsys_requests_total", **labels) == 2
    assert sample(metrics, "recsys_request_duration_seconds_count", **labels) == 2
    assert sample(metrics, "recsys_requests_total", method="other", route="/recommend", status="200") == 1
    assert sample(metrics, "recsys_requests_total", method="BREW", route="/recommend", status="200") is None
    assert sample(metrics, "recsys_requests_total", method="GET", route="other", status="200") == 1


def test_request_ids_are_unique_and_differ_after_a_fork():
    import os

    from recsys.service.observability import new_request_id

    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, to the parent
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:16] != new_request_id()[:16]
