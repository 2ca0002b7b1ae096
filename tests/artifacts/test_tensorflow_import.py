"""TensorFlow's load-time log lines are filtered by TF_CPP_MIN_LOG_LEVEL."""

import subprocess
import sys

from recsys.artifacts.tensorflow_import import kept
from tests.conftest import ROOT

LOG = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
       "I0000 00:00:1796012758.062354    5104 port.cc:153] oneDNN custom operations are on.\n"
       "I0000 00:00:1796012758.106924    5104 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
       "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
       "E0000 00:00:1796012758.200000    5104 cuda.cc:1] something failed\n"
       "W0000 00:00:1796012758.300000    5104 x.cc:2] a warning")


def test_lines_below_the_level_are_dropped_with_their_continuations():
    assert kept(LOG, 2) == "E0000 00:00:1796012758.200000    5104 cuda.cc:1] something failed\n"
    assert kept(LOG, 1).splitlines()[-1] == "W0000 00:00:1796012758.300000    5104 x.cc:2] a warning"
    lines = kept(LOG, 0).splitlines()
    assert len(lines) == 5 and lines[2].startswith("To enable") and not lines[0].startswith("WARNING: All")


def test_importing_tensorflow_writes_nothing_at_the_default_level():
    code = "from artifacts.tensorflow_import import import_tensorflow; tf = import_tensorflow(); print(tf.__name__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stdout == "tensorflow\n"
    assert proc.stderr == ""
