"""Which channels of a layer graph grow together, and where layers can go.

Pure Python over `GraphSpec` nodes (no Keras). Each layer class has one
rule (`_RULES`) saying which channel set (unit group) its output belongs
to, what role it plays for the units it reads, and why a group cannot
grow: a union-find joins the sets an `Add` sums.
"""

import collections
import dataclasses

# Layer classes are named as Keras registers them outside `keras.layers`
# (`node_class`): KerasHub's as `keras_hub>TransformerEncoder`.
HUB = "keras_hub>"
# Layers whose outputs are units: class name -> the config key of the width.
PRODUCERS = {
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Dense": "units",
    "Embedding": "output_dim",
    "SeparableConv2D": "filters",
    HUB + "TokenAndPositionEmbedding": "embedding_dim",
}
# Layers that read token ids: nothing of their input grows.
EMBEDDINGS = ("Embedding", HUB + "TokenAndPositionEmbedding")
# Normalisations over the units (their parameters hold one entry per unit).
NORMS = ("BatchNormalization", "GroupNormalization", "LayerNormalization")
# Layers that add a learned vector per position to their input's units.
POSITIONAL = ("PositionEmbedding", HUB + "PositionEmbedding")
ATTENTION = ("MultiHeadAttention",)
# Recurrent layers: class name -> the cell whose weights they hold. A cell's
# kernel and recurrent kernel hold its units once per gate, gate by gate.
RECURRENT = {"GRU": "gru_cell", "LSTM": "lstm_cell", "SimpleRNN": "simple_rnn_cell"}
# Whole residual layers (attention and feed-forward with their shortcuts):
# each is a block of depth growth by itself.
ENCODERS = (HUB + "TransformerEncoder",)
# The keyword arguments through which a layer may read a side input of the
# model (a mask, which carries no units), by layer class.
MASK_KEYWORDS = {
    "MultiHeadAttention": ("attention_mask",),
    HUB + "TransformerEncoder": ("padding_mask", "attention_mask"),
}
# A depthwise conv carries each unit through on its own channel.
PASSTHROUGH = ("DepthwiseConv2D",)
# Layers that act on every unit on its own, keeping the tensor's rank.
# The image layers move or scale the positions of every unit's map alike,
# or shift each unit's values (contrast, brightness); the random ones are
# the identity in inference (keras.io puts them at a model's input).
CHANNELWISE = (
    "Activation",
    "AveragePooling1D",
    "AveragePooling2D",
    "CenterCrop",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "Resizing",
    "Dropout",
    "ELU",
    "GaussianDropout",
    "GaussianNoise",
    "Identity",
    "LeakyReLU",
    "MaxPooling1D",
    "MaxPooling2D",
    "ReLU",
    "Rescaling",
    "SpatialDropout2D",
    "ZeroPadding2D",
)
# Layers that pool a map to one value per unit: rank 4 -> rank 2.
POOLS = (
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
)
MERGES = ("Add", "Concatenate", "Multiply")

# Activations computed unit by unit (a split or a new unit leaves the
# other units' values alone). Softmax, for one, mixes units.
ELEMENTWISE_ACTIVATIONS = frozenset(
    "elu exponential gelu hard_sigmoid hard_silu hard_swish leaky_relu linear "
    "mish relu relu6 selu sigmoid silu softplus softsign swish tanh".split()
)
# Activations whose output is >= 0 and which are the identity there: a
# Dense/Conv2D + ReLU with an identity kernel after one computes the same.
RELU_ACTIVATIONS = frozenset(("relu", "relu6"))


# The roles a layer plays for a group's units (`keras_grow.build.structure.
# SLOTS` says which of its weights hold them, and how).
ROLES = (
    "producers",
    "norms",
    "passthrough",
    "consumers",
    "flat_consumers",
    "separable",
    "attention_in",
    "attention_out",
    "heads",
    "encoder_feedforward",
    "recurrent_in",
    "recurrent",
    "recurrent_state",
)


