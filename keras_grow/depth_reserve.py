"""Blocks built ahead of depth growth: deepening without a retrace.

A `GrowableModel` may hold a body deeper than its spec: the spec's blocks,
and after each chain's last one, reserved blocks built from
`keras_grow.gated_layers`, switched off, which compute nothing and pass
their input on. A depth growth that the reserve holds (`fits`) starts the
new blocks' weights where they already are and switches them on; removing
a block switches it off. The traced train and test steps read the same
variables before and after, so nothing is traced again. A growth the
reserve does not hold rebuilds the body, with a reserve twice as deep
(`for_rebuild`): a run of N growths rebuilds O(log N) times.

The reserve is what the model's variables hold, not what it computes:
parameter counts (`gated_layers.count_params` of `net_layers`), saved
files and exports are of the spec's net alone.
"""

import dataclasses

from keras_grow import build
from keras_grow import specs


@dataclasses.dataclass(frozen=True)
class Reserve:
    """A body's reserve.

    Args:
        spec: the spec the body is built from: the model's spec with every
            chain deepened to its capacity.
        blocks: tuple of str. The blocks built gated (switchable): those
            `spec` had beyond the model's spec when the body was built.
        layers: dict. `{block: frozenset of layer names}`: the layers
            that switch each block on and off.
    """

    spec: specs.NetSpec
    blocks: tuple
    layers: dict

    @property
    def depths(self):
        """tuple of int. Each chain's capacity, in blocks."""
        return tuple(self.spec.depths)

    def to_dict(self):
        """JSON data: `from_dict` makes the same reserve again."""
        return {"spec": self.spec.to_dict(), "blocks": list(self.blocks)}

    @classmethod
    def from_dict(cls, data):
        return make(specs.from_dict(data["spec"]), data["blocks"])


def make(capacity, blocks):
    """The `Reserve` of a body built from spec `capacity` with `blocks`
    gated.

    Raises:
        ValueError: for a block that switched off would not pass its
            input on (`build.reserved_layers`).
    """
    blocks = tuple(blocks)
    return Reserve(capacity, blocks, build.reserved_layers_by_block(capacity, blocks))


def can_reserve(spec):
    """bool. Whether `spec` is of a kind whose chains deepen by residual
    blocks (a residual staged net, a user graph's blocks)."""
    staged = isinstance(spec, specs.StagedNetSpec) and spec.residual
    graph = isinstance(spec, specs.GraphSpec) and spec.depth == "blocks"
    return staged or graph


def plan(spec, depths):
    """The `Reserve` that holds `spec` in a body whose chains are `depths`
    blocks deep, or `None` where `spec` cannot hold one (its kind, or a
    block that would not pass its input on while off).

    Args:
        spec: the model's spec.
        depths: sequence of int. Each chain's capacity, at least its depth.

    Raises:
        ValueError: for a capacity below a chain's depth.
    """
    if not can_reserve(spec):
        return None
    depths = tuple(int(d) for d in depths)
    if len(depths) != len(spec.depths) or any(
        c < d for c, d in zip(depths, spec.depths)
    ):
        raise ValueError(
            f"A reserve needs a capacity per chain at least as deep as "
            f"{spec.notation}'s {tuple(spec.depths)}; received {depths}."
        )
    if depths == tuple(spec.depths):
        return None
    return _holding(spec, depths)


def _holding(spec, depths, gated=()):
    """The reserve of `spec` deepened to `depths`, gating every block
    beyond `spec` and those of `gated` (in graph order), or `None` where
    one would not pass its input on while off."""
    capacity = spec.with_depths(depths)
    gated = set(gated) | {b.name for b in build.new_blocks(spec, capacity)}
    try:
        return make(
            capacity, [b.name for b in build.blocks(capacity) if b.name in gated]
        )
    except ValueError:
        return None


def fits(reserve, spec):
    """bool. Whether the body of `reserve` computes `spec` by switching
    reserved blocks on or off alone: `spec` is the capacity's spec with
    fewer blocks at the end of its chains, and every block it lacks is
    gated."""
    if reserve is None or type(spec) is not type(reserve.spec):
        return False
    depths = tuple(spec.depths)
    if len(depths) != len(reserve.depths) or any(
        d > c for d, c in zip(depths, reserve.depths)
    ):
        return False
    if spec.with_depths(reserve.depths) != reserve.spec:
        return False
    missing = _block_names(reserve.spec) - _block_names(spec)
    return missing <= set(reserve.blocks)


def for_rebuild(reserve, spec):
    """The reserve a body rebuilt for `spec` gets, when the model has
    `reserve` (`None`: none): each chain as deep as before, or, where
    `spec` is deeper than a chain's capacity, every chain twice as deep as
    `spec`'s (geometric headroom). The blocks gated before stay gated (so
    a width growth keeps the layer classes, and can be made in place),
    and so is every block beyond `spec`."""
    if reserve is None or not can_reserve(spec):
        return None
    if len(spec.depths) != len(reserve.depths):
        return None
    depths = tuple(spec.depths)
    capacity = reserve.depths
    if any(d > c for d, c in zip(depths, capacity)):
        capacity = tuple(max(c, 2 * d) for d, c in zip(depths, capacity))
    return _holding(spec, capacity, reserve.blocks)


def _block_names(spec):
    return {b.name for b in build.blocks(spec)}


def build_body(spec, reserve, seed=None):
    """The body of `spec`: with `reserve`, its capacity's, the blocks
    `spec` lacks switched off."""
    if reserve is None:
        return build.build_body(spec, seed)
    body = build.build_body(reserve.spec, seed, reserved=reserve.blocks)
    switch(body, reserve, spec)
    return body


def _changed_blocks(reserve, spec, previous):
    """{block: on} of the gated blocks whose state `spec` sets (those it
    changes from `previous`'s; every one without `previous`)."""
    active = _block_names(spec)
    before = None if previous is None else _block_names(previous)
    return {
        block: block in active
        for block in reserve.blocks
        if before is None or (block in active) != (block in before)
    }


def switch(body, reserve, spec, previous=None):
    """Switches each gated block of `body` on if `spec` has it, off if not
    (with `previous`, the spec the switches are set for now, only the
    blocks that differ: a growth's)."""
    for block, on in _changed_blocks(reserve, spec, previous).items():
        for name in sorted(reserve.layers[block]):
            body.get_layer(name).switch(on)


def off_blocks(reserve, spec):
    """tuple of str: the blocks of `reserve` switched off while its body
    computes `spec` (read from the specs, not the switches)."""
    if reserve is None:
        return ()
    active = _block_names(spec)
    return tuple(b for b in reserve.blocks if b not in active)


def off_layers(reserve, spec):
    """frozenset of str: the layers of a body holding `reserve` that are
    switched off while it computes `spec`."""
    blocks = off_blocks(reserve, spec)
    return frozenset().union(*(reserve.layers[b] for b in blocks))


def net_layers(body, reserve, spec):
    """list of the layers of `body` (holding `reserve`) the net of `spec`
    computes: a reserve's switched-off layers left out."""
    off = off_layers(reserve, spec)
    return [layer for layer in body.layers if layer.name not in off]
