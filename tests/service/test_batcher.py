"""The micro-batcher on its own: grouping, per-query results and errors, waiting rules, lifecycle."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from recsys.service.batcher import Arrivals, BatcherStopped, MicroBatcher
from tests.service.fakes import Fatal
from tests.service.servers import wait_until


class Model:
    """run(model, queries): records each batch; query "bad" fails alone, "boom" fails the batch,
    "die" kills the thread; with a `gate`, the first batch waits for it to open."""

    def __init__(self, name: str = "m", delay: float = 0.0, gate: threading.Event | None = None):
        self.name, self.delay, self.gate, self.batches = name, delay, gate, []

    def __call__(self, model, queries):
        model.batches.append(list(queries))
        if "boom" in queries:
            raise RuntimeError("boom")
        if "die" in queries:
            raise Fatal("the thread dies")
        if model.gate is not None:
            assert model.gate.wait(60), "the test never opened the gate"
        time.sleep(model.delay)
        return [ValueError(f"bad {q}") if q == "bad" else f"{model.name}:{q}" for q in queries]


def run_all(batcher: MicroBatcher, jobs, timeout: float | None = None):
    async def main():
        return await asyncio.gather(*(batcher.submit(m, q, timeout) for m, q in jobs), return_exceptions=True)
    return asyncio.run(main())


def test_concurrent_requests_share_a_batch_and_each_gets_its_own_answer():
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = MicroBatcher(model, max_batch=64, max_delay=0.5).start()

    async def main():
        first = asyncio.ensure_future(batcher.submit(model, "first"))  # holds the thread at the gate
        await asyncio.sleep(0)
        wait_until(lambda: model.batches)
        rest = [asyncio.ensure_future(batcher.submit(model, i)) for i in range(20)]
        await asyncio.sleep(0)  # every one of them is queued now
        gate.set()
        return await first, await asyncio.gather(*rest)

    try:
        first, out = asyncio.run(main())
        assert first == "m:first" and out == [f"m:{i}" for i in range(20)]
        assert model.batches == [["first"], list(range(20))]  # the 20 queued meanwhile: one model call
    finally:
        batcher.close()


def test_max_batch_is_respected():
    model = Model(delay=0.02)
    batcher = MicroBatcher(model, max_batch=4, max_delay=0.05).start()
    try:
        assert run_all(batcher, [(model, i) for i in range(10)]) == [f"m:{i}" for i in range(10)]
        assert max(len(b) for b in model.batches) <= 4
    finally:
        batcher.close()


def test_an_error_fails_its_own_query_and_a_crash_fails_only_its_batch():
    model = Model()
    batcher = MicroBatcher(model, max_batch=8, max_delay=0.05).start()
    try:
        out = run_all(batcher, [(model, "a"), (model, "bad"), (model, "b")])
        assert out[0] == "m:a" and out[2] == "m:b"
        assert isinstance(out[1], ValueError) and str(out[1]) == "bad bad"
        crashed = run_all(batcher, [(model, "boom")])
        assert isinstance(crashed[0], RuntimeError)
        assert run_all(batcher, [(model, "after")]) == ["m:after"]  # the thread survived
    finally:
        batcher.close()


def test_a_query_that_crashes_its_batch_fails_alone():
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = MicroBatcher(model, max_batch=64, max_delay=0.5).start()

    async def main():
        first = asyncio.ensure_future(batcher.submit(model, "first"))  # holds the thread at the gate
        await asyncio.sleep(0)
        wait_until(lambda: model.batches)
        rest = [asyncio.ensure_future(batcher.submit(model, q)) for q in ("a", "boom", "b", "bad", "c")]
        await asyncio.sleep(0)
        gate.set()
        return await first, await asyncio.gather(*rest, return_exceptions=True)

    try:
        first, out = asyncio.run(main())
        assert model.batches[1] == ["a", "boom", "b", "bad", "c"]  # they did share a batch, which raised
        assert first == "m:first" and [out[0], out[2], out[4]] == ["m:a", "m:b", "m:c"]
        assert isinstance(out[1], RuntimeError) and str(out[1]) == "boom"
        assert isinstance(out[3], ValueError)  # its own result, as in the batch
    finally:
        batcher.close()


def test_a_wrong_number_of_results_fails_the_batch_instead_of_hanging():
    batcher = MicroBatcher(lambda model, queries: list(queries)[1:], max_batch=8, max_delay=0.05).start()
    try:
        out = run_all(batcher, [("m", 1), ("m", 2)])  # every batch gets one result too few
        assert all(isinstance(r, RuntimeError) and "results for a batch of" in str(r) for r in out)
    finally:
        batcher.close()


def test_a_lone_request_does_not_wait_for_the_delay():
    model = Model()
    batcher = MicroBatcher(model, max_batch=32, max_delay=3600).start()  # waiting would fail the run below
    try:
        assert run_all(batcher, [(model, "x")], timeout=60) == ["m:x"]  # nobody else was on the way
    finally:
        batcher.close()


def test_it_waits_for_requests_on_their_way_up_to_the_delay():
    model = Model()
    arrivals = Arrivals()
    batcher = MicroBatcher(model, max_batch=32, max_delay=3600, arrivals=arrivals).start()
    late = {}
    arrivals.admit(late)  # admitted, still being validated

    async def main():
        first = asyncio.ensure_future(batcher.submit(model, "first"))
        await asyncio.sleep(0.05)  # the batch is open, waiting for the one on its way
        second = asyncio.ensure_future(batcher.submit(model, "late"))
        await asyncio.sleep(0)  # queued
        arrivals.arrive(late)
        return await asyncio.gather(first, second)

    try:
        assert asyncio.run(main()) == ["m:first", "m:late"]
        assert model.batches == [["first", "late"]]
        arrivals.admit({})  # admitted, never arrives (as if its validation failed late)
        bounded = MicroBatcher(model, max_batch=32, max_delay=0.3, arrivals=arrivals).start()
        start = time.perf_counter()
        assert run_all(bounded, [(model, "x")], timeout=60) == ["m:x"]
        assert time.perf_counter() - start >= 0.3  # it waited the whole delay, then ran alone
        bounded.close()
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
    batcher = MicroBatcher(lambda m, qs: m(m, qs), max_batch=32, max_delay=0.05).start()
    try:
        out = run_all(batcher, [(old, 1), (new, 2), (old, 3), (new, 4)])
        assert out == ["old:1", "new:2", "old:3", "new:4"]
        assert all(set(b) <= {1, 3} for b in old.batches) and all(set(b) <= {2, 4} for b in new.batches)
    finally:
        batcher.close()


def test_close_finishes_queued_work():
    model = Model(delay=0.01)
    batcher = MicroBatcher(model, max_batch=2, max_delay=0.0).start()
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_task(batcher.submit(model, i)) for i in range(5)]
        loop.run_until_complete(asyncio.sleep(0))
        closer = threading.Thread(target=batcher.close)
        closer.start()
        assert loop.run_until_complete(asyncio.gather(*futures)) == [f"m:{i}" for i in range(5)]
        closer.join(5)  # its batching thread is gone before the next test counts threads
    finally:
        loop.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_settings_refuse_a_batch_size_below_one(bad):
    from pydantic import ValidationError

    from recsys.service.settings import Settings

    with pytest.raises(ValidationError):
        Settings(batch_size=bad)


def test_it_runs_only_between_start_and_close():
    model = Model()
    batcher = MicroBatcher(model, max_batch=4, max_delay=0.0)
    assert not batcher.alive and "micro-batcher" not in {t.name for t in threading.enumerate()}
    assert isinstance(run_all(batcher, [(model, 1)])[0], BatcherStopped)  # not started: refused, not queued
    batcher.start()
    assert batcher.alive and run_all(batcher, [(model, 1)]) == ["m:1"]
    batcher.close()
    assert not batcher.alive and isinstance(run_all(batcher, [(model, 2)])[0], BatcherStopped)


def test_a_wait_past_its_deadline_raises_timeout():
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = MicroBatcher(model, max_batch=4, max_delay=0.0).start()
    try:
        out = run_all(batcher, [(model, "stuck")], timeout=0.1)
        assert isinstance(out[0], TimeoutError) and batcher.alive  # the wait ended; the thread goes on
    finally:
        gate.set()
        batcher.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_dead_thread_answers_every_waiting_request_and_refuses_new_ones():
    gate = threading.Event()
    model = Model(gate=gate)
    batcher = MicroBatcher(model, max_batch=1, max_delay=0.0).start()

    async def main():
        first = asyncio.ensure_future(batcher.submit(model, "held"))
        await asyncio.sleep(0)
        wait_until(lambda: model.batches)  # the thread is busy with "held"
        queued = [asyncio.ensure_future(batcher.submit(model, q)) for q in ("die", "waiting")]
        await asyncio.sleep(0)
        gate.set()  # "held" completes, then "die" kills the thread with "waiting" still queued
        return await asyncio.gather(first, *queued, return_exceptions=True)

    out = asyncio.run(main())  # no deadline given: it returns only because the dead thread answered
    assert out[0] == "m:held"
    assert all(isinstance(r, BatcherStopped) for r in out[1:]), out
    assert not batcher.alive
    assert isinstance(run_all(batcher, [(model, "later")])[0], BatcherStopped)


def test_on_start_runs_on_the_batching_thread_before_the_first_batch():
    import faiss

    from recsys.artifacts.host import limit_threads

    seen = []
    model = Model()

    def start():
        limit_threads(1)
        seen.append((threading.current_thread().name, faiss.omp_get_max_threads()))

    batcher = MicroBatcher(model, max_batch=4, max_delay=0.0, on_start=start).start()
    try:
        assert run_all(batcher, [(model, 1)]) == ["m:1"]
    finally:
        batcher.close()
    assert seen == [("micro-batcher", 1)]
