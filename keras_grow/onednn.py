"""TensorFlow's oneDNN CPU kernels, and the crash they can cause.

TensorFlow decides when it loads whether its oneDNN kernels run: by
default on CPUs with AVX-512 VNNI / BF16 or AMX (TensorFlow 2.9's release
notes), off elsewhere (AVX2 CPUs), and `TF_ENABLE_ONEDNN_OPTS=0|1`
overrides. With them on, a ResNet's strided 1x1 projection shortcut (1x1
convolution with stride 2, then batch normalization) can crash the process
(double free / SIGSEGV) with odd batch sizes, e.g.
`Basic3ResNet(8,16,32)-1-1-1` at batch 33 on CPUs where the kernels run
(`tests/test_onednn.py` tries it in a child process; docs/bad_input.md has
where it was seen). Nothing in Python can catch it, and the switch is read
once, when TensorFlow loads, so a library imported after `import keras`
cannot turn it off.

So: the experiment binaries and the demo turn oneDNN off before TensorFlow
loads (`experiments/__init__.py`; a user's own `TF_ENABLE_ONEDNN_OPTS`
wins), and `GrowableModel.fit` warns once per process when oneDNN is on,
the net has a strided 1x1 convolution and an odd batch can occur, naming
the fix. See docs/bad_input.md.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_grow import keras_compat

FIX = (
    "set TF_ENABLE_ONEDNN_OPTS=0 in the environment before TensorFlow is "
    "imported (in the shell, or as the first lines of the script: "
    "`import os; os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'`), or use an even "
    "batch size that divides the data (for a tf.data.Dataset: "
    "`batch(n, drop_remainder=True)` with n even)"
)

_warned = False


def enabled():
    """bool or `None`. Whether TensorFlow runs its oneDNN kernels in this
    process (`None` if this TensorFlow does not say)."""
    return keras_compat.onednn_enabled()


def strided_pointwise_convs(body):
    """list of str. Names of `body`'s 1x1 convolutions with a stride > 1
    (the crash's pattern), in graph order."""
    return [
        layer.name
        for layer in body.layers
        if isinstance(layer, keras.layers.Conv2D)
        and tuple(layer.kernel_size) == (1, 1)
        and max(layer.strides) > 1
    ]


def odd_batches_possible(x, batch_size):
    """Whether a `fit` on `x` may run a batch of odd size.

    Args:
        x: what `fit` received: an array (or tensor), a `tf.data.Dataset`,
            or anything else (then the answer is `True`: unknown).
        batch_size: int or `None`. `fit`'s argument (Keras' default: 32).

    Returns:
        bool. For arrays: the batch size or the last batch's is odd. For a
        dataset: its batch dimension is unknown (a partial last batch
        can occur) or odd.
    """
    if isinstance(x, tf.data.Dataset):
        shapes = tf.nest.flatten(x.element_spec)
        size = shapes[0].shape[0] if shapes and shapes[0].shape.rank else None
        return size is None or size % 2 == 1
    if isinstance(x, (np.ndarray, tf.Tensor)) or hasattr(x, "shape"):
        n = int(x.shape[0])
        size = batch_size or 32
        return size % 2 == 1 or (n % size) % 2 == 1
    return True


def warn_if_crash_prone(body, x, batch_size):
    """Warns (once per process) when oneDNN is on, `body` has a strided
    1x1 convolution and `fit` on `x` may run an odd batch.

    Returns:
        bool. Whether it warned now.
    """
    global _warned
    if _warned or not enabled():
        return False
    convs = strided_pointwise_convs(body)
    if not convs or not odd_batches_possible(x, batch_size):
        return False
    _warned = True
    warnings.warn(
        "TensorFlow's oneDNN CPU kernels are on, and with them TensorFlow "
        "2.21 can crash the process (double free / segmentation fault) on a "
        "strided 1x1 convolution with an odd batch size; this net has "
        f"{len(convs)} ({', '.join(convs[:3])}{', ...' if len(convs) > 3 else ''}) "
        f"and this fit may run odd batches. If it crashes: {FIX}.",
        UserWarning,
        stacklevel=3,
    )
    return True
