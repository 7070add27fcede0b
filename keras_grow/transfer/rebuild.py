"""Moves the weights of a graph into the graph of a grown spec."""

import dataclasses

import numpy as np

from keras_grow import build
from keras_grow.transfer import blocks as block_inits
from keras_grow.transfer import weights as weight_io
from keras_grow.transfer import width


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """What a transfer did.

    Args:
        copied: tuple of str. Layers whose weights came from the old graph.
        fresh: tuple of str. Layers new in the grown graph.
        dropped: tuple of str. Old layers the grown graph does not have.
        new_blocks: tuple of str. Sub-modules the block initialiser set.
        widened: dict. `{group_name: (old_width, new_width)}`.
        block_copies: dict or `None`. `{block: source block}` copied (see
            `blocks.copy_blocks`); `None` when none was asked for.
    """

    copied: tuple
    fresh: tuple
    dropped: tuple
    new_blocks: tuple
    widened: dict
    block_copies: dict | None = None


def _groups_by_name(spec):
    return {group.name: group for group in build.unit_groups(spec)}


def apply_width_changes(weights, old_spec, new_shapes, morphisms, rng):
    """Applies `morphisms`, then widens every still-too-narrow group.

    A group the new graph has wider than `weights` after the morphisms gets
    the missing units as `AddUnits` with epsilon 0 (function preserved).

    Returns:
        (new weights, `{group: (old_width, new_width)}`).
    """
    groups = _groups_by_name(old_spec)
    before = {name: width.group_width(weights, g) for name, g in groups.items()}
    for op in morphisms:
        if getattr(op, "group", None) not in groups:
            raise ValueError(
                f"Morphism {op!r} names unknown group "
                f"{getattr(op, 'group', None)!r}; groups of "
                f"{old_spec.notation}: {sorted(groups)}."
            )
        weights = width.apply_morphism(weights, groups[op.group], op, rng)
    for name, group in groups.items():
        if group.first_layer not in new_shapes:
            continue
        missing = group.width(new_shapes) - width.group_width(weights, group)
        if missing > 0:
            weights = width.apply_morphism(
                weights, group, width.AddUnits(name, missing), rng
            )
    after = {name: width.group_width(weights, g) for name, g in groups.items()}
    widened = {
        name: (before[name], after[name])
        for name in groups
        if after[name] != before[name]
    }
    return weights, widened


def check_initializer(old_spec, new_spec, initializer, block_copies=None):
    """Raises unless `initializer` can start every block that growing
    `old_spec` into `new_spec` adds (see `blocks.block_problem`), but
    those `block_copies` starts as copies; reads the specs alone, so it
    runs before anything is built.

    Raises:
        ValueError: naming the initializer, each block and the fix.
    """
    copies = block_copies or {}
    added = build.new_blocks(old_spec, new_spec)
    block_inits.check_new_blocks(
        [b for b in added if b.name not in copies], initializer
    )


