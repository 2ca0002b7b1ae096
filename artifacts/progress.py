"""Progress of long offline steps on stderr, shared by training, evaluation, the index and the
batch job.

On a terminal: a tqdm bar with rate and ETA. Otherwise (CI logs, files, pipes): one plain
line every 10 % or every 30 s, whichever comes first, plus a final one, so a log stays
readable and still shows a stuck step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from tqdm import tqdm

PLAIN_EVERY_SECONDS = 30.0  # a plain line per tenth of the work, and at least this often, for steps with no known total or slow tenths
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f} %), {rate_fmt}, {elapsed} elapsed, eta {remaining}"
PLAIN_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit}, {rate_fmt}, {elapsed} elapsed"


class Progress:
    """`update(n)` as work gets done; use as a context manager (or call `close()`)."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", stream: TextIO | None = None,
                 tty: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        tty = _isatty(self.stream) if tty is None else tty
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=self.stream,
                        dynamic_ncols=True, leave=True) if tty else None
        self.start = self.last_line = time.perf_counter()
        self.next_tenth = 1
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        due_tenth = bool(self.total) and self.n * 10 >= self.next_tenth * self.total
        if due_tenth or now - self.last_line >= PLAIN_EVERY_SECONDS:
            if self.total:
                self.next_tenth = self.n * 10 // self.total + 1
            if not (self.total and self.n >= self.total):  # the last line is close()'s
                self._line(now)

    def _line(self, now: float) -> None:
        self.last_line = now
        elapsed = now - self.start
        fmt = PLAIN_FORMAT if self.total else PLAIN_FORMAT_NO_TOTAL
        text = tqdm.format_meter(self.n, self.total, elapsed, prefix=self.desc, unit=self.unit, unit_scale=True,
                                 bar_format=fmt)
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        else:
            self._line(time.perf_counter())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable, total: int | None, desc: str, unit: str = "it",
             size=lambda item: 1) -> Iterator:
    """Yields `iterable`'s items, counting `size(item)` units of work for each."""
    with Progress(total, desc, unit) as p:
        for item in iterable:
            yield item
            p.update(size(item))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
