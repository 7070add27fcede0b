"""Growth scalars to TensorBoard, one writer helper for every callback."""

import importlib.util

import tensorflow as tf


def tensorboard_available():
    """bool. Whether tf.summary can write (the tensorboard package exists)."""
    return importlib.util.find_spec("tensorboard") is not None


class GrowthScalars:
    """Writes `growth/...` scalars to a TensorBoard log directory.

    Args:
        log_dir: str or `None`. `None` writes nothing.
        owner: str. The callback's name, for the error message.

    Raises:
        ValueError: if `log_dir` is given and tensorboard is not installed.
    """

    def __init__(self, log_dir, owner):
        if log_dir is not None and not tensorboard_available():
            raise ValueError(
                f"{owner}(log_dir={log_dir!r}) writes TensorBoard scalars and "
                "needs the tensorboard package: `pip install tensorboard`, or "
                "pass log_dir=None."
            )
        self.log_dir = log_dir
        self._writer = None

    def write(self, step, scalars):
        """Writes `scalars()` (`{name: number}`) as `growth/<name>` at
        `step`; without a log dir `scalars` is never called."""
        if self.log_dir is None:
            return
        scalars = scalars()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            for name, value in scalars.items():
                tf.summary.scalar(f"growth/{name}", value, step=step)
        self._writer.flush()