def node_class(layer):
    """str. The class name a graph node gives `layer`: its class's name
    for Keras' and keras_grow's layers, the name Keras registers it under
    for KerasHub's (`keras_hub>PositionEmbedding` is not keras_grow's); a
    reserve's gated layer (`keras_grow.gated_layers`) is the node of the
    class it gates."""
    cls = getattr(layer, "gated_class", None) or type(layer)
    if cls.__module__.split(".")[0] == "keras_hub":
        return HUB + cls.__name__
    return cls.__name__


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoleMembers:
    """The layers that touch one set of units, by role (`ROLES`): a
    `GraphGroup` as the analysis finds it, a `keras_grow.build.UnitGroup`
    as growth acts on it."""

    producers: tuple = ()
    norms: tuple = ()
    passthrough: tuple = ()
    consumers: tuple = ()
    flat_consumers: tuple = ()
    separable: tuple = ()
    attention_in: tuple = ()
    attention_out: tuple = ()
    heads: tuple = ()
    encoder_feedforward: tuple = ()
    recurrent_in: tuple = ()
    recurrent: tuple = ()
    recurrent_state: tuple = ()

    def members(self):
        """list of (role, layer name), roles in `ROLES` order."""
        return [(role, name) for role in ROLES for name in getattr(self, role)]

    def roles(self):
        """`{role: layer names}` of every role."""
        return {role: getattr(self, role) for role in ROLES}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GraphGroup(RoleMembers):
    """One set of channels that grow together, found by `analyse`.

    Args:
        name: str. The name of its first producer (or of the layer that
            made the channels, for a group without producers).
        producers, norms, passthrough, consumers, separable,
            attention_in, attention_out, heads: tuples of layer names, by
            role (see `keras_grow.build.UnitGroup`).
        fixed: tuple of str. Why the group cannot grow; empty if it can.
        notes: tuple of str. What growing it does not preserve.
        width_keys: tuple of (layer, config key, index or `None`). Where
            the layer configs state the group's width (a `Dense`'s
            `units`, a `Reshape`'s `target_shape[-1]`, ...): all equal,
            and all set at once when it grows.
        origin: str. The layer (or input) the group starts at.
    """

    name: str
    fixed: tuple = ()
    notes: tuple = ()
    width_keys: tuple = ()
    origin: str = ""

    @property
    def growable(self):
        return bool(self.width_keys) and not self.fixed

    @property
    def layers(self):
        """tuple of str. The layers with a width entry, in order."""
        return tuple(dict.fromkeys(layer for layer, _, _ in self.width_keys))


@dataclasses.dataclass(frozen=True)
class GraphAnalysis:
    """What `analyse` finds in a graph.

    Args:
        groups: tuple of `GraphGroup`, in graph order.
        ranks: dict. `{node name: rank of its output, batch axis included}`.
        channels: dict. `{node name: channels of its output or None}`.
        sites: tuple of str. Layers after which depth growth may insert a
            layer (every layer but the output whose output is a vector or
            a map of known channels), in order.
        relu_sites: frozenset of str. The sites whose output is a ReLU's
            (the inserted layer gets a ReLU too).
    """

    groups: tuple
    ranks: dict
    channels: dict
    sites: tuple
    relu_sites: frozenset = frozenset()

    @property
    def growable(self):
        """tuple of `GraphGroup`. The groups a width entry controls."""
        return tuple(g for g in self.groups if g.growable)


class _Groups:
    """Union-find over channel sets, with each set's members and reasons."""

    def __init__(self):
        self._parent = []
        self._origin = []  # (layer it starts at, name if not its producer's)
        self._members = []  # (group, role, layer)
        self._fixed = []  # (group, reason)
        self._notes = []  # (group, note)
        self._width_keys = []  # (group, (layer, config key, index))

    def new(self, origin, name=None):
        self._parent.append(len(self._parent))
        self._origin.append((origin, name))
        return len(self._parent) - 1

    def find(self, group):
        while self._parent[group] != group:
            self._parent[group] = self._parent[self._parent[group]]
            group = self._parent[group]
        return group

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self._parent[max(a, b)] = min(a, b)
        return min(a, b)

    def add(self, group, role, layer):
        self._members.append((group, role, layer))

    def fix(self, group, reason):
        self._fixed.append((group, reason))

    def note(self, group, text):
        self._notes.append((group, text))

    def width_key(self, group, layer, key, index=None):
        self._width_keys.append((group, (layer, key, index)))

    def resolve(self):
        roles = collections.defaultdict(lambda: collections.defaultdict(list))
        for group, role, layer in self._members:
            roles[self.find(group)][role].append(layer)
        fixed, notes = collections.defaultdict(list), collections.defaultdict(list)
        for target, pairs in ((fixed, self._fixed), (notes, self._notes)):
            for group, text in pairs:
                if text not in target[self.find(group)]:
                    target[self.find(group)].append(text)
        keys = collections.defaultdict(list)
        for group, entry in self._width_keys:
            keys[self.find(group)].append(entry)
        groups = []
        for group in range(len(self._parent)):
            if self.find(group) != group:
                continue
            members = roles[group]
            origin, name = self._origin[group]
            groups.append(
                GraphGroup(
                    name=(members["producers"] or [name or origin])[0],
                    **{role: tuple(members[role]) for role in ROLES},
                    fixed=tuple(fixed[group]),
                    notes=tuple(notes[group]),
                    width_keys=tuple(keys[group]),
                    origin=origin,
                )
            )
        return groups


