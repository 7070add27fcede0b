"""Width growth in place: the grown values written into the variables that
Keras' traced step functions read, so that nothing is traced again.

A growth builds the grown body, fills it and carries the optimizer
(`keras_grow.growth`). Where the grown body has the same variables as the
current one and only their unit axes changed size (a width growth), those
values are instead assigned to the current variables, whose unit axes
were left unknown to the traced functions (`make_resizable`), and the new
body's variables share them. The train, test and predict functions
traced before the growth then compute the grown net exactly as freshly
traced ones would, and are not traced again (with `jit_compile`, XLA
still compiles them once for each new shape).

Unit groups that hold a convolution, attention, a Layer or Group
normalisation, or a layer of a depth reserve (`keras_grow.gated_layers`)
keep fixed shapes, so growing one rebuilds and retraces as
before: TensorFlow's oneDNN convolutions need known channel counts (a
ResNet step took twice as long without them, docs/no_retrace.md); Keras'
TensorFlow `einsum` picks a reshape from the shape Keras records for a
kernel, which stays the built one; Layer and Group normalisation reshape
their parameters to the input's static shape; a gated layer's `tf.cond`
needs its variables' shapes for the zero gradients of its switched-off
branch. Dense layers, BatchNormalization and embeddings grow in place at
no measurable cost per step. Saved and exported models are ordinary:
their files hold the values, not the unknown axes.
"""

import collections
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_grow import build
from keras_grow import depth_reserve
from keras_grow import gated_layers
from keras_grow import keras_compat
from keras_grow.build.structure import flat_view
from keras_grow.build.structure import unit_view
from keras_grow.optimizer_carry import OptimizerCarryReport
from keras_grow.optimizer_carry import pad_to
from keras_grow.transfer.weights import layer_variables

# Layers whose unit groups keep fixed shapes (see the module docstring).
FIXED_SHAPE_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.EinsumDense,
    keras.layers.MultiHeadAttention,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)


def _default_strategy():
    """Whether variables made now are plain ones (no distribution
    strategy mirrors them; mirrored variables keep fixed shapes)."""
    return not tf.distribute.has_strategy()


def growing_axes(body, spec):
    """`{(layer, variable key): axes}` of the variables of `body` whose unit
    axes may change size in place: every unit group of `spec` that a width
    entry sets (the others never change size) without a
    `FIXED_SHAPE_LAYERS` member."""
    layers = {layer.name: layer for layer in body.layers}
    axes = collections.defaultdict(set)
    for group in build.unit_groups(spec):
        if group.width_index is None:
            continue
        members = [layers.get(name) for _, name in group.members()]
        # A gated layer's `tf.cond` needs its variables' shapes to give
        # the switched-off branch its zero gradients.
        fixed = (*FIXED_SHAPE_LAYERS, gated_layers.Gated)
        if any(isinstance(layer, fixed) for layer in members):
            continue
        # Units interleaved with positions or gates move on growth; an
        # optimizer slot padded at the end of the axis would misplace
        # their state.
        if group.interleaved:
            continue
        for (name, key), axis in group.unit_axes().items():
            axes[(name, key)].add(axis)
    return axes


def resizable_body(spec, seed=None, reserve=None):
    """A new body of `spec` (with `reserve`'s blocks, switched off:
    `keras_grow.depth_reserve`), made resizable."""
    body = depth_reserve.build_body(spec, reserve, seed)
    make_resizable(body, spec if reserve is None else reserve.spec)
    return body


def make_resizable(body, spec):
    """Leaves the unit axes of `body`'s growable variables (`growing_axes`)
    unknown to traced functions. Call it on a new body, before an
    optimizer is built on its variables or a step traced with them."""
    if not _default_strategy():
        return
    axes = growing_axes(body, spec)
    for layer in body.layers:
        for key, variable in layer_variables(layer).items():
            found = axes.get((layer.name, key))
            if found:
                rank = len(variable.shape)
                keras_compat.make_axes_unknown(variable, {a % rank for a in found})


