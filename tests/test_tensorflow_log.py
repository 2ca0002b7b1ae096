"""recsys.tensorflow_log: TensorFlow's import-time stderr held to TF_CPP_MIN_LOG_LEVEL."""

import os
import subprocess
import sys

from recsys.tensorflow_log import filter_lines

# As TensorFlow 2.21 writes them on a Xeon with AVX-512, before absl's logging is initialised.
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
NOTICE = ("I0000 00:00:1796504605.251537    4353 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors from different "
          "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
WARN = "W0000 00:00:1796504605.251537    4353 cpu_feature_guard.cc:10] something the user should see\n"
ERROR = "E0000 00:00:1796504605.251537    4353 loader.cc:1] a real error\n"
OTHER = "/site-packages/keras/src/x.py:74: UserWarning: a Python warning\n"


def test_drops_the_banner_and_lines_below_the_level_only():
    text = BANNER + NOTICE + WARN + ERROR + OTHER
    assert filter_lines(text, 2) == ERROR + OTHER
    assert filter_lines(text, 1) == WARN + ERROR + OTHER
    assert filter_lines(text, 0) == NOTICE + WARN + ERROR + OTHER
    assert filter_lines("", 2) == ""


def test_importing_tensorflow_writes_nothing_below_the_level():
    """On a CPU where oneDNN's custom ops are on, a plain import prints its notice; with the
    hook installed, nothing reaches stderr at TF_CPP_MIN_LOG_LEVEL=2, and the module works."""
    code = ("from recsys import tensorflow_log; tensorflow_log.install()\n"
            "import keras, tensorflow as tf\n"
            "print(float(tf.reduce_sum(tf.constant([1.0, 2.0]))))\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "3.0\n"
    assert out.stderr == ""
