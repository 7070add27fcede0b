"""What the transfer code needs to know about a built graph, by layer name."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class UnitGroup:
    """A set of channels (units) that grow together, and who touches them.

    Adding or splitting unit `i` of a group changes:

    - `producers`: Conv2D/Dense layers whose output axis (kernel axis -1 and
      bias) holds the units. Several producers feed one group when a
      residual stream sums them.
    - `norms`: BatchNormalization layers over the units (axis 0 of all
      their variables).
    - `passthrough`: DepthwiseConv2D layers that carry each unit through on
      its own channel (kernel axis -2, bias).
    - `consumers`: Conv2D/Dense layers that read the units (kernel axis -2).

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
    """

    name: str
    last_norm: str | None
    residual: bool
    convs: tuple = ()
