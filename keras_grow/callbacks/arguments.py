"""The growth callbacks' arguments: checks they share (a ValueError or
TypeError naming the argument, the value and what is allowed), and
`GivenArguments`, the record of what a callback was made with."""

import inspect
import reprlib
import types

import numpy as np
import tensorflow as tf

from keras_grow import input_checks
from keras_grow import specs

_SPREAD = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _parameters(cls):
    """`{name: inspect.Parameter}` of `cls`'s arguments: its `__init__`'s,
    then, while an `__init__` passes `**kwargs` on, its bases' (a
    subclass's default wins)."""
    parameters = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        signature = list(inspect.signature(init).parameters.values())[1:]
        for parameter in signature:
            if parameter.kind not in _SPREAD:
                parameters.setdefault(parameter.name, parameter)
        if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in signature):
            break
    return parameters


def _bound(cls, args, kwargs):
    """The arguments of `cls(*args, **kwargs)` by name, defaults filled in,
    in signature order; `None` when they do not bind (a copy being made:
    its state is copied next)."""
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return None
    given = dict(bound.arguments)
    given.pop(next(iter(given)))  # self
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            given.update(given.pop(name, {}))
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            given.pop(name, None)
    parameters = _parameters(cls)
    return {
        name: given.get(name, parameter.default)
        for name, parameter in parameters.items()
    }


def _config_value(value):
    """A given argument as JSON data: a spec as its dict, a callable as
    its repr, tuples as lists, numpy scalars as numbers."""
    if isinstance(value, specs.NetSpec):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _config_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_config_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if callable(value):
        return repr(value)
    return value


class GivenArguments:
    """Mixin of the growth callbacks: the arguments a callback was made
    with, and its `get_config`, from the one statement of them, the
    `__init__` signatures.

    When a callback is made, its arguments are bound to the signatures of
    its class's `__init__` and of the bases that `**kwargs` reach, with
    the defaults filled in, and kept read-only (`given_arguments`).
    Data (arguments named `*_data`: datasets, arrays) is not
    configuration: `get_config` leaves it out.
    """

    def __new__(cls, *args, **kwargs):
        callback = super().__new__(cls)
        callback._given = _bound(cls, args, kwargs)
        return callback

    @property
    def given_arguments(self):
        """mapping (read-only). Every argument the callback was made with,
        by name, defaults included."""
        return types.MappingProxyType(self._given)

    def get_config(self):
        """dict. The callback's arguments as JSON data (a spec as its
        dict, a schedule's function as its repr), data arguments
        (`*_data`) left out: what it was made with, for logs and
        experiment records."""
        return {
            name: _config_value(value)
            for name, value in self._given.items()
            if not name.endswith("_data")
        }


def shown(value):
    """`value` as an error message shows it: an array (or a tensor) by its
    type, shape and dtype, a tuple or list of them item by item, anything
    else by a repr cut short. Data passed where a number goes (say, a
    callback's data given to one that takes none) then reads as what it is.
    """
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return (
            f"{type(value).__name__} of shape {tuple(value.shape)} "
            f"and dtype {value.dtype}"
        )
    if isinstance(value, (tuple, list)) and any(hasattr(v, "shape") for v in value):
        items = ", ".join(shown(v) for v in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"a {type(value).__name__} of ({items}{more})"
    return reprlib.repr(value)


def check_int(value, name, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}"
            f"{' or None' if allow_none else ''}; received {shown(value)}."
        )


def check_choice(value, name, allowed):
    # Every choice is a string; testing that first keeps `in` from
    # comparing an array element by element.
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {list(allowed)}; received {shown(value)}."
        )


def _check_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number; received {shown(value)}.")


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


def _as_array(value):
    """An array, or a dict of arrays by input name (a model's inputs as
    `fit` takes them by name)."""
    if isinstance(value, dict):
        return {key: np.asarray(v) for key, v in value.items()}
    return np.asarray(value)


def _single_floats(value):
    """`value` (an array or a dict of them) with float arrays in float32,
    as `fit` feeds them; integer ones (token ids, or pixels the net will
    refuse unscaled, as `fit` does) as they are."""
    if isinstance(value, dict):
        return {key: _single_floats(v) for key, v in value.items()}
    return value.astype(np.float32) if value.dtype.kind == "f" else value


def _leaves(value):
    """The arrays of `value`: itself, or a dict's values."""
    return list(value.values()) if isinstance(value, dict) else [value]


def as_dataset(data, name, batch_size=32, seed=0):
    """Training data as `fit` takes it, as a `tf.data.Dataset` of batches.

    A `tf.data.Dataset` of (x, y) or (x, y, sample_weight) batches is used
    as it is; a tuple or list `(x, y)` or `(x, y, sample_weight)` of arrays
    (`x` may be a dict of arrays by input name) becomes one, shuffled
    every pass (with `seed`, so a resumed run draws the same batches) in
    batches of `batch_size` (Keras' default 32).
    Growth weighs the examples by their sample weights as `fit` does.

    Raises:
        TypeError: for anything else, naming `name`.
        ValueError: for arrays of different lengths, or none.
    """
    if isinstance(data, tf.data.Dataset):
        return data
    arrays = [_as_array(a) for a in data] if isinstance(data, (tuple, list)) else []
    leaves = [_leaves(a) for a in arrays]
    if len(arrays) in (2, 3) and all(ls and all(v.ndim for v in ls) for ls in leaves):
        lengths = [len(v) for ls in leaves for v in ls]
        if len(set(lengths)) > 1 or not lengths[0]:
            parts = "(x, y, sample_weight)" if len(data) == 3 else "(x, y)"
            raise ValueError(
                f"`{name}` = {parts} needs as many labels as examples (and "
                f"weights, if given), at least one; received arrays of lengths "
                f"{', '.join(map(str, lengths))}."
            )
        arrays[0] = _single_floats(arrays[0])
        if len(arrays) == 3:
            arrays[2] = arrays[2].astype(np.float32)
        return (
            tf.data.Dataset.from_tensor_slices(tuple(arrays))
            .shuffle(lengths[0], seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
    raise TypeError(
        f"`{name}` must be a tf.data.Dataset of (x, y) or (x, y, "
        f"sample_weight) batches (e.g. kg.data.load(...)) or a tuple (x, y) "
        f"or (x, y, sample_weight) of arrays; received {type(data).__name__}."
    )


def check_finite(data, name, why):
    """Raises if the dataset `data` repeats forever: `why` passes over it
    whole, and would never end (a `.repeat()`ed training set, as `fit`
    takes with `steps_per_epoch`)."""
    if int(data.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"`{name}` repeats forever, and {why} passes over it whole, so "
            f"it would never end. Pass a finite dataset: the training set "
            f"before `.repeat()`, or `{name}.take(steps_per_epoch)`."
        )


def check_batches_fit(data, spec, name):
    """Raises if `data`'s inputs cannot feed a net of `spec` (at fit start,
    not deep inside a growth step), or `data` yields no batch."""
    element = data.element_spec
    inputs = element[0] if isinstance(element, (tuple, list)) else element
    input_checks.check_inputs(spec, inputs, source=f"`{name}`")
    cardinality = int(data.cardinality())
    if cardinality == 0 or (
        cardinality == tf.data.UNKNOWN_CARDINALITY and not list(data.take(1))
    ):
        raise ValueError(
            f"`{name}` yields no batches: growth has nothing to measure on. "
            f"Pass the training data (e.g. the dataset given to fit), not an "
            f"empty or fully filtered one."
        )
