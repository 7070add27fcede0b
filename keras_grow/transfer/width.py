"""Width morphisms: split units into w +/- delta, add epsilon-scaled units.

A morphism is data (`SplitUnits`, `AddUnits`); `apply_morphism` draws
what it leaves to chance and hands each member variable to `unit_ops`.

Every morphism keeps the old units at their indices and appends the new
ones at the end of the unit axis, so anything indexed by unit (optimizer
slots included) carries over by copying the leading slice.
"""

import dataclasses

import numpy as np

from keras_grow.build.structure import BIAS
from keras_grow.build.structure import NORM
from keras_grow.build.structure import OUT
from keras_grow.build.structure import flat_view
from keras_grow.build.structure import unit_view
from keras_grow.transfer import unit_ops

# Variables of BatchNormalization, and the value a new unit starts with.
NEW_NORM_VALUES = {
    "gamma": 1.0,
    "beta": 0.0,
    "moving_mean": 0.0,
    "moving_variance": 1.0,
}


@dataclasses.dataclass(frozen=True)
class SplitUnits:
    """Split units of a group into two children each.

    Unit `i` keeps its index with incoming weights `w_i + delta` and a child
    appended at the end gets `w_i - delta`; both carry half of `i`'s
    outgoing weights, and the child copies `i`'s BatchNormalization
    parameters and moving statistics and its depthwise kernel. With
    `delta = 0` the network computes exactly the same function.

    Args:
        group: str. Name of a `keras_grow.build.UnitGroup`.
        units: sequence of int. Distinct indices of the units to split; the
            children are appended in this order.
        deltas: dict or `None`. `{producer_layer_name: array}` with shape
            `kernel.shape[:-1] + (len(units),)`: the perturbation of each
            split unit's incoming kernel. Missing producers get zero.
            Defaults to `None` (an exact copy).
        noise: float. For producers `deltas` does not cover: the norm of a
            random delta relative to the unit's incoming kernel, drawn at
            apply time (Net2Net-style symmetry breaking). Defaults to `0.0`.
    """

    group: str
    units: tuple
    deltas: dict | None = None
    noise: float = 0.0

    def __post_init__(self):
        units = tuple(int(u) for u in self.units)
        if len(set(units)) != len(units):
            raise ValueError(f"SplitUnits: `units` must be distinct; received {units}.")
        object.__setattr__(self, "units", units)
        if not (isinstance(self.noise, (int, float)) and self.noise >= 0):
            raise ValueError(
                f"SplitUnits: `noise` must be a number >= 0; received {self.noise!r}."
            )

    @property
    def added(self):
        return len(self.units)


@dataclasses.dataclass(frozen=True)
class AddUnits:
    """Append brand-new units to a group, their output scaled by epsilon.

    Args:
        group: str. Name of a `keras_grow.build.UnitGroup`.
        count: int. Number of new units, >= 1.
        incoming: dict or `None`. `{producer_or_depthwise_name: array}`, the
            new units' incoming kernels (`kernel.shape[:-1] + (count,)` for a
            producer, `kernel.shape[:-2] + (count, 1)` for a depthwise
            layer). Missing entries are drawn He-normal.
        outgoing: dict or `None`. `{consumer_name: array}`, the new units'
            outgoing kernels before scaling, with `count` on axis -2 (of
            the kernel's `unit_view`: `(positions, count, units out)` for
            a Dense reading a flattened map). Missing entries are drawn
            He-normal.
        epsilon: float. Scale of the outgoing weights; `0` keeps the
            network's function exactly. Defaults to `0.0`.
    """

    group: str
    count: int
    incoming: dict | None = None
    outgoing: dict | None = None
    epsilon: float = 0.0

    def __post_init__(self):
        if (
            isinstance(self.count, bool)
            or not isinstance(self.count, int)
            or (self.count < 1)
        ):
            raise ValueError(
                f"AddUnits: `count` must be an integer >= 1; received {self.count!r}."
            )

    @property
    def added(self):
        return self.count


def group_width(weights, group):
    """int. Current number of units of `group` in `weights`."""
    return group.width(weights)


def he_normal(rng, shape, fan_in):
    """He-normal draws: N(0, 2 / fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape)


def _given(mapping, name, shape, what):
    value = None if mapping is None else mapping.get(name)
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.shape != tuple(shape):
        raise ValueError(
            f"{what} for layer '{name}' must have shape {tuple(shape)}; "
            f"received {value.shape}."
        )
    return value


def unit_norms(array, axis):
    """np.ndarray. The norm of each unit's slice, units along `axis`."""
    moved = np.moveaxis(np.asarray(array, np.float64), axis, -1)
    return np.linalg.norm(moved.reshape(-1, moved.shape[-1]), axis=0)


