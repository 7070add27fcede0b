"""What a `GrowableModel` checks of its inputs and of the arguments of
`fit`, before a step: a clear error instead of one from deep inside the
graph, or a warning where training would go wrong silently."""

import inspect

import keras
import numpy as np
import tensorflow as tf

from keras_grow import fit_checks
from keras_grow import losses
from keras_grow import onednn
from keras_grow import precision

_FIT = inspect.signature(keras.Model.fit)


def shape_hint(expected, received):
    """str. The likely fix for inputs of shape `received` (with the batch
    axis) given to a net that takes examples of shape `expected`."""
    received = tuple(received)
    if received == expected:
        return (
            "That is one example without the batch axis: add it "
            "(x[None] or np.expand_dims(x, 0))."
        )
    if len(received) == len(expected) and received[1:] + (1,) == expected:
        return "Add the channel axis: x[..., None] (or np.expand_dims(x, -1))."
    known = [d for d in received[1:] if d is not None]
    if len(known) == len(received) - 1 and int(np.prod(known)) == int(
        np.prod(expected)
    ):
        return (
            f"Same number of values per example: reshape the data to "
            f"(-1, {', '.join(map(str, expected))})."
        )
    return (
        f"Build the spec for these inputs (input_shape={received[1:]}), or "
        f"resize the data to {expected}."
    )


def check_inputs(spec, inputs):
    """Raises if `inputs` cannot feed a net of `spec` (checked once per
    trace): another shape, or integer pixels the net does not scale."""
    shape = tuple(getattr(inputs, "shape", ()))
    if not spec.accepts_shape(shape):
        expected = tuple(spec.input_shape)
        raise ValueError(
            f"{spec.notation} takes inputs of shape (batch, "
            f"{', '.join(map(str, expected))}); received shape {shape}. "
            f"{shape_hint(expected, shape)}"
        )
    dtype = keras.backend.standardize_dtype(getattr(inputs, "dtype", "float32"))
    if not dtype.startswith(("float", "bfloat")) and not spec.takes_integer_inputs:
        raise TypeError(
            f"GrowableModel takes float pixels in [0, 1]; received {dtype} "
            "inputs. Convert them (e.g. images / 255.0), load them with "
            "kg.data.load, or (a model of your own) start it with "
            "keras.layers.Rescaling(1 / 255)."
        )


def check_fit(model, args, kwargs):
    """Checks one `fit` call of `model` before any step, and returns its
    keyword arguments completed.

    A warning for a compiled loss that expects probabilities (the body
    outputs logits; `keras_grow.losses`); the callbacks a growing model
    needs and the labels (`keras_grow.fit_checks`); a warning where
    TensorFlow's oneDNN kernels may crash (`keras_grow.onednn`) and where
    bfloat16 is slower than float32 (`keras_grow.precision`). A dataset
    shuffles itself, so Keras' default `shuffle=True` (which only warns
    that it is ignored) becomes `False` unless given.

    Args:
        model: the `GrowableModel`.
        args, kwargs: what `fit` was called with.

    Returns:
        dict. `fit`'s arguments by name (Keras' signature).
    """
    bound = _FIT.bind(model, *args, **kwargs)
    given = dict(bound.arguments)
    given.pop("self")
    named = {name: p.default for name, p in _FIT.parameters.items() if name != "self"}
    named.update(given)
    losses.warn_if_probability_loss(getattr(model, "loss", None))
    fit_checks.check_fit_callbacks(named["callbacks"])
    fit_checks.check_labels(named["x"], named["y"], model.spec.num_classes)
    precision.warn_if_slow_bfloat16(model.body)
    onednn.warn_if_crash_prone(model.body, named["x"], named["batch_size"])
    if isinstance(named["x"], tf.data.Dataset) and "shuffle" not in given:
        given["shuffle"] = False
    return given
