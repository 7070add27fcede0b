"""Experiment binaries and the study/benchmark code they share.

Importing the package first loads TensorFlow without its C++ start-up
lines (no CUDA driver, oneDNN notices), so every `python -m experiments.X`
starts quietly; `--verbose` on the command line (or a TF_CPP_MIN_LOG_LEVEL
of the user's) keeps them. It also turns TensorFlow's oneDNN kernels off
before TensorFlow loads, unless the environment sets
`TF_ENABLE_ONEDNN_OPTS` (see `keras_grow.onednn`: they can crash the
process on a ResNet's strided shortcuts).
"""

import os
import sys


def _import_tensorflow_quietly():
    """They reach stderr before any setting can stop them, so stderr is
    closed while TensorFlow loads; a user's TF_CPP_MIN_LOG_LEVEL wins for
    what comes later."""
    if "tensorflow" in sys.modules or "--verbose" in sys.argv:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _turn_onednn_off():
    """Read by TensorFlow once, when it loads: too late afterwards."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


_turn_onednn_off()
_import_tensorflow_quietly()

# Read above from sys.argv (before absl parses anything); defined here so
# that every binary accepts it.
from absl import flags  # noqa: E402

flags.DEFINE_bool(
    "verbose", False, "Keep TensorFlow's start-up lines (read at import)."
)
