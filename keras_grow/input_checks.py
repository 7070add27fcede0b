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


def examples_of(spec, inputs, source=None):
    """The tensor (or spec) of `inputs` that holds the examples, after
    checking that `inputs` has the structure `spec.model_inputs` states
    (one tensor or a dict of it by name, or a dict of tensors by name) and
    every shape.

    Args:
        spec: the net's spec.
        inputs: what the net is given: tensors, or `tf.TensorSpec`s of a
            dataset's elements.
        source: str or `None`. Where they come from, for the error
            (`"`train_data`"`).

    Raises:
        ValueError: for another structure or shape, saying how to fix it.
    """
    origin = f" from {source}" if source else ""
    expected = spec.model_inputs
    names = [i.name for i in expected]
    if len(expected) == 1 and not isinstance(inputs, dict):
        given = {names[0]: inputs}
    elif isinstance(inputs, dict) and set(inputs) == set(names):
        given = inputs
    else:
        received = sorted(inputs) if isinstance(inputs, dict) else "one tensor"
        wanted = (
            f"one tensor (or a dict of it as {names})"
            if len(expected) == 1
            else f"a dict of inputs {names}"
        )
        raise ValueError(
            f"{spec.notation} takes {wanted}; received {received}{origin}."
        )
    for index, model_input in enumerate(expected):
        shape = tuple(getattr(given[model_input.name], "shape", ()))
        if not _fits(shape, model_input.shape):
            where = "" if len(expected) == 1 else f" '{model_input.name}'"
            hint = shape_hint(model_input.shape, shape) if index == 0 else ""
            raise ValueError(
                f"{spec.notation} takes inputs{where} of shape (batch, "
                f"{', '.join(map(str, model_input.shape))}); received shape "
                f"{shape}{origin}. {hint}".rstrip()
            )
    return given[names[0]]


def _fits(shape, expected):
    """Whether a batch of `shape` (`None` where unknown) fits examples of
    shape `expected`."""
    return len(shape) == len(expected) + 1 and all(
        got is None or got == want for got, want in zip(shape[1:], expected)
    )


def check_inputs(spec, inputs, source=None):
    """Raises if `inputs` cannot feed a net of `spec` (checked once per
    trace): another structure or shape (`examples_of`), or integer
    pixels the net does not scale."""
    examples = examples_of(spec, inputs, source)
    dtype = keras.backend.standardize_dtype(getattr(examples, "dtype", "float32"))
    if not dtype.startswith(("float", "bfloat")) and not spec.takes_integer_inputs:
        origin = f" from {source}" if source else ""
        raise TypeError(
            f"GrowableModel takes float pixels in [0, 1]; received {dtype} "
            f"inputs{origin}. Convert them (e.g. images / 255.0), load them "
            "with kg.data.load, or (a model of your own) start it with "
            "keras.layers.Rescaling(1 / 255)."
        )


def _check_fit_inputs(spec, x):
    """`check_inputs` on what `fit` trains on, before the first step: the
    arrays' or the dataset's shapes (a traced step may have relaxed them
    to unknown ones by the time it sees another shape)."""
    if isinstance(x, tf.data.Dataset):
        element = x.element_spec
        inputs = element[0] if isinstance(element, (tuple, list)) else element
    elif isinstance(x, dict) or hasattr(x, "shape"):
        inputs = x
    else:
        return  # a generator or PyDataset: checked at the first trace
    check_inputs(spec, inputs)


def check_fit(model, args, kwargs):
    """Checks one `fit` call of `model` before any step, and returns its
    keyword arguments completed.

    A warning for a compiled loss that reads the output as what it is not
    (logits as probabilities, or the reverse; `keras_grow.losses`); the
    callbacks a growing model needs, a warning where growth would measure
    on other data than `fit` trains on (unweighted, or the validation
    split), and the labels (`keras_grow.fit_checks`); a warning where
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
    head = losses.model_head(model)
    losses.warn_if_mismatched(head)
    fit_checks.check_fit_callbacks(named["callbacks"])
    fit_checks.check_growth_data(
        named["x"],
        named["sample_weight"],
        named["class_weight"],
        named["validation_split"],
        named["callbacks"],
    )
    fit_checks.check_labels(
        named["x"],
        named["y"],
        head,
        model.spec.num_classes,
        output_rank=len(model.body.outputs[0].shape),
    )
    _check_fit_inputs(model.spec, named["x"])
    precision.warn_if_slow_bfloat16(model.body)
    onednn.warn_if_crash_prone(model.body, named["x"], named["batch_size"])
    if isinstance(named["x"], tf.data.Dataset) and "shuffle" not in given:
        given["shuffle"] = False
    return given
