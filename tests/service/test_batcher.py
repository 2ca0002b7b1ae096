"""The micro-batcher on its own: grouping, per-query results and errors, waiting rules."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from recsys.service.batcher import Arrivals, MicroBatcher


class Model:
    """run(model, queries): records each batch; query "bad" fails alone, "boom" fails the batch."""

    def __init__(self, name: str = "m", delay: float = 0.0):
        self.name, self.delay, self.batches = name, delay, []

    def __call__(self, model, queries):
        model.batches.append(list(queries))
        if "boom" in queries:
            raise RuntimeError("boom")
        time.sleep(model.delay)
        return [ValueError(f"bad {q}") if q == "bad" else f"{model.name}:{q}" for q in queries]


def run_all(batcher: MicroBatcher, jobs):
    async def main():
        return await asyncio.gather(*(batcher.submit(m, q) for m, q in jobs), return_exceptions=True)
    return asyncio.run(main())


def test_concurrent_requests_share_a_batch_and_each_gets_its_own_answer():
    model = Model(delay=0.05)
    arrivals = Arrivals()
    batcher = MicroBatcher(model, max_batch=64, max_delay=0.5, arrivals=arrivals)
    try:
        scope = {}
        arrivals.admit(scope)  # someone else is on the way: the first request waits for company
        assert run_all(batcher, [(model, "warm")]) == ["m:warm"]
        arrivals.arrive(scope)
        model.batches.clear()
        out = run_all(batcher, [(model, i) for i in range(20)])
        assert out == [f"m:{i}" for i in range(20)]
        assert sum(len(b) for b in model.batches) == 20
        assert len(model.batches) < 20  # batched: fewer model calls than requests
    finally:
        batcher.close()


def test_max_batch_is_respected():
    model = Model(delay=0.02)
    batcher = MicroBatcher(model, max_batch=4, max_delay=0.05)
    try:
        assert run_all(batcher, [(model, i) for i in range(10)]) == [f"m:{i}" for i in range(10)]
        assert max(len(b) for b in model.batches) <= 4
    finally:
        batcher.close()


def test_an_error_fails_its_own_query_and_a_crash_fails_only_its_batch():
    model = Model()
    batcher = MicroBatcher(model, max_batch=8, max_delay=0.05)
    try:
        out = run_all(batcher, [(model, "a"), (model, "bad"), (model, "b")])
        assert out[0] == "m:a" and out[2] == "m:b"
        assert isinstance(out[1], ValueError) and str(out[1]) == "bad bad"
        crashed = run_all(batcher, [(model, "boom")])
        assert isinstance(crashed[0], RuntimeError)
        assert run_all(batcher, [(model, "after")]) == ["m:after"]  # the thread survived
    finally:
        batcher.close()


def test_a_wrong_number_of_results_fails_the_batch_instead_of_hanging():
    batcher = MicroBatcher(lambda model, queries: list(queries)[1:], max_batch=8, max_delay=0.05)
    try:
        out = run_all(batcher, [("m", 1), ("m", 2)])  # every batch gets one result too few
        assert all(isinstance(r, RuntimeError) and "results for a batch of" in str(r) for r in out)
    finally:
        batcher.close()


def test_a_lone_request_does_not_wait_for_the_delay():
    model = Model()
    batcher = MicroBatcher(model, max_batch=32, max_delay=2.0)
    try:
        start = time.perf_counter()
        assert run_all(batcher, [(model, "x")]) == ["m:x"]
        assert time.perf_counter() - start < 1.0  # nobody else was on the way
    finally:
        batcher.close()


def test_it_waits_up_to_the_delay_for_requests_on_their_way():
    model = Model()
    arrivals = Arrivals()
    batcher = MicroBatcher(model, max_batch=32, max_delay=0.3, arrivals=arrivals)
    try:
        arrivals.admit({})  # admitted, never arrives (as if its validation failed late)
        start = time.perf_counter()
        assert run_all(batcher, [(model, "x")]) == ["m:x"]
        assert 0.25 <= time.perf_counter() - start < 2.0
    finally:
        batcher.close()


def test_arrivals_count_each_request_out_once():
    arrivals, scope = Arrivals(), {}
    arrivals.admit(scope)
    arrivals.arrive(scope)
    arrivals.arrive(scope)  # the middleware's second call after the handler's is a no-op
    assert arrivals.pending == 0


def test_two_models_are_never_mixed_in_one_batch():
    old, new = Model("old", delay=0.05), Model("new")
    batcher = MicroBatcher(lambda m, qs: m(m, qs), max_batch=32, max_delay=0.05)
    try:
        out = run_all(batcher, [(old, 1), (new, 2), (old, 3), (new, 4)])
        assert out == ["old:1", "new:2", "old:3", "new:4"]
        assert all(set(b) <= {1, 3} for b in old.batches) and all(set(b) <= {2, 4} for b in new.batches)
    finally:
        batcher.close()


def test_close_finishes_queued_work():
    model = Model(delay=0.01)
    batcher = MicroBatcher(model, max_batch=2, max_delay=0.0)
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_task(batcher.submit(model, i)) for i in range(5)]
        loop.run_until_complete(asyncio.sleep(0))
        threading.Thread(target=batcher.close).start()
        assert loop.run_until_complete(asyncio.gather(*futures)) == [f"m:{i}" for i in range(5)]
    finally:
        loop.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_settings_refuse_a_batch_size_below_one(bad):
    from pydantic import ValidationError

    from recsys.service.settings import Settings

    with pytest.raises(ValidationError):
        Settings(batch_size=bad)