def _activation(config):
    activation = config.get("activation", "linear")
    return activation if isinstance(activation, str) else repr(activation)


def output_activation(node):
    """The activation a layer node applies last, by name (`"softmax"` for a
    `Softmax` layer, `"linear"` for a layer that applies none)."""
    if node["class_name"] == "Softmax":
        return "softmax"
    return _activation(node["config"])


def _axis_is_last(axis, rank):
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis in (-1, rank - 1)


def _is_relu_output(node):
    cls, config = node["class_name"], node["config"]
    if cls == "ReLU":
        return not config.get("negative_slope") and not config.get("threshold")
    if cls == "Activation" or cls in PRODUCERS:
        return _activation(config) in RELU_ACTIVATIONS
    return False


class _Tensor(
    collections.namedtuple(
        "_Tensor", ["group", "rank", "channels", "flat"], defaults=(False,)
    )
):
    """What the analysis knows of one layer's output. `flat`: a flattened
    map, whose values interleave the group's units with positions."""


def _elementwise(groups, name, config, group, what="units"):
    activation = _activation(config)
    if activation not in ELEMENTWISE_ACTIVATIONS:
        groups.fix(group, f"'{name}' applies {activation!r} across its {what}")


def _produced(groups, node, rank):
    """The new group of a layer whose output channels are its units
    (their number is the config entry `PRODUCERS` names)."""
    name, config = node["name"], node["config"]
    group = groups.new(name)
    groups.add(group, "producers", name)
    groups.width_key(group, name, PRODUCERS[node["class_name"]])
    _elementwise(groups, name, config, group)
    return _Tensor(group, rank, config[PRODUCERS[node["class_name"]]])


def _producer(groups, node, ins):
    name, config = node["name"], node["config"]
    # A Dense reading a flattened map holds a unit's rows at every position.
    role = "flat_consumers" if ins[0].flat else "consumers"
    groups.add(ins[0].group, role, name)
    if config.get("groups", 1) != 1:
        groups.fix(ins[0].group, f"grouped conv '{name}' reads it")
    return _produced(groups, node, ins[0].rank)


def _separable(groups, node, ins):
    name, config, (x,) = node["name"], node["config"], ins
    multiplier = config.get("depth_multiplier", 1)
    if multiplier == 1:
        groups.add(x.group, "separable", name)
    else:
        groups.fix(x.group, f"'{name}' has depth_multiplier {multiplier}")
    return _produced(groups, node, x.rank)


def _embedding(groups, node, ins):
    # Its input is token ids, not units: nothing of it grows.
    return _produced(groups, node, ins[0].rank + 1)


def _positional(groups, node, ins):
    # One learned vector per position, as wide as the input it is added to.
    (x,) = ins
    groups.add(x.group, "producers", node["name"])
    return x


def _attention(groups, node, ins):
    """Self-attention reads and writes the units of its input (its output
    is as wide as its query); its heads are a group of their own."""
    name, config, (x,) = node["name"], node["config"], ins
    groups.add(x.group, "attention_in", name)
    groups.add(x.group, "attention_out", name)
    heads = groups.new(name, name=f"{name}_heads")
    groups.add(heads, "heads", name)
    groups.width_key(heads, name, "num_heads")
    if config.get("output_shape") is not None:
        groups.fix(x.group, f"'{name}' sets its output width (output_shape)")
    if config.get("use_gate"):
        for group in (x.group, heads):
            groups.fix(group, f"'{name}' gates its heads (use_gate)")
    if config.get("value_dim") not in (None, config.get("key_dim")):
        groups.fix(heads, f"'{name}' has a value_dim other than its key_dim")
    if config.get("key_dim") == 1 and config.get("use_bias", True):
        # keras.ops.add on TensorFlow takes a (heads, 1) bias for a channels-
        # first bias_add when heads equal the positions: it lands on the
        # wrong axis, so a growth to that many heads would change the
        # function.
        groups.fix(
            heads,
            f"'{name}' has key_dim 1, whose head biases Keras' TensorFlow "
            "backend adds along the positions when num_heads equals their "
            "number",
        )
    return x


