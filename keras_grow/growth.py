"""The parts of one growth, made before the model changes.

`GrowableModel.grow` checks the successor spec, builds its graph, fills it
from the current one (`keras_grow.transfer`), carries the optimizer's state
(`keras_grow.optimizer_carry`), and only then swaps them in. Nothing here
changes the model: a growth that fails part way leaves it as it was.
"""

import dataclasses
import time

import keras
import numpy as np

from keras_grow import build
from keras_grow import in_place
from keras_grow import multi_worker
from keras_grow import specs
from keras_grow import step_functions
from keras_grow import transfer
from keras_grow.build.structure import SLOTS
from keras_grow.optimizer_carry import OptimizerCarryReport
from keras_grow.optimizer_carry import carry_optimizer
from keras_grow.transfer.weights import layer_variables

# What a growth keeps: the net's interface.
_KEPT = ("input_shape", "model_inputs", "num_classes", "input_mean", "input_std")


@dataclasses.dataclass(frozen=True)
class Undo:
    """The state before a growth: body, spec, optimizer, its log index, and
    Keras' step functions traced for them (with what they were compiled
    with), reused by a rollback instead of tracing them again; for a
    growth made in place, its `keras_grow.in_place.Resize`, whose values
    from before the growth a rollback writes back; the body's reserve
    (`keras_grow.depth_reserve`) and, for a growth into it, the values
    of the body's and optimizer's variables before it (`snapshot`)."""

    body: keras.Model
    spec: specs.NetSpec
    optimizer: object
    index: int
    step_functions: tuple = (None, None, None)
    compiled_as: tuple = ()
    resize: object = None
    reserve: object = None
    snapshot: list = None


@dataclasses.dataclass(frozen=True)
class GrownParts:
    """What a growth swaps in.

    Args:
        body: the new graph, filled.
        report: the `TransferReport`.
        optimizer: the optimizer rebuilt for `body` with its state carried,
            or `None` (not compiled or not built yet: it builds on `body`).
        carry: the optimizer carry's report, or `None`.
        timing: `{build, transfer, optimizer}` seconds.
        resize: the `keras_grow.in_place.Resize` that installs the growth
            in place (the model's optimizer kept, its slots resized), or
            `None`: `body` and `optimizer` replace the model's.
        reserve: the `keras_grow.depth_reserve.Reserve` of `body`, or
            `None`.
        snapshot: list of (variable, value before the growth), for a
            growth into the model's reserve (`body` is the model's own,
            its new blocks started and their slots zeroed; switching them
            on installs it); `None` otherwise.
    """

    body: keras.Model
    report: transfer.TransferReport
    optimizer: object
    carry: object
    timing: dict
    resize: object = None
    reserve: object = None
    snapshot: list = None

    @property
    def in_place(self):
        """bool. Whether the growth keeps the model's variables (and so
        its traced steps)."""
        return self.resize is not None or self.snapshot is not None


def undo_point(model, parts, index):
    """The `Undo` of the growth `parts` make, taken before they are
    swapped in; `index` is the growth's place in the log. The optimizer is
    kept only where the growth replaces it (an unbuilt one is not, nor one
    resized in place)."""
    return Undo(
        body=model.body,
        spec=model.spec,
        optimizer=model.optimizer if parts.optimizer is not None else None,
        index=index,
        step_functions=step_functions.current(model),
        compiled_as=step_functions.compiled_as(model),
        resize=parts.resize,
        reserve=model.reserve,
        snapshot=parts.snapshot,
    )


def check_successor(spec, new_spec):
    """Raises unless `new_spec` can grow out of `spec`: the same kind and
    interface (input shape, classes, input normalisation).

    Raises:
        TypeError: for a spec of another kind.
        ValueError: naming the field that differs.
    """
    if type(new_spec) is not type(spec):
        raise TypeError(
            f"`new_spec` must be a {type(spec).__name__} like the "
            f"current spec ({spec.notation}); received {new_spec!r}."
        )
    for field in _KEPT:
        old, new = getattr(spec, field), getattr(new_spec, field)
        if old != new:
            raise ValueError(
                f"Growth keeps `{field}`: the model has {old!r}, "
                f"`new_spec` has {new!r}."
            )


def _block_variables(body, blocks):
    """The trainable variables of `blocks`' layers in `body`."""
    return [
        variable
        for block in blocks
        for name in transfer.block_layer_names(body, block)
        for variable in body.get_layer(name).trainable_weights
    ]


