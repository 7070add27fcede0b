"""spec -> functional Keras graph, and what transfer needs to know about it.

Layer names are deterministic and hierarchical (`stem_conv`,
`stage2_block3_conv1`, `stage2_layer1_bn`, `block4_dw`, `classifier`): the
same spec gives the same names every time, and a grown spec keeps the names
of every layer it shares with its parent, which is how weights find their
way across a rebuild.
"""

import contextlib
import random

from keras_grow import gated_layers
from keras_grow import specs
from keras_grow.build import graph
from keras_grow.build.structure import Block
from keras_grow.build.structure import UnitGroup


def _lowered(spec):
    if not isinstance(spec, specs.NetSpec):
        raise TypeError(
            f"Expected a keras_grow spec (a `keras_grow.specs.NetSpec`); "
            f"received {spec!r} of type {type(spec).__name__}."
        )
    return spec.lowered()


@contextlib.contextmanager
def _python_random_seeded(seed):
    """Seeds Python's `random` inside (if `seed` is not None), restoring the
    outer state after. Keras' unseeded initialisers take their seeds from
    it when a layer is made, so a body built inside starts from weights
    that depend on `seed` only, whatever ran before in the process."""
    if seed is None:
        yield
        return
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def build_body(spec, seed=None, reserved=()):
    """Builds the functional `keras.Model` (named `body`) of a spec.

    Args:
        spec: a `keras_grow.specs` spec.
        seed: int or `None`. Seeds the layers' default initialisation (a
            growth with a seed is reproducible; a resumed run included).
        reserved: names of residual blocks of `spec` built switched off:
            their convs, Dense layers, BatchNormalizations, Adds and
            activations are `keras_grow.gated_layers`' subclasses, off,
            so the body computes `spec` without those blocks (each passes
            its shortcut on) until their layers are switched on
            (`reserved_layers`).

    Returns:
        A built functional `keras.Model` with input `images` and logits out.

    Raises:
        ValueError: for a reserved block `spec` does not have, or one that
            switched off would not pass its input on.
    """
    lowered = _lowered(spec)
    _, gated = _reserve_plan(spec, lowered, reserved)
    with _python_random_seeded(seed):
        return graph.build_graph(lowered, gated=gated)


def _block_members(lowered, block):
    if block.layers:
        return set(block.layers)
    return {n["name"] for n in lowered.nodes if n["name"].startswith(block.name + "_")}


def reserved_layers(spec, reserved):
    """frozenset of str: the layers that switch `spec`'s `reserved` blocks
    on and off (every layer of theirs that holds weights).

    Raises:
        ValueError: for a block `spec` does not have, or one whose branch
            switched off would not add 0 to a shortcut: a block without
            one, or with a layer holding weights that has no gated
            subclass (attention, a LayerNormalization).
    """
    by_block = _reserved_layers(spec, _lowered(spec), reserved)
    return frozenset().union(*by_block.values())


def reserved_layers_by_block(spec, reserved):
    """`{block: frozenset of layer names}`: `reserved_layers` block by
    block (what switches each block on and off)."""
    return _reserved_layers(spec, _lowered(spec), reserved)


def _reserved_layers(spec, lowered, reserved):
    """`reserved_layers_by_block` on `spec`'s graph, lowered once by the
    caller."""
    return _reserve_plan(spec, lowered, reserved)[0]


def _reserve_plan(spec, lowered, reserved):
    """(`{block: frozenset of its gated layers}`, `{gated layer: config
    of its gated class beyond the node's}`) of the `reserved` blocks of
    `spec`'s lowered graph: every member with a gated subclass is gated
    (its `Add` told which input is the shortcut it passes on while off).

    Raises:
        ValueError: for a block `spec` does not have, or one that switched
            off would not pass its input on.
    """
    by_name = {b.name: b for b in graph.graph_blocks(lowered)}
    nodes = {n["name"]: n for n in lowered.nodes}
    layers, configs = {}, {}
    for name in reserved:
        block = by_name.get(name)
        if block is None:
            raise ValueError(
                f"Reserved block {name!r} is not a block of {spec.notation}; its "
                f"blocks: {sorted(by_name)}."
            )
        members = _block_members(lowered, block)
        classes = {m: nodes[m]["class_name"] for m in members}
        weighted = {m for m in members if classes[m] not in graph.WEIGHTLESS}
        ungated = sorted(m for m in weighted if classes[m] not in gated_layers.GATED)
        shortcuts = {
            m: [
                i
                for i, source in enumerate(nodes[m]["inputs"])
                if source not in members
            ]
            for m in members
            if classes[m] == "Add"
        }
        why = None
        if not block.residual:
            why = "it has no shortcut"
        elif ungated:
            why = f"its layers {ungated} have no gated subclass"
        elif len(shortcuts) != 1 or any(len(i) != 1 for i in shortcuts.values()):
            why = "it has no single Add of one shortcut input and its branch"
        if why:
            raise ValueError(
                f"Block {name!r} cannot be reserved: switched off, it must pass "
                f"its input on, and {why}."
            )
        gated = {m for m in members if classes[m] in gated_layers.GATED}
        layers[name] = frozenset(gated)
        configs.update({m: {} for m in gated})
        configs.update({m: {"pass_index": i[0]} for m, i in shortcuts.items()})
    return layers, configs


def blocks(spec):
    """list of `Block`: the sub-modules depth growth adds, in graph order."""
    return graph.graph_blocks(_lowered(spec))


def new_blocks(old_spec, new_spec):
    """list of `Block`: those `new_spec` has and `old_spec` has not, in
    graph order (what a depth growth adds)."""
    old = {b.name for b in blocks(old_spec)}
    return [b for b in blocks(new_spec) if b.name not in old]


def unit_groups(spec):
    """list of `UnitGroup`: the channel sets width growth acts on."""
    return graph.graph_unit_groups(_lowered(spec))


__all__ = [
    "Block",
    "UnitGroup",
    "blocks",
    "build_body",
    "new_blocks",
    "reserved_layers",
    "reserved_layers_by_block",
    "unit_groups",
]