def _encoder(groups, node, ins):
    """A KerasHub TransformerEncoder: its feed-forward width grows; the
    stream it reads and writes does not (its heads' key_dim is the stream
    width // num_heads, and attention scales by that key_dim)."""
    name, config, (x,) = node["name"], node["config"], ins
    groups.fix(
        x.group,
        f"TransformerEncoder '{name}' reads it: its heads' key_dim is this "
        "width // num_heads, which growth would change",
    )
    feedforward = groups.new(name, name=f"{name}_feedforward")
    groups.add(feedforward, "encoder_feedforward", name)
    groups.width_key(feedforward, name, "intermediate_dim")
    _elementwise(groups, name, config, feedforward)
    return x


def _recurrent(groups, node, ins):
    """An RNN reads its input's units with its kernel's rows; its own units
    are its state, which it reads back with its recurrent kernel's rows
    (`recurrent_state`) and writes, gate by gate, with the columns of
    its kernel, recurrent kernel and bias (`recurrent`)."""
    name, config, (x,) = node["name"], node["config"], ins
    groups.add(x.group, "recurrent_in", name)
    group = groups.new(name)
    groups.add(group, "recurrent_state", name)
    groups.add(group, "recurrent", name)
    groups.width_key(group, name, "units")
    for key in ("activation", "recurrent_activation"):
        if key in config:
            _elementwise(groups, name, {"activation": config[key]}, group)
    rank = x.rank if config.get("return_sequences") else x.rank - 1
    return _Tensor(group, rank, config["units"])


def _norm(groups, node, ins):
    name, config, (x,) = node["name"], node["config"], ins
    if not _axis_is_last(config.get("axis", -1), x.rank):
        groups.fix(x.group, f"'{name}' normalises axis {config.get('axis')}")
        return x
    cls, split = node["class_name"], config.get("groups", -1)
    if cls == "GroupNormalization":
        if split != 1 and split == x.channels:
            # One channel a group, as Keras stores `groups=-1` once built.
            groups.width_key(x.group, name, "groups")
        elif split not in (-1, 1):
            groups.fix(
                x.group,
                f"GroupNormalization '{name}' pools its units in {split} "
                "fixed groups, which a new unit would change",
            )
            return x
    groups.add(x.group, "norms", name)
    if cls == "LayerNormalization" or (cls == "GroupNormalization" and split == 1):
        # New or split units enter the mean and variance every unit is
        # normalised with; a copy of every unit leaves both as they are.
        groups.note(
            x.group,
            f"its {cls} layers normalise across the units, so growth keeps "
            "the function only when every unit is split at once",
        )
    return x


def _reshape(groups, node, ins):
    """A reshape keeps the units if it keeps the last axis: a row-major
    reshape then moves whole unit vectors between positions."""
    name, (x,) = node["name"], ins
    target = list(node["config"]["target_shape"])
    rank = len(target) + 1
    if x.channels is not None and target[-1] == x.channels:
        groups.width_key(x.group, name, "target_shape", len(target) - 1)
        return x._replace(rank=rank)
    if target[-1] == -1 and x.rank == 2 and all(d == 1 for d in target[:-1]):
        return x._replace(rank=rank)  # one position: e.g. (C,) -> (1, 1, C)
    groups.fix(x.group, f"Reshape '{name}' mixes its units with positions")
    group = groups.new(name)
    groups.fix(group, f"it is the reshaped tensor of '{name}'")
    return _Tensor(group, rank, None)


def _depthwise(groups, node, ins):
    name, config, (x,) = node["name"], node["config"], ins
    multiplier = config.get("depth_multiplier", 1)
    if multiplier == 1:
        groups.add(x.group, "passthrough", name)
        out = x
    else:
        reason = f"'{name}' has depth_multiplier {multiplier}"
        groups.fix(x.group, reason)
        group = groups.new(name)
        groups.fix(group, reason)
        out = _Tensor(group, x.rank, x.channels and x.channels * multiplier)
    _elementwise(groups, name, config, out.group)
    return out


def _channelwise(groups, node, ins):
    name, config, (x,) = node["name"], node["config"], ins
    if node["class_name"] == "Activation":
        _elementwise(groups, name, config, x.group)
    if node["class_name"] == "Rescaling" and not all(
        isinstance(config.get(k, 0), (int, float)) for k in ("scale", "offset")
    ):
        groups.fix(x.group, f"'{name}' rescales each unit differently")
    return x


def _softmax(groups, node, ins):
    (x,) = ins
    if _axis_is_last(node["config"].get("axis", -1), x.rank):
        groups.fix(x.group, f"'{node['name']}' applies softmax across its units")
    return x


