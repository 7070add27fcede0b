"""What the transfer code needs to know about a built graph, by layer name."""

import dataclasses

from keras_grow.specs.graph_analysis import RECURRENT
from keras_grow.specs.graph_analysis import RoleMembers

# What each variable of a unit group's member does for its units.
IN = "in"  # a unit's incoming weights: copied on a split, drawn for a new one
OUT = "out"  # its outgoing weights: halved on a split, epsilon-scaled if new
BIAS = "bias"  # copied on a split, zero for a new unit
NORM = "norm"  # normalisation parameters and statistics, copied or reset


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where a member variable holds the units, and what it is to them.

    Args:
        axis: int. The unit axis.
        kind: str. `IN`, `OUT`, `BIAS` or `NORM`.
        perturbed: bool. Whether a split's delta (or noise) moves it:
            the incoming weights that tell a unit from its child.
        fan_in: tuple of int or `None`. The axes whose sizes multiply to
            the fan-in of a new unit's weights (He-normal draws). `None`:
            the layer's own fan-in for `OUT` (every axis but the last),
            the unit's otherwise (every axis but `axis`).
        interleaved: bool. Whether `axis` holds the units interleaved with
            positions (a Dense reading a flattened map: unit `u` of `C` at
            rows `p * C + u`), so that `unit_view` is needed to see one
            unit per index.
    """

    axis: int
    kind: str
    perturbed: bool = False
    fan_in: tuple | None = None
    interleaved: bool = False

    def fan_in_of(self, shape):
        """int. The fan-in of a new unit of a variable of `shape`."""
        axes = self.fan_in
        if axes is None:
            skip = len(shape) - 1 if self.kind == OUT else self.axis % len(shape)
            axes = [a for a in range(len(shape)) if a != skip]
        size = 1
        for a in axes:
            size *= shape[a]
        return size


_QKV = ("query", "key", "value")
_CELLS = tuple(RECURRENT.values())
_GATES_IN = Slot(-1, IN, perturbed=True, fan_in=(0,), interleaved=True)

# Where a unit group's units sit in the weights of each kind of member,
# `{role: {variable key: Slot}}` (keys as `transfer.weights.variable_key`
# names them). A variable not listed (or a layer without it, e.g. no bias)
# holds none of the group's units. This is the one statement of the rule:
# width morphisms, parameter counts, the Firefly neighbourhood and its
# realisation all read it.
SLOTS = {
    # Dense/Conv/Embedding/SeparableConv2D whose outputs are the units.
    "producers": {
        "kernel": Slot(-1, IN, perturbed=True),
        "bias": Slot(0, BIAS),
        "embeddings": Slot(-1, IN, perturbed=True),
        "pointwise_kernel": Slot(-1, IN, perturbed=True),
        # KerasHub's TokenAndPositionEmbedding: two tables summed.
        "token_embedding/embeddings": Slot(-1, IN, perturbed=True),
        "position_embedding/embeddings": Slot(-1, IN, perturbed=True),
    },
    # BatchNormalization/LayerNormalization/GroupNormalization over them.
    "norms": {
        var: Slot(0, NORM)
        for var in ("gamma", "beta", "moving_mean", "moving_variance")
    },
    # DepthwiseConv2D carrying each unit through on its own channel.
    "passthrough": {"kernel": Slot(-2, IN), "bias": Slot(0, BIAS)},
    # Dense/Conv reading the units.
    "consumers": {"kernel": Slot(-2, OUT)},
    # Dense reading a flattened map of them: each unit's rows at every
    # position (`unit_view`).
    "flat_consumers": {"kernel": Slot(-2, OUT, interleaved=True)},
    # SeparableConv2D reading the units: a depthwise filter each, then
    # the pointwise kernel's rows.
    "separable": {
        "depthwise_kernel": Slot(-2, IN),
        "pointwise_kernel": Slot(-2, OUT),
    },
    # MultiHeadAttention reading the units (its queries, keys and values).
    "attention_in": {f"{p}/kernel": Slot(0, OUT, fan_in=(0,)) for p in _QKV},
    # MultiHeadAttention writing them (its output projection).
    "attention_out": {
        "attention_output/kernel": Slot(-1, IN, perturbed=True),
        "attention_output/bias": Slot(0, BIAS),
    },
    # MultiHeadAttention's heads as units: a head's query, key and value
    # projections are its incoming weights, its rows of the output
    # projection its outgoing ones.
    "heads": {
        **{
            var: slot
            for p in _QKV
            for var, slot in (
                (f"{p}/kernel", Slot(1, IN, perturbed=True, fan_in=(0,))),
                (f"{p}/bias", Slot(0, BIAS)),
            )
        },
        "attention_output/kernel": Slot(0, OUT),
    },
    # A KerasHub TransformerEncoder's feed-forward units.
    "encoder_feedforward": {
        "feedforward_intermediate_dense/kernel": Slot(-1, IN, perturbed=True),
        "feedforward_intermediate_dense/bias": Slot(0, BIAS),
        "feedforward_output_dense/kernel": Slot(-2, OUT),
    },
    # An RNN reading the units: its kernel's rows, for every gate.
    "recurrent_in": {f"{c}/kernel": Slot(0, OUT) for c in _CELLS},
    # An RNN's own units: its kernel's, recurrent kernel's and bias's
    # columns, gate by gate (units fast, so `interleaved` with the gates as
    # positions: a GRU's (2, 3 * units) bias too), a gate's fan-in its rows.
    "recurrent": {
        var: slot
        for c in _CELLS
        for var, slot in (
            (f"{c}/kernel", _GATES_IN),
            (f"{c}/recurrent_kernel", _GATES_IN),
            (f"{c}/bias", Slot(-1, BIAS, interleaved=True)),
        )
    },
    # ... and the recurrent kernel's rows: what each unit's state sends to
    # every unit's gates at the next step.
    "recurrent_state": {f"{c}/recurrent_kernel": Slot(0, OUT) for c in _CELLS},
}


def unit_view(value, slot, width):
    """`value` with its units on an axis of their own: for an `interleaved`
    slot, the slot's axis split into (positions, `width` units), so that
    `slot.axis` indexes units (a (P * C, out) kernel viewed as (P, C,
    out)); `value` itself otherwise. `flat_view` undoes it."""
    if not slot.interleaved:
        return value
    shape = tuple(value.shape)
    axis = slot.axis % len(shape)
    if shape[axis] % width:
        raise ValueError(
            f"An axis of {shape[axis]} interleaved values does not hold "
            f"{width} units at each position."
        )
    return value.reshape(
        shape[:axis] + (shape[axis] // width, width) + shape[axis + 1 :]
    )


def flat_view(value, slot):
    """`unit_view`'s `value` back in the variable's own shape (its units'
    axis, however long now, merged with the positions again)."""
    if not slot.interleaved:
        return value
    shape = tuple(value.shape)
    axis = slot.axis % len(shape)  # the units' axis of the view
    return value.reshape(shape[: axis - 1] + (-1,) + shape[axis + 1 :])


# `{role: {variable key: unit axis}}`, for code that needs the axes only.
UNIT_AXES = {
    role: {var: slot.axis for var, slot in slots.items()}
    for role, slots in SLOTS.items()
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnitGroup(RoleMembers):
    """A set of channels (units) that grow together, and who touches them.

    Adding or splitting unit `i` of a group changes its member layers, by
    role (`UNIT_AXES` says which axis of which variable holds the units):

    - `producers`: Conv2D/Dense layers whose output axis holds the units.
      Several producers feed one group when a residual stream sums them.
    - `norms`: BatchNormalization layers over the units.
    - `passthrough`: DepthwiseConv2D layers that carry each unit through on
      its own channel.
    - `consumers`: Conv2D/Dense layers that read the units.
    - `separable`, `attention_in`, `attention_out`, `heads`: the parts of
      SeparableConv2D and MultiHeadAttention layers that hold them.
    - `encoder_feedforward`: a KerasHub TransformerEncoder's feed-forward.

    Args:
        name: str. Stable name, e.g. `"stage2_layer1"` or `"stage3"`.
        width_index: int or `None`. Which entry of `spec.widths` sets this
            group's width; `None` for a group no width entry controls.
        producers, norms, passthrough, consumers: tuples of layer names.
    """

    name: str
    width_index: int | None

    def unit_axes(self):
        """`{(layer, variable): axis}` of every variable holding the units."""
        return {
            (name, variable): axis
            for role, name in self.members()
            for variable, axis in UNIT_AXES[role].items()
        }

    def slots(self, layer_variables):
        """list of (role, layer, variable, `Slot`): every variable of the
        members holding the units, members in `members` order;
        `layer_variables` is `{layer: {variable: ...}}` (weights or shapes)."""
        return [
            (role, name, var, slot)
            for role, name in self.members()
            for var, slot in SLOTS[role].items()
            if var in layer_variables.get(name, ())
        ]

    @property
    def interleaved(self):
        """bool. Whether a member holds the units interleaved with
        positions or gates (a Dense reading a flattened map, an RNN), so
        that growth moves their old values, not only appends new ones."""
        return any(
            slot.interleaved
            for role, _ in self.members()
            for slot in SLOTS[role].values()
        )

    @property
    def first_layer(self):
        """str. The first member layer (`members` order)."""
        return self.members()[0][1]

    def width(self, shapes):
        """int. The group's width in `shapes` (`{layer: {variable: shape}}`,
        or the weights themselves), read from the first member variable
        that holds one unit per index (an interleaved axis holds several)."""
        for role, layer in self.members():
            for var, slot in SLOTS[role].items():
                if var in shapes.get(layer, ()) and not slot.interleaved:
                    value = shapes[layer][var]
                    return tuple(getattr(value, "shape", value))[slot.axis]
        raise ValueError(f"No layer holds one unit per index of group {self.name!r}.")


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
        layers: tuple of str. Its layers, where their names do not all
            start with `name + "_"` (a user graph's residual block).
        zero_layers: tuple of str. Layers whose zeroed output weights
            make a residual block the identity where it has no `last_norm`
            (its branches' last projections).
    """

    name: str
    last_norm: str | None
    residual: bool
    convs: tuple = ()
    stage: int | None = None
    layers: tuple = ()
    zero_layers: tuple = ()