def slot_owners(optimizer, variables):
    """[(slot, owner)]: each slot of `optimizer` (its variables of rank
    above 0: a momentum, Adam's moments) and the variable among
    `variables` it belongs to, or `None` where none is found."""
    # Keras names a slot `<variable path with "_" for "/">_<slot name>`;
    # the longest matching path wins (`dense_1_kernel_` over `dense_1_`).
    prefixes = sorted(
        ((v.path.replace("/", "_") + "_", v) for v in variables),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
    return [
        (
            slot,
            next(
                (
                    owner
                    for prefix, owner in prefixes
                    if slot.name.startswith(prefix)
                    and tuple(slot.shape) == tuple(owner.shape)
                ),
                None,
            ),
        )
        for slot in optimizer.variables
        if len(slot.shape)
    ]


def zero_slots(optimizer, variables):
    """Zeroes the slots of `optimizer` that belong to `variables` (new
    weights start with no momentum, as in a new optimizer).

    Returns:
        list of str: the zeroed slots' paths.
    """
    wanted = {id(v) for v in variables}
    zeroed = []
    for slot, owner in slot_owners(optimizer, variables):
        if owner is not None and id(owner) in wanted:
            slot.assign(np.zeros(tuple(slot.shape), slot.dtype))
            zeroed.append(slot.path)
    return zeroed


def interleave_slots(optimizer, moves):
    """Moves the carried optimizer state of variables whose units are
    interleaved with positions or gates (a Dense reading a flattened map,
    an RNN's gates) to where their units went.

    A carried slot holds the old state in its leading rows
    (`optimizer_carry.pad_to`); a unit `u` of `C` sat at rows `p * C + u`
    and sits at `p * C' + u` after the growth, so the rows are spread out
    by position (`build.structure.unit_view`), new units' rows zero.

    Args:
        optimizer: the carried optimizer, built on the grown variables.
        moves: iterable of (variable, `Slot`, old width, new width): the
            grown variables, the slot that says where their units are, and
            their units before and after.
    """
    for variable, slot, old, new in moves:
        for state, owner in slot_owners(optimizer, [variable]):
            if owner is None:
                continue
            value = np.asarray(state.numpy())
            rows = value.shape[slot.axis] // new * old
            kept = unit_view(np.take(value, range(rows), axis=slot.axis), slot, old)
            pad = [(0, 0)] * kept.ndim
            pad[slot.axis] = (0, new - old)
            state.assign(flat_view(np.pad(kept, pad), slot))


def make_slots_resizable(optimizer, variables):
    """Gives each slot of `optimizer` the unknown axes of the model
    variable it belongs to, among `variables`. Call it right after the
    optimizer is built, before a step runs."""
    if not _default_strategy():
        return
    for slot, owner in slot_owners(optimizer, variables):
        if owner is not None:
            keras_compat.make_axes_unknown(slot, keras_compat.unknown_axes(owner))


def build_optimizer(model):
    """Builds `model`'s compiled optimizer on its trainable variables, as
    its first train step would, and makes its slots resizable: Keras
    builds it inside that step's trace, too late to change a slot's
    backing."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.built:
        return
    with model.distribute_strategy.scope():
        optimizer.build(model.trainable_variables)
    make_slots_resizable(optimizer, model.trainable_variables)


@dataclasses.dataclass(frozen=True)
class Resize:
    """A growth done in place: which variable takes which value.

    Args:
        body: list of (current body variable, grown body variable): the
            grown one's value goes into the current one's backing, which
            the grown one then shares.
        slots: list of (optimizer slot, its value for the grown variable):
            the slot as it was, zero-padded where its variable grew (as
            `keras_grow.optimizer_carry` carries slots into a new
            optimizer).
        previous: list of (variable, value before the growth): what a
            rollback writes back.
    """

    body: list
    slots: list
    previous: list

    def carry_report(self, optimizer):
        """The `OptimizerCarryReport` of the slots: padded where their
        variable grew, every other optimizer variable copied."""
        padded = {id(s) for s, v in self.slots if tuple(s.shape) != v.shape}
        paths = [(v.path, id(v) in padded) for v in optimizer.variables]
        return OptimizerCarryReport(
            copied=tuple(p for p, grew in paths if not grew),
            padded=tuple(p for p, grew in paths if grew),
            fresh=(),
        )


def fits(current, shape):
    """Whether a value of `shape` can be written into `current`: the same
    rank, sizes differing only along `current`'s unknown axes."""
    old = tuple(current.shape)
    if len(old) != len(shape):
        return False
    free = keras_compat.unknown_axes(current)
    return all(a == b or axis in free for axis, (a, b) in enumerate(zip(old, shape)))


def _body_pairs(current, grown):
    """(current, grown) body variables paired in order, or `None` unless
    they pair one to one by name and every grown value fits."""
    pairs = list(zip(current, grown))
    if len(current) != len(grown) or any(
        old.name != new.name or not fits(old, tuple(new.shape)) for old, new in pairs
    ):
        return None
    return pairs


def _slot_values(optimizer, body):
    """[(slot, value)] for every slot of `optimizer`, zero-padded to the
    shape its variable grows to in the `body` pairs; `None` if a slot's
    variable is not found or its new value does not fit."""
    grown = {id(old): tuple(new.shape) for old, new in body}
    values = []
    for slot, owner in slot_owners(optimizer, [old for old, _ in body]):
        shape = grown.get(id(owner))
        if shape is None or not fits(slot, shape):
            return None
        values.append((slot, pad_to(np.asarray(slot.numpy()), shape)))
    return values


def _layer_graph(body):
    return [(layer.name, type(layer)) for layer in body.layers]


def plan(model, body):
    """The `Resize` that makes `model`'s body the grown `body` in place, or
    `None` where the growth must rebuild: another layer graph (depth
    growth), a size change along a fixed axis (a convolution's channels,
    attention heads), an optimizer slot of unknown owner, a distribution
    strategy."""
    if not _default_strategy() or _layer_graph(model.body) != _layer_graph(body):
        return None
    # Both bodies are built from specs of the same graph: the same
    # variables in the same order (a seed generator's path differs).
    pairs = _body_pairs(model.body.variables, body.variables)
    if pairs is None:
        return None
    slots, state = [], []
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        slots, state = _slot_values(optimizer, pairs), list(optimizer.variables)
        if slots is None:
            return None
    # A rollback restores the optimizer as it was (its step count too).
    previous = [(v, np.array(v.numpy())) for v in [old for old, _ in pairs] + state]
    return Resize(body=pairs, slots=slots, previous=previous)


def apply(resize):
    """Writes the grown values into the current variables; the grown
    body's variables then read and write those."""
    for old, new in resize.body:
        keras_compat.assign_resized(old, new.value)
        keras_compat.share_backing(new, old)
    for slot, value in resize.slots:
        keras_compat.assign_resized(slot, value)


def undo(resize):
    """Writes back the values and shapes from before the growth."""
    for variable, value in resize.previous:
        keras_compat.assign_resized(variable, value)