def grown_parts(model, new_spec, transfer_options, reserve=None):
    """Builds the graph of `new_spec` (with `reserve`'s blocks, off),
    fills it from `model`'s and carries its optimizer, in the model's
    strategy scope.

    Args:
        model: the `GrowableModel`, unchanged.
        new_spec: the grown spec (checked).
        transfer_options: `keras_grow.transfer.transfer_weights`'s keyword
            arguments (`seed` also seeds the new graph's initialisation).
        reserve: a `keras_grow.depth_reserve.Reserve` of `new_spec`, or
            `None`.

    Returns:
        `GrownParts`.
    """
    start = time.perf_counter()
    strategy = model.distribute_strategy
    with strategy.scope():
        body = in_place.resizable_body(
            new_spec, seed=transfer_options["seed"], reserve=reserve
        )
        built = time.perf_counter()
        report = transfer.transfer_weights(
            model.net_layers(),
            body,
            model.spec,
            new_spec,
            **transfer_options,
        )
        # Under several workers, the chief's new units for everyone.
        multi_worker.assign_from_chief(body.weights, strategy)
        transferred = time.perf_counter()
        optimizer, carry = getattr(model, "optimizer", None), None
        resize = in_place.plan(model, body)
        if optimizer is None or not optimizer.built:
            optimizer = None  # not compiled or not trained: it builds on `body`
        elif resize is not None:
            optimizer, carry = None, resize.carry_report(optimizer)  # kept, resized
        else:
            optimizer, carry = carry_optimizer(optimizer, body.trainable_variables)
            in_place.interleave_slots(
                optimizer, _interleaved_moves(model.spec, body, report.widened)
            )
            in_place.make_slots_resizable(optimizer, body.trainable_variables)
            # A new block held in the old reserve starts with no momentum.
            added = build.new_blocks(model.spec, new_spec)
            in_place.zero_slots(optimizer, _block_variables(body, added))
    timing = {
        "build": built - start,
        "transfer": transferred - built,
        "optimizer": time.perf_counter() - transferred,
    }
    return GrownParts(body, report, optimizer, carry, timing, resize, reserve)


def _interleaved_moves(spec, body, widened):
    """(variable, slot, old width, new width) of every grown variable whose
    units are interleaved with positions or gates
    (`in_place.interleave_slots`)."""
    return [
        (variables[var], slot, *widened[group.name])
        for group in build.unit_groups(spec)
        if group.name in widened and group.interleaved
        for role, name in group.members()
        for variables in [layer_variables(body.get_layer(name))]
        for var, slot in SLOTS[role].items()
        if slot.interleaved and var in variables
    ]


def reserve_parts(model, new_spec, options):
    """Starts the blocks `new_spec` adds where the model's reserve holds
    them (`keras_grow.depth_reserve.fits`): their weights as a body built
    for `new_spec` would have them, their optimizer slots zeroed. Only
    switched-off layers change; switching them on installs the growth.

    Args:
        model: the `GrowableModel`; its reserve fits `new_spec`.
        new_spec: the grown (or shrunk) spec.
        options: `keras_grow.transfer.transfer_weights`'s keyword
            arguments, without `morphisms`.

    Returns:
        `GrownParts` with the model's body and a `snapshot` for a rollback.
    """
    start = time.perf_counter()
    body, strategy = model.body, model.distribute_strategy
    optimizer = getattr(model, "optimizer", None)
    built = optimizer is not None and optimizer.built
    state = list(optimizer.variables) if built else []
    # A rollback restores every value (and the optimizer's step count).
    snapshot = [(v, np.array(v.numpy())) for v in list(body.weights) + state]
    snapped = time.perf_counter()
    with strategy.scope():
        added, copies = transfer.start_new_blocks(
            body,
            model.spec,
            new_spec,
            initializer=options["initializer"],
            initializer_scale=options["initializer_scale"],
            block_copies=options["block_copies"],
            values=options["values"],
            rng=np.random.default_rng(options["seed"]),
        )
        new_blocks = build.new_blocks(model.spec, new_spec)
        variables = _block_variables(body, new_blocks)
        multi_worker.assign_from_chief(variables, strategy)
    started = time.perf_counter()
    carry = None
    if state:
        zeroed = in_place.zero_slots(optimizer, variables)
        kept = tuple(v.path for v in state if v.path not in zeroed)
        carry = OptimizerCarryReport(copied=kept, padded=(), fresh=tuple(zeroed))
    report = transfer.TransferReport(
        copied=(),
        fresh=(),
        dropped=(),
        new_blocks=added,
        widened={},
        block_copies=copies,
    )
    timing = {
        "build": 0.0,
        "snapshot": snapped - start,
        "transfer": started - snapped,
        "optimizer": time.perf_counter() - started,
    }
    return GrownParts(
        body, report, None, carry, timing, reserve=model.reserve, snapshot=snapshot
    )
