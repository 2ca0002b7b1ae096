"""The machine a figure was measured on, and handing freed heap back to its OS."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import faiss
import pyarrow as pa
from threadpoolctl import threadpool_limits


def machine() -> dict[str, str | int | None]:
    """cpu (the model name where /proc/cpuinfo has one), cores, system and python."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def describe(**versions: str) -> str:
    """One line for a generated document, e.g. describe(TensorFlow="2.21.0")."""
    m = machine()
    return ", ".join([f"{m['cpu']}", f"{m['cores']} cores", f"{m['system']}", f"Python {m['python']}",
                      *(f"{name} {version}" for name, version in versions.items())])


def release_free_memory() -> None:
    """Give the heap that loading freed back to the OS (glibc and Arrow's allocator keep it
    otherwise: ~200 MB of parsing buffers at 1M items, ~100 MB of Parquet reads)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def limit_threads(n: int) -> None:
    """Cap the threads FAISS (OpenMP) and numpy (BLAS) start for work called from this thread.

    OpenMP's thread count is a per-thread setting: call it on the thread that runs the model.
    A search of a few queries gains little from more threads, and idle OpenMP workers spin
    for a while after each parallel region, taking the core the event loop needs."""
    faiss.omp_set_num_threads(n)
    threadpool_limits(n)