def random_with_norms(rng, shape, axis, norms):
    """Gaussian directions, units along `axis`, rescaled to `norms`."""
    draw = rng.normal(size=shape)
    scale = np.asarray(norms) / np.maximum(unit_norms(draw, axis), 1e-12)
    bshape = [1] * len(shape)
    bshape[axis] = shape[axis]
    return (draw * scale.reshape(bshape)).astype(np.float32)


def _split(weights, group, op, rng):
    units = list(op.units)
    width = group_width(weights, group)
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        raise ValueError(
            f"SplitUnits: group '{group.name}' has {width} units; received "
            f"out-of-range indices {bad}."
        )
    for _, name, var, slot in group.slots(weights):
        layer = weights[name]
        value = unit_view(layer[var], slot, width)
        delta = None
        if slot.perturbed:
            parents = np.take(value, units, axis=slot.axis)
            delta = _split_delta(op, name, var, parents, slot.axis, rng)
        split = unit_ops.split(
            value, slot.axis, units, delta=delta, halve=slot.kind == OUT
        )
        layer[var] = flat_view(split.numpy(), slot)


def along(ndim, axis, units):
    """The index that picks `units` along `axis` of an `ndim`-d array."""
    index = [slice(None)] * ndim
    index[axis] = units
    return tuple(index)


def _split_delta(op, name, var, parents, axis, rng):
    """The delta of a perturbed variable: given (`op.deltas[name]`, for a
    producer's kernel), random (`op.noise`), or zero."""
    if var == "kernel":
        delta = _given(op.deltas, name, parents.shape, "SplitUnits delta")
        if delta is not None:
            return delta
    if op.noise:
        norms = op.noise * unit_norms(parents, axis)
        return random_with_norms(rng, parents.shape, axis, norms)
    return np.zeros(parents.shape)


def _add(weights, group, op, rng):
    width = group_width(weights, group)
    for _, name, var, slot in group.slots(weights):
        layer = weights[name]
        value = unit_view(layer[var], slot, width)
        if slot.kind in (NORM, BIAS):
            number = NEW_NORM_VALUES[var] if slot.kind == NORM else 0.0
            filled = unit_ops.fill(value, slot.axis, op.count, number)
            layer[var] = flat_view(filled.numpy(), slot)
            continue
        shape = list(value.shape)
        shape[slot.axis] = op.count
        new = _new_slice(op, slot, name, var, shape, value.shape, rng)
        scale = op.epsilon if slot.kind == OUT else None
        grown = unit_ops.append(value, slot.axis, new, scale=scale)
        layer[var] = flat_view(grown.numpy(), slot)


def _new_slice(op, slot, name, var, shape, full_shape, rng):
    """New units' incoming weights or their outgoing weights before the
    epsilon scale: given (a layer's `kernel` in `op.incoming` /
    `op.outgoing`), else He-normal over the slot's fan-in."""
    given = op.outgoing if slot.kind == OUT else op.incoming
    what = "AddUnits outgoing" if slot.kind == OUT else "AddUnits incoming"
    value = _given(given, name, shape, what) if var == "kernel" else None
    if value is None:
        value = he_normal(rng, shape, slot.fan_in_of(full_shape))
    return value


def apply_morphism(weights, group, op, rng):
    """Applies one width morphism; returns new weights, `weights` untouched.

    Args:
        weights: dict. `{layer: {variable: np.ndarray}}` (see
            `read_weights`).
        group: `UnitGroup`. The group `op.group` names.
        op: `SplitUnits` or `AddUnits`.
        rng: `np.random.Generator`. For weights the op does not give.

    Returns:
        The new weights dict; only the group's layers are new arrays.
    """
    if type(op) not in _APPLY:
        raise TypeError(f"Expected a SplitUnits or AddUnits morphism; received {op!r}.")
    result = dict(weights)
    for _, name in group.members():
        result[name] = dict(weights[name])
    _APPLY[type(op)](result, group, op, rng)
    return result


_APPLY = {SplitUnits: _split, AddUnits: _add}


def grown_param_count(shapes, groups, added):
    """Parameters (all variables) after adding units, without building.

    Args:
        shapes: dict. `{layer: {variable: shape}}` of the current graph
            (see `weight_shapes`).
        groups: sequence of `UnitGroup`.
        added: dict. `{group_name: units added}`; missing groups add none.

    Returns:
        int. What `count_params()` of the grown graph returns.
    """
    axes = {}  # (layer, variable) -> {axis: values added}
    for g in groups:
        extra = added.get(g.name, 0)
        width = g.width(shapes) if extra else None
        for _, name, var, slot in g.slots(shapes):
            shape = shapes[name][var]
            # An interleaved axis holds a unit at every position.
            positions = shape[slot.axis] // width if slot.interleaved and extra else 1
            axes.setdefault((name, var), {})[slot.axis] = extra * positions
    total = 0
    for layer, variables in shapes.items():
        for var, shape in variables.items():
            shape = list(shape)
            for axis, extra in axes.get((layer, var), {}).items():
                shape[axis] += extra
            total += int(np.prod(shape))
    return total