def transfer_weights(
    old_body,
    new_body,
    old_spec,
    new_spec,
    *,
    initializer="identity",
    initializer_scale=1.0,
    morphisms=(),
    values=None,
    block_copies=None,
    seed=None,
):
    """Fills `new_body` (built from `new_spec`) from `old_body`.

    1. Width morphisms act on the old weights (explicit ones first, then
       epsilon-0 new units for any group the new spec made wider).
    2. Every layer of the new graph whose name the old graph has gets the
       old weights; shapes must then agree.
    3. Every sub-module new in `new_spec` is set by `initializer`.
    4. Blocks named in `block_copies` become copies of other blocks.
    5. Layers named in `values` get exactly those arrays (e.g. the weights
       Firefly computed for a whole grown net).

    Args:
        old_body: the current functional graph.
        new_body: a graph freshly built from `new_spec`.
        old_spec, new_spec: the specs of the two graphs.
        initializer: str. A `BLOCK_INITIALIZERS` name for new sub-modules.
            Defaults to `"identity"`.
        initializer_scale: float. Scale of the random initialisers.
        morphisms: sequence of `SplitUnits` / `AddUnits`.
        values: dict or `None`. `{layer: {variable: array}}` with the new
            graph's shapes; every variable of a named layer must be given.
        block_copies: dict or `None`. `{block: source block or candidate
            sources}` of the new graph: the block starts as a copy of the
            source (as it is after steps 1-3), e.g. a new block stacked on
            the ones before it (see `blocks.copy_blocks`). A new block
            `initializer` cannot start must be one of them, and copied.
        seed: int or `None`. Seeds every random draw of the transfer.

    Returns:
        A `TransferReport`.

    Raises:
        ValueError: for an unknown initialiser or group, an initialiser
            that cannot start a new block (`check_initializer`), or a
            surviving layer whose shape changed without a morphism
            explaining it.
    """
    block_inits.get_block_initializer(initializer)
    check_initializer(old_spec, new_spec, initializer, block_copies)
    rng = np.random.default_rng(seed)
    weights = weight_io.read_weights(old_body)
    weights, widened = apply_width_changes(
        weights, old_spec, weight_io.weight_shapes(new_body), morphisms, rng
    )
    copied, fresh = [], []
    for layer in new_body.layers:
        if not layer.weights:
            continue
        if layer.name in weights:
            weight_io.assign_layer(layer, weights[layer.name])
            copied.append(layer.name)
        else:
            fresh.append(layer.name)
    new_names = {layer.name for layer in new_body.layers}
    dropped = [name for name in weights if name not in new_names]
    added, copied_blocks = start_new_blocks(
        new_body,
        old_spec,
        new_spec,
        initializer=initializer,
        initializer_scale=initializer_scale,
        block_copies=block_copies,
        values=values,
        rng=rng,
    )
    return TransferReport(
        copied=tuple(copied),
        fresh=tuple(fresh),
        dropped=tuple(dropped),
        new_blocks=added,
        widened=widened,
        block_copies=copied_blocks,
    )


def start_new_blocks(
    body,
    old_spec,
    new_spec,
    *,
    initializer,
    initializer_scale,
    block_copies,
    values,
    rng,
):
    """Starts the blocks `new_spec` adds to `old_spec` in `body` (a body
    of `new_spec`, or one holding them in its reserve): steps 3-5 of
    `transfer_weights`. Each new block's layers first get fresh values
    from their own initializers (`blocks.reset_block`), so a block built
    ahead of its growth starts as one built for it.

    Args:
        body: the graph holding the new blocks.
        old_spec, new_spec: the specs before and after the growth.
        initializer, initializer_scale, block_copies, values: as in
            `transfer_weights` (the initializer checked).
        rng: the growth's `np.random.Generator`.

    Returns:
        (tuple of the new blocks' names, the copies made or `None`).

    Raises:
        ValueError: for a new block neither started nor copied, or
            `values` that do not fit.
    """
    initialize = block_inits.get_block_initializer(initializer)
    added = build.new_blocks(old_spec, new_spec)
    # A block the initialiser cannot start must become a copy (checked
    # once the copies are made).
    unstartable = [b for b in added if block_inits.block_problem(initializer, b)]
    for block in added:
        block_inits.reset_block(body, block, rng)
    for block in added:
        if block not in unstartable:
            initialize(body, block, initializer_scale, rng)
    copied_blocks = None
    if block_copies is not None:
        listed = {b.name: b for b in build.blocks(new_spec)}
        copied_blocks = block_inits.copy_blocks(body, block_copies, listed)
    uncopied = [b for b in unstartable if b.name not in (copied_blocks or {})]
    block_inits.check_new_blocks(uncopied, initializer)
    for name, layer_values in (values or {}).items():
        _assign_given(body, name, layer_values)
    return tuple(b.name for b in added), copied_blocks


def _assign_given(body, name, layer_values):
    try:
        layer = body.get_layer(name)
    except ValueError:
        raise ValueError(
            f"`values` names layer {name!r}, which the grown graph does not have."
        ) from None
    keys = set(weight_io.layer_variables(layer))
    missing = sorted(keys - set(layer_values))
    if missing:
        raise ValueError(
            f"`values` for layer {name!r} lacks variables {missing}; give all "
            f"of {sorted(keys)}."
        )
    weight_io.assign_layer(layer, {k: np.asarray(v) for k, v in layer_values.items()})