def _normalization(groups, node, ins):
    (x,) = ins
    groups.fix(
        x.group, f"Normalization '{node['name']}' holds a mean and variance per unit"
    )
    return x


def _pool(groups, node, ins):
    (x,) = ins
    return x if node["config"].get("keepdims") else x._replace(rank=2)


def _flatten(groups, node, ins):
    """Flatten keeps the units, interleaved with positions (row-major: a
    unit's value at each position, then the next position's): a Dense
    reading it holds each unit's rows at every position."""
    (x,) = ins
    if x.rank == 2:
        return x
    return x._replace(rank=2, channels=None, flat=True)


def _reads_flat(node):
    """Whether a layer can read a flattened map without mixing its units:
    a Dense, or a layer acting on each value on its own."""
    cls = node["class_name"]
    if cls == "Dense":
        return True
    if cls == "Activation":
        return _activation(node["config"]) in ELEMENTWISE_ACTIVATIONS
    return cls in CHANNELWISE


def _unflattened(groups, node, x):
    """`x` as a layer that cannot read a flattened map sees it: a group of
    its own, fixed, and the units it came from fixed too."""
    name = node["name"]
    groups.fix(
        x.group,
        f"'{name}' reads the flattened map of its units (only a Dense, or a "
        "layer acting on each value, may)",
    )
    group = groups.new(name)
    groups.fix(group, f"it is a flattened map that '{name}' reads")
    return _Tensor(group, 2, None)


def _add(groups, node, ins):
    """Add and Multiply act unit by unit: their inputs' units are one set."""
    group = ins[0].group
    for other in ins[1:]:
        group = groups.union(group, other.group)
    return ins[0]._replace(group=group, rank=max(x.rank for x in ins))


def _concatenate(groups, node, ins):
    name = node["name"]
    for x in ins:
        groups.fix(x.group, f"Concatenate '{name}' joins it to others")
    group = groups.new(name)
    groups.fix(group, f"it is the concatenation '{name}'")
    widths = [x.channels for x in ins]
    return _Tensor(group, ins[0].rank, None if None in widths else sum(widths))


# Keras class name -> rule(groups, node, input tensors) -> output tensor.
_RULES = {
    **{cls: _producer for cls in PRODUCERS},
    **{cls: _norm for cls in NORMS},
    **{cls: _depthwise for cls in PASSTHROUGH},
    **{cls: _channelwise for cls in CHANNELWISE},
    **{cls: _pool for cls in POOLS},
    **{cls: _positional for cls in POSITIONAL},
    **{cls: _attention for cls in ATTENTION},
    **{cls: _embedding for cls in EMBEDDINGS},
    **{cls: _encoder for cls in ENCODERS},
    **{cls: _recurrent for cls in RECURRENT},
    "SeparableConv2D": _separable,
    "Flatten": _flatten,
    "Normalization": _normalization,
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Add": _add,
    "Multiply": _add,
    "Concatenate": _concatenate,
}
SUPPORTED = tuple(sorted(_RULES))


def analyse(spec):
    """Finds the unit groups, ranks, channel counts and depth sites.

    Args:
        spec: a `GraphSpec` (its nodes already validated).

    Returns:
        A `GraphAnalysis`.
    """
    groups = _Groups()
    source = groups.new(spec.input_name)
    groups.fix(source, "it is the model's input")
    tensors = {
        spec.input_name: _Tensor(
            source, len(spec.input_shape) + 1, spec.input_shape[-1]
        )
    }
    for node in spec.nodes:
        ins = [tensors[name] for name in node["inputs"]]
        if not _reads_flat(node):
            ins = [_unflattened(groups, node, x) if x.flat else x for x in ins]
        tensors[node["name"]] = _RULES[node["class_name"]](groups, node, ins)
    groups.fix(tensors[spec.output].group, "it is the model's output")
    ranks = {name: t.rank for name, t in tensors.items()}
    channels = {name: t.channels for name, t in tensors.items()}
    sites = tuple(
        node["name"]
        for node in spec.nodes
        if "site" not in node
        and node["name"] != spec.output
        and ranks[node["name"]] in (2, 4)
        and channels[node["name"]] is not None
    )
    resolved = groups.resolve()
    order = {node["name"]: i for i, node in enumerate(spec.nodes)}
    order[spec.input_name] = -1
    resolved.sort(key=lambda g: order[g.origin])
    relu_sites = frozenset(n["name"] for n in spec.nodes if _is_relu_output(n))
    return GraphAnalysis(
        tuple(resolved), ranks, channels, sites, relu_sites & set(sites)
    )
