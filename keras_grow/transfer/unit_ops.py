"""What a width morphism does to one variable along its unit axis.

The one place the math of splitting and adding units is written: a growth
(`transfer.width`, numpy weights in, numpy out) and Firefly's gated
over-grown net (`descent.neighbourhood`, differentiable in its directions
and gates) both call these. Every operation keeps the old units at their
indices and appends the new ones at the end of the axis.

Arithmetic runs in the wider of the variable's and the given arrays'
dtypes and is cast back to the variable's dtype once, at the end, as
numpy's promotion would.
"""

import numpy as np
import tensorflow as tf


def _tensor(value):
    return value if tf.is_tensor(value) else tf.convert_to_tensor(np.asarray(value))


def _working_dtype(*values):
    """The dtype numpy would compute `values` in."""
    return np.result_type(*(v.dtype.as_numpy_dtype for v in values))


def _along(scale, axis, rank):
    """`scale` (one number per unit) shaped to broadcast along `axis`; a
    Python number stays one (it takes the other operand's dtype)."""
    if isinstance(scale, (int, float)):
        return scale
    scale = _tensor(scale)
    if scale.shape.rank == 0:
        return scale
    shape = [1] * rank
    shape[axis] = -1
    return tf.reshape(scale, shape)


def size(value, axis):
    """`value`'s size along `axis`: an int where it is known, else (a
    unit axis a trace leaves unknown, `keras_grow.in_place`) a scalar
    tensor."""
    known = value.shape[axis]
    return known if known is not None else tf.shape(value)[axis]


def _put(value, axis, units, parents):
    """`value` with `parents` in place of the units at `units` (`None`:
    every unit)."""
    if units is None or list(units) == list(range(value.shape[axis])):
        return parents
    rank = value.shape.rank
    order = [axis] + [a for a in range(rank) if a != axis]
    inverse = np.argsort(order).tolist()
    moved = tf.tensor_scatter_nd_update(
        tf.transpose(value, order),
        tf.constant([[u] for u in units], tf.int64),
        tf.transpose(parents, order),
    )
    return tf.transpose(moved, inverse)


def split(value, axis, units, delta=None, scale=None, halve=False):
    """Splits `units` of `value`: each parent keeps its index, a child is
    appended, in the order of `units`.

    - With `delta` (a producer's incoming kernel), the parent becomes
      `w + delta` and the child `w - delta`.
    - With `halve` (a consumer's kernel), parent and child each get half of
      the parent's weights, so together they send what it sent.
    - Otherwise (norms, biases, depthwise kernels) the child is a copy.

    Args:
        value: array or tensor holding units along `axis`.
        axis: int. The unit axis (negative counts from the end).
        units: sequence of int, distinct indices of the units to split; or
            `None` for every unit along `axis`, however many (an axis of
            unknown size in a trace).
        delta: array, tensor or `None`. The split's perturbation, shaped as
            the split units' slice of `value`.
        scale: float, array of one float per split unit, or `None`. Scales
            `delta` (Firefly's gates).
        halve: bool. Whether the units' weights are halved. Defaults to
            `False`.

    Returns:
        A tensor of `value`'s dtype, `len(units)` longer along `axis`.

    Raises:
        ValueError: for repeated units or indices beyond the axis.
    """
    value = _tensor(value)
    rank = value.shape.rank
    axis = axis % rank
    if units is not None:
        units = [int(u) for u in units]
        if not units:
            return value
        width = value.shape[axis]
        if len(set(units)) != len(units) or not all(0 <= u < width for u in units):
            raise ValueError(
                f"Units to split must be distinct indices below {width}; "
                f"received {units}."
            )
    extra = [] if delta is None else [_tensor(delta)]
    work = _working_dtype(value, *extra)
    parents = value if units is None else tf.gather(value, units, axis=axis)
    parents = tf.cast(parents, work)
    if halve:
        parents = parents * 0.5
    child = parents
    if delta is not None:
        delta = tf.cast(extra[0], work)
        if scale is not None:
            scale = _along(scale, axis, rank)
            scale = tf.cast(scale, work) if tf.is_tensor(scale) else scale
        # The step is formed once per side, so that each side's gradient
        # reaches the gates on its own path (as Firefly's scores sum them).
        step = (lambda: delta) if scale is None else (lambda: scale * delta)
        parents, child = parents + step(), parents - step()
    kept = _put(value, axis, units, tf.cast(parents, value.dtype))
    return tf.concat([kept, tf.cast(child, value.dtype)], axis=axis)


def append(value, axis, new, scale=None):
    """Appends new units' slices `new` along `axis`, times `scale`.

    Args:
        value: array or tensor holding units along `axis`.
        axis: int. The unit axis.
        new: array or tensor. The new units' slice (`value`'s shape but for
            `axis`).
        scale: float, array of one float per new unit, or `None`.

    Returns:
        A tensor of `value`'s dtype.
    """
    value, new = _tensor(value), _tensor(new)
    axis = axis % value.shape.rank
    if scale is not None:
        scale = _along(scale, axis, value.shape.rank)
        if tf.is_tensor(scale):
            work = _working_dtype(new, scale)
            scale, new = tf.cast(scale, work), tf.cast(new, work)
        new = scale * new
    return tf.concat([value, tf.cast(new, value.dtype)], axis=axis)


def fill(value, axis, count, number):
    """Appends `count` units that hold `number` along `axis` (a new unit's
    BatchNormalization statistics, its zero bias)."""
    value = _tensor(value)
    rank = value.shape.rank
    shape = [count if a == axis % rank else size(value, a) for a in range(rank)]
    return append(value, axis, tf.fill(shape, tf.constant(number, value.dtype)))
