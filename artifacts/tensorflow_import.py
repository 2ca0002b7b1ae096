"""Importing TensorFlow without its loader's chatter on stderr.

TensorFlow's native libraries log while they load (oneDNN, CPU features), through absl
before absl is initialised, and some builds (2.21 on Linux) then ignore
TF_CPP_MIN_LOG_LEVEL. The command line promises one line on an error, so the first import
runs with file descriptor 2 captured, and replays what TF_CPP_MIN_LOG_LEVEL asks for
(default here: errors and worse), or everything when the import fails.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_NATIVE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")        # absl / glog line prefix
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog()"


def kept(text: str, min_level: int) -> str:
    """The lines of `text` at or above `min_level`; a line without a prefix goes with the line
    before it (multi-line messages); the absl preamble is dropped."""
    out, keep = [], True
    for line in text.splitlines(keepends=True):
        if line.startswith(_PREAMBLE):
            continue
        m = _NATIVE.match(line)
        if m:
            keep = _SEVERITY[m.group(1)] >= min_level
        if keep:
            out.append(line)
    text = "".join(out)
    return text if not text or text.endswith("\n") else text + "\n"


def import_tensorflow():
    """`import tensorflow` with the load-time log filtered; a no-op once TensorFlow is loaded."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    except ValueError:
        level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            sys.stderr.write(text if failed else kept(text, level))
            sys.stderr.flush()
    return tensorflow
