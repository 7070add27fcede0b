"""Width morphisms: split units into w +/- delta, add epsilon-scaled units.

A morphism is data (`SplitUnits`, `AddUnits`); `apply_morphism` draws
what it leaves to chance and hands each member variable to `unit_ops`.

Every morphism keeps the old units at their indices and appends the new
ones at the end of the unit axis, so anything indexed by unit (optimizer
slots included) carries over by copying the leading slice.
"""

import dataclasses

import numpy as np

from keras_grow.build.structure import UNIT_AXES
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
            outgoing kernels before scaling, with `count` on axis -2.
            Missing entries are drawn He-normal.
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


def _random_delta(rng, parents, noise):
    """Random directions, each `noise` times its parent kernel's norm."""
    return random_with_norms(rng, parents.shape, -1, noise * unit_norms(parents, -1))


def _unit_slots(layer, role):
    """(variable, unit axis) of `layer`'s variables that hold units."""
    return [(var, axis) for var, axis in UNIT_AXES[role].items() if var in layer]


def _split(weights, group, op, rng):
    units = list(op.units)
    width = group_width(weights, group)
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        raise ValueError(
            f"SplitUnits: group '{group.name}' has {width} units; received "
            f"out-of-range indices {bad}."
        )
    for role, name in group.members():
        layer = weights[name]
        for var, axis in _unit_slots(layer, role):
            delta = None
            if role == "producers" and var == "kernel":
                parents = np.take(layer[var], units, axis=axis)
                delta = _split_delta(op, name, parents, rng)
            layer[var] = unit_ops.split(
                layer[var], axis, units, delta=delta, halve=role == "consumers"
            ).numpy()


def along(ndim, axis, units):
    """The index that picks `units` along `axis` of an `ndim`-d array."""
    index = [slice(None)] * ndim
    index[axis] = units
    return tuple(index)


def _split_delta(op, name, parents, rng):
    """The producer's delta: given, random (`op.noise`), or zero."""
    delta = _given(op.deltas, name, parents.shape, "SplitUnits delta")
    if delta is not None:
        return delta
    if op.noise:
        return _random_delta(rng, parents, op.noise)
    return np.zeros(parents.shape)


def _add(weights, group, op, rng):
    for role, name in group.members():
        layer = weights[name]
        kernel_shape = layer["kernel"].shape if "kernel" in layer else None
        for var, axis in _unit_slots(layer, role):
            value = layer[var]
            if role == "norms" or var == "bias":
                number = NEW_NORM_VALUES[var] if role == "norms" else 0.0
                layer[var] = unit_ops.fill(value, axis, op.count, number).numpy()
                continue
            shape = list(value.shape)
            shape[axis] = op.count
            new = _new_kernel_slice(op, role, name, shape, kernel_shape, rng)
            scale = op.epsilon if role == "consumers" else None
            layer[var] = unit_ops.append(value, axis, new, scale=scale).numpy()


def _new_kernel_slice(op, role, name, shape, kernel_shape, rng):
    """New units' incoming kernels (producers, depthwise) or their
    outgoing kernels before the epsilon scale (consumers): given, else
    He-normal."""
    given = op.outgoing if role == "consumers" else op.incoming
    what = "AddUnits outgoing" if role == "consumers" else "AddUnits incoming"
    value = _given(given, name, shape, what)
    if value is None:
        # The layer's fan-in: a depthwise kernel reads one channel.
        spatial = kernel_shape[:-2] if role == "passthrough" else kernel_shape[:-1]
        value = he_normal(rng, shape, int(np.prod(spatial)))
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
    axes = {}  # (layer, variable) -> {axis: units added}
    for g in groups:
        extra = added.get(g.name, 0)
        for key, axis in g.unit_axes().items():
            axes.setdefault(key, {})[axis] = extra
    total = 0
    for layer, variables in shapes.items():
        for var, shape in variables.items():
            shape = list(shape)
            for axis, extra in axes.get((layer, var), {}).items():
                shape[axis] += extra
            total += int(np.prod(shape))
    return total
