"""Dynamic micro-batching: concurrent requests go through the model as one batch.

    handler --submit--> queue --> batching thread: collect, recommend_batch(...) --> futures

The batching thread takes the oldest waiting request and keeps collecting until the batch
holds `max_batch` requests, or `max_delay` has passed since that oldest request arrived
(Triton's max_queue_delay_microseconds, TF Serving's batch_timeout_micros), or no other
request is on its way: `Arrivals` counts requests admitted to /recommend that have not
reached the queue yet (they are being read and validated), so a lone request never waits
for company that is not coming. While a batch computes, the next one forms in the queue.

The model work (numpy towers and heads, FAISS) runs on this one thread, off the event loop,
which stays free to parse and answer requests; numpy and FAISS release the GIL while they
compute, so both cores work.

Lifecycle: `start()` (the app's lifespan) starts the thread, `close()` finishes the queued
work and stops it. Every wait has a deadline (`submit(..., timeout)`), and if the thread
dies, every waiting request gets BatcherStopped at once and `alive` turns False (/readyz).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("recsys.service")


class Arrivals:
    """Requests admitted but not yet submitted; written on the event loop, read by the batcher.

    `admit(scope)` when a request is let in, `arrive(scope)` when it reaches the batcher or
    ends without doing so (a validation error, say); the scope flag makes the second call a
    no-op, so each request is counted out exactly once.
    """

    FLAG = "recsys.pending"

    def __init__(self) -> None:
        self.pending = 0

    def admit(self, scope: dict) -> None:
        scope[self.FLAG] = True
        self.pending += 1

    def arrive(self, scope: dict) -> None:
        if scope.pop(self.FLAG, False):
            self.pending -= 1


@dataclass
class _Job:
    model: object                   # the recommender the request started with (reloads swap it)
    query: object
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class _Task:
    """Work to run on the batching thread between two batches (e.g. an index change)."""

    fn: Callable[[], object]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class BatcherStopped(RuntimeError):
    """The batching thread is not running: not started, closed, or dead."""


def _reply(job: _Job, result) -> None:
    """Hand `result` to the job's event loop (from any thread)."""
    try:
        job.loop.call_soon_threadsafe(_deliver, job.future, result)
    except RuntimeError:  # that loop is closed: nobody is waiting any more
        pass


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no answer within the deadline"))


def _deliver(future: asyncio.Future, result) -> None:
    if future.done():  # cancelled: the client went away
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class MicroBatcher:
    """`await submit(model, query)` -> the result of run(model, [..., query, ...]) for that query.

    `run(model, queries)` returns one result per query (a value, or an exception instance
    for that query alone, which `submit` raises). If it raises, the batch's queries are run
    again one by one, so only the query that raises gets the exception: one query's failure
    never fails its batch-mates.
    `on_batch(size)` is called per batch (metrics); `on_start()` once on the batching thread
    before its first batch (per-thread settings such as the model's thread count).
    """

    def __init__(self, run: Callable[[object, Sequence[object]], list], max_batch: int, max_delay: float,
                 arrivals: Arrivals | None = None, on_batch: Callable[[int], None] | None = None,
                 on_start: Callable[[], None] | None = None):
        self.run = run
        self.on_start = on_start
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.arrivals = arrivals or Arrivals()
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._held: _Job | _Task | None = None  # a job of another model or a task, first next time
        self._thread: threading.Thread | None = None
        self._running = False  # False from the moment the thread starts winding down

    @property
    def alive(self) -> bool:
        return self._running and self._thread is not None and self._thread.is_alive()

    def start(self) -> MicroBatcher:
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
            self._thread.start()
        return self

    async def submit(self, model, query, timeout: float | None = None):
        """The result for `query`; TimeoutError after `timeout` seconds, BatcherStopped if the
        thread is not running."""
        if not self.alive:
            raise BatcherStopped("the batching thread is not running")
        loop = asyncio.get_running_loop()
        job = _Job(model, query, loop.create_future(), loop)
        self._queue.put(job)
        if not self.alive:  # died between the check and the put: nobody else will answer it
            self._fail_queued()
        if timeout is None:
            return await job.future
        # A timer on the future itself rather than asyncio.wait_for, which wraps every request
        # in a task of its own: the same deadline for a fraction of the event loop's work.
        timer = loop.call_later(timeout, _expire, job.future)
        try:
            return await job.future
        finally:
            timer.cancel()

    def call(self, fn: Callable[[], object], timeout: float | None = None) -> None:
        """Run `fn()` on the batching thread between batches and wait for it (from another thread);
        whatever it raises is raised here."""
        if not self.alive:
            raise BatcherStopped("the batching thread is not running")
        task = _Task(fn)
        self._queue.put(task)
        if not task.done.wait(timeout):
            raise TimeoutError("the batching thread did not run the task in time")
        if task.error is not None:
            raise task.error

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued work, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _fail_queued(self) -> None:
        stopped = BatcherStopped("the batching thread stopped")
        jobs, self._held = [self._held], None
        while True:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for job in jobs:
            if isinstance(job, _Task):
                job.error = stopped
                job.done.set()
            elif job is not None:
                _reply(job, stopped)

    def _collect(self) -> list[_Job] | _Task | None:
        first = self._held or self._queue.get()
        self._held = None
        if first is None or isinstance(first, _Task):
            return first
        batch = [first]
        deadline = first.arrived + self.max_delay
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.perf_counter()
                if wait <= 0 or self.arrivals.pending <= 0:
                    break  # waited long enough, or nobody else is on the way
                try:
                    job = self._queue.get(timeout=min(wait, 0.0005))
                except queue.Empty:
                    continue  # re-check the deadline and the arrivals
            if job is None:
                self._queue.put(None)  # stop after this batch
                break
            if isinstance(job, _Task) or job.model is not first.model:
                self._held = job  # a reload happened in between: never mix two models in a batch
                break
            batch.append(job)
        return batch

    def _run(self, model, queries: list) -> list:
        """One result per query; a batch that raises is split into batches of one."""
        try:
            results = self.run(model, queries)
            if len(results) != len(queries):  # a request without an answer would wait forever
                raise RuntimeError(f"{len(results)} results for a batch of {len(queries)}")
            return results
        except Exception as e:
            if len(queries) == 1:
                log.error("query failed", exc_info=e)
                return [e]
            log.warning("batch of %d failed (%s: %s); running its queries one by one",
                        len(queries), type(e).__name__, e)
            return [self._run(model, [q])[0] for q in queries]

    def _loop(self) -> None:
        batch: list[_Job] = []
        try:
            if self.on_start is not None:
                self.on_start()
            while True:
                batch = self._collect() or []
                if isinstance(batch, _Task):
                    task, batch = batch, []
                    try:
                        task.fn()
                    except Exception as e:  # noqa: BLE001 - handed to the caller, which raises it
                        task.error = e
                    task.done.set()
                    continue
                if not batch:
                    return
                results = self._run(batch[0].model, [job.query for job in batch])
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                for job, result in zip(batch, results):
                    _reply(job, result)
                batch = []
        finally:  # closed, or killed by something no batch should survive: answer whoever waits
            self._running = False
            if batch:
                log.error("batching thread stopped during a batch of %d", len(batch))
            stopped = BatcherStopped("the batching thread stopped")
            for job in batch:
                _reply(job, stopped)
            self._fail_queued()
