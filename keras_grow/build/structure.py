"""What the transfer code needs to know about a built graph, by layer name."""

import dataclasses

# Where a unit group's units sit in the weights of each kind of member
# layer: `{role: {variable: axis}}`. A variable not listed (or a layer
# without it, e.g. no bias) holds none of the group's units. This is the one
# statement of the rule: width morphisms, parameter counts, the Firefly
# neighbourhood and its realisation all read it.
UNIT_AXES = {
    # Conv2D/Dense whose outputs are the units.
    "producers": {"kernel": -1, "bias": 0},
    # BatchNormalization over the units.
    "norms": {"gamma": 0, "beta": 0, "moving_mean": 0, "moving_variance": 0},
    # DepthwiseConv2D carrying each unit through on its own channel.
    "passthrough": {"kernel": -2, "bias": 0},
    # Conv2D/Dense reading the units.
    "consumers": {"kernel": -2},
}
ROLES = tuple(UNIT_AXES)


@dataclasses.dataclass(frozen=True)
class UnitGroup:
    """A set of channels (units) that grow together, and who touches them.

    Adding or splitting unit `i` of a group changes its member layers, by
    role (`UNIT_AXES` says which axis of which variable holds the units):

    - `producers`: Conv2D/Dense layers whose output axis holds the units.
      Several producers feed one group when a residual stream sums them.
    - `norms`: BatchNormalization layers over the units.
    - `passthrough`: DepthwiseConv2D layers that carry each unit through on
      its own channel.
    - `consumers`: Conv2D/Dense layers that read the units.

    Args:
        name: str. Stable name, e.g. `"stage2_layer1"` or `"stage3"`.
        width_index: int or `None`. Which entry of `spec.widths` sets this
            group's width; `None` for a group no width entry controls.
        producers, norms, passthrough, consumers: tuples of layer names.
    """

    name: str
    width_index: int | None
    producers: tuple = ()
    norms: tuple = ()
    passthrough: tuple = ()
    consumers: tuple = ()

    def members(self):
        """list of (role, layer name), roles in `ROLES` order."""
        return [(role, name) for role in ROLES for name in getattr(self, role)]

    def unit_axes(self):
        """`{(layer, variable): axis}` of every variable holding the units."""
        return {
            (name, variable): axis
            for role, name in self.members()
            for variable, axis in UNIT_AXES[role].items()
        }

    def width(self, shapes):
        """int. The group's width in `shapes` (`{layer: {variable: shape}}`,
        or the weights themselves)."""
        kernel = shapes[self.producers[0]]["kernel"]
        return tuple(getattr(kernel, "shape", kernel))[UNIT_AXES["producers"]["kernel"]]


@dataclasses.dataclass(frozen=True)
class Block:
    """A sub-module that depth growth adds as a whole.

    Args:
        name: str. The prefix of its layers, e.g. `"stage2_block3"`.
        last_norm: str or `None`. The block's last BatchNormalization, which
            AutoGrow's initialisers set.
        residual: bool. Whether the block's output is added to a shortcut
            (so a zero `last_norm` makes it the identity).
        convs: tuple of str. Its conv layers, in order.
        stage: int or `None`. The depth stage it belongs to (the `stage`
            of `spec.with_block_added`); `None` for a fixed layout.
    """

    name: str
    last_norm: str | None
    residual: bool
    convs: tuple = ()
    stage: int | None = None
