"""TensorFlow's import-time log lines, held to TF_CPP_MIN_LOG_LEVEL.

TensorFlow's C++ side writes a few lines straight to file descriptor 2 while it loads (on CPUs
where oneDNN's custom ops are on: an INFO notice saying so, preceded by absl's "All log
messages before absl::InitializeLog()" warning), whatever TF_CPP_MIN_LOG_LEVEL says. On the
command line that breaks the one-line error contract. `install()` wraps the first import of
`tensorflow` so that its descriptor-level stderr is captured and replayed without those lines;
anything else TensorFlow writes while loading still reaches stderr.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
import tempfile

# absl's pre-initialisation banner and C++ log lines below the configured level ("I0000 ...").
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LEVELS = "IWEF"  # INFO, WARNING, ERROR, FATAL: TF_CPP_MIN_LOG_LEVEL 0..3
_LINE = re.compile(r"^([IWEF])\d{4} ")


def _kept(line: str, min_level: int) -> bool:
    if line.strip() == _BANNER:
        return False
    m = _LINE.match(line)
    return m is None or _LEVELS.index(m.group(1)) >= min_level


def filter_lines(text: str, min_level: int) -> str:
    """`text` without absl's banner and the C++ log lines below `min_level` (0 INFO .. 3 FATAL)."""
    return "".join(line for line in text.splitlines(keepends=True) if _kept(line, min_level))


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        except ValueError:
            min_level = 0
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile("w+b") as capture:
            os.dup2(capture.fileno(), 2)
            try:
                self._loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                rest = filter_lines(capture.read().decode("utf-8", "replace"), min_level)
                if rest:
                    sys.stderr.write(rest)
                    sys.stderr.flush()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: find the real spec, then wrap its loader
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Filter TensorFlow's import-time stderr from here on (no effect once it is imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
