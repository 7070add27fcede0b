"""Argument checks the growth callbacks share: a ValueError (or TypeError)
naming the argument, the value and what is allowed."""

import numpy as np
import tensorflow as tf


def check_int(value, name, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}"
            f"{' or None' if allow_none else ''}; received {value!r}."
        )


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {list(allowed)}; received {value!r}."
        )


def _check_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number; received {value!r}.")


def check_fraction(value, name, upper=1.0):
    """A number in (0, upper]."""
    _check_number(value, name)
    if not 0 < value <= upper:
        raise ValueError(f"`{name}` must be in (0, {upper}]; received {value!r}.")


def check_non_negative(value, name):
    """A number >= 0."""
    _check_number(value, name)
    if value < 0:
        raise ValueError(f"`{name}` must be a number >= 0; received {value!r}.")


def as_dataset(data, name, batch_size=32, seed=0):
    """Training data as `fit` takes it, as a `tf.data.Dataset` of batches.

    A `tf.data.Dataset` of (images, labels) batches is used as it is; a
    tuple or list `(x, y)` of arrays becomes one, shuffled every pass (with
    `seed`, so a resumed run draws the same batches) in batches of
    `batch_size` (Keras' default 32).

    Raises:
        TypeError: for anything else, naming `name`.
    """
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (np.asarray(a) for a in data)
        if len(x) != len(y) or not len(x):
            raise ValueError(
                f"`{name}` = (x, y) needs as many labels as examples, at least "
                f"one; received {len(x)} examples and {len(y)} labels."
            )
        return (
            tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
    raise TypeError(
        f"`{name}` must be a tf.data.Dataset of (images, labels) batches "
        f"(e.g. kg.data.load(...)) or a tuple (x, y) of arrays; received "
        f"{type(data).__name__}."
    )


def check_batches_fit(data, spec, name):
    """Raises if `data`'s images cannot feed a net of `spec` (at fit start,
    not deep inside a growth step)."""
    element = data.element_spec
    images = element[0] if isinstance(element, (tuple, list)) else element
    shape = tuple(images.shape)
    if not spec.accepts_shape(shape):
        raise ValueError(
            f"`{name}` yields images of shape {shape}; the model "
            f"({spec.notation}) takes "
            f"(batch, {', '.join(map(str, spec.input_shape))})."
        )
    if not images.dtype.is_floating and not spec.takes_integer_inputs:
        raise TypeError(
            f"`{name}` yields {images.dtype.name} images; the model takes float "
            "pixels in [0, 1] (e.g. images / 255.0, or kg.data.load)."
        )
    cardinality = int(data.cardinality())
    if cardinality == 0 or (
        cardinality == tf.data.UNKNOWN_CARDINALITY and not list(data.take(1))
    ):
        raise ValueError(
            f"`{name}` yields no batches: growth has nothing to measure on. "
            f"Pass the training data (e.g. the dataset given to fit), not an "
            f"empty or fully filtered one."
        )
