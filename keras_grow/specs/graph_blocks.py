"""The repeatable residual blocks of a layer graph.

Pure Python over `GraphSpec` nodes (no Keras). A **residual unit** is an
`Add` of a stream tensor and a branch that reads only that stream: a
transformer's attention or feed-forward sub-layer, a ResNet block without a
projection. Units that follow each other along a stream form a **chain**;
a chain's units, read in periods of its repeating pattern of layer
classes, are its **blocks**: a transformer layer (attention, then
feed-forward) or one residual CNN block. A layer that holds its own
shortcuts (a KerasHub `TransformerEncoder`) is a unit by itself. Depth
growth by blocks repeats a chain's last block after itself.
"""

import dataclasses

from keras_grow.specs.graph_analysis import ENCODERS
from keras_grow.specs.graph_analysis import HUB
from keras_grow.specs.graph_analysis import POSITIONAL

# Layers whose output is zero where their input is: a zeroed last
# projection stays zero through them, so the branch adds nothing.
_ZERO_PASSING = (
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "Identity",
    "ReLU",
    "SpatialDropout2D",
)
_ZERO_ACTIVATIONS = frozenset(
    "linear relu relu6 gelu silu swish tanh elu selu leaky_relu mish".split()
)
# Layers whose last weights decide their output: zeroing these zeroes it.
# class name -> variables (as `transfer.weights.variable_key` names them).
OUTPUT_WEIGHTS = {
    "Dense": ("kernel", "bias"),
    "Conv1D": ("kernel", "bias"),
    "Conv2D": ("kernel", "bias"),
    "SeparableConv2D": ("pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta"),
    "LayerNormalization": ("gamma", "beta"),
    "GroupNormalization": ("gamma", "beta"),
    "MultiHeadAttention": ("attention_output/kernel", "attention_output/bias"),
    HUB + "TransformerEncoder": (
        "self_attention_layer/attention_output/kernel",
        "self_attention_layer/attention_output/bias",
        "feedforward_output_dense/kernel",
        "feedforward_output_dense/bias",
    ),
}


@dataclasses.dataclass(frozen=True)
class GraphBlock:
    """A repeatable block of residual units.

    Args:
        name: str. Its last `Add`'s name.
        stage: int. Its chain's index.
        layers: tuple of str. Every node of the block, in graph order.
        zero_layers: tuple of str. The layer each unit's branch ends in
            (`OUTPUT_WEIGHTS`): zero their output weights and the block is
            the identity. Empty when some branch cannot be zeroed so.
        stream: str. The node the block reads.
    """

    name: str
    stage: int
    layers: tuple
    zero_layers: tuple
    stream: str


@dataclasses.dataclass(frozen=True)
class _Unit:
    stream: str
    branch: tuple  # node names in graph order
    add: str


def _branch(nodes, add, stream, result):
    """The nodes computing `result` from `stream` alone, or `None`."""
    by_name = {n["name"]: n for n in nodes}
    branch, todo = set(), [result]
    while todo:
        name = todo.pop()
        if name == stream or name in branch:
            continue
        if name not in by_name:
            return None  # reaches the model input around the stream
        branch.add(name)
        todo += by_name[name]["inputs"]
    for node in nodes:
        outside = node["name"] not in branch and node["name"] != add
        if outside and any(i in branch for i in node["inputs"]):
            return None  # a branch tensor is read elsewhere
    return tuple(n["name"] for n in nodes if n["name"] in branch)


def residual_units(nodes):
    """list of `_Unit`, in graph order. A branch of position embeddings
    alone (it reads its input's shape, not its values) is no unit."""
    classes = {n["name"]: n["class_name"] for n in nodes}
    units = []
    for node in nodes:
        if node["class_name"] in ENCODERS:
            units.append(_Unit(node["inputs"][0], (node["name"],), node["name"]))
            continue
        if node["class_name"] != "Add" or len(node["inputs"]) != 2:
            continue
        for stream, result in (node["inputs"], node["inputs"][::-1]):
            branch = _branch(nodes, node["name"], stream, result)
            if branch and any(classes[b] not in POSITIONAL for b in branch):
                units.append(_Unit(stream, branch, node["name"]))
                break
    return units


def _zero_layer(nodes, unit):
    """The layer whose zeroed output weights zero the unit's branch, or
    `None`."""
    by_name = {n["name"]: n for n in nodes}
    add = by_name[unit.add]
    if add["class_name"] in ENCODERS:
        # Pre-norm, zero projections leave x + 0 + 0; post-norm, the
        # layer norms after each shortcut remain.
        return unit.add if add["config"].get("normalize_first") else None
    name = next(i for i in add["inputs"] if i != unit.stream)
    while True:
        node = by_name[name]
        cls, config = node["class_name"], node["config"]
        if cls in OUTPUT_WEIGHTS:
            activation = config.get("activation", "linear")
            return name if activation in _ZERO_ACTIVATIONS else None
        passes = cls in _ZERO_PASSING or (
            cls == "Activation" and config.get("activation") in _ZERO_ACTIVATIONS
        )
        if not passes or len(node["inputs"]) != 1:
            return None
        name = node["inputs"][0]


def _period(signatures):
    """The smallest p dividing the chain whose pattern repeats every p."""
    n = len(signatures)
    return next(
        p
        for p in range(1, n + 1)
        if n % p == 0 and all(signatures[i] == signatures[i % p] for i in range(n))
    )


def chains(nodes):
    """list of lists of `_Unit`: units following each other along a stream."""
    units = residual_units(nodes)
    after = {u.stream: u for u in units}
    starts = [u for u in units if u.stream not in {v.add for v in units}]
    result = []
    for unit in starts:
        chain = [unit]
        while chain[-1].add in after:
            chain.append(after[chain[-1].add])
        result.append(chain)
    return result


def blocks(nodes):
    """list of `GraphBlock`, chain by chain, in graph order."""
    by_name = {n["name"]: n for n in nodes}
    result = []
    for stage, chain in enumerate(chains(nodes)):
        signatures = [tuple(by_name[b]["class_name"] for b in u.branch) for u in chain]
        period = _period(signatures)
        for start in range(0, len(chain), period):
            units = chain[start : start + period]
            zero = [_zero_layer(nodes, u) for u in units]
            layers = [name for u in units for name in (*u.branch, u.add)]
            result.append(
                GraphBlock(
                    name=units[-1].add,
                    stage=stage,
                    layers=tuple(n["name"] for n in nodes if n["name"] in layers),
                    zero_layers=() if None in zero else tuple(zero),
                    stream=units[0].stream,
                )
            )
    return result


def repeated(nodes, block):
    """The nodes with a copy of `block` after it.

    The copy's layers are named `<base>_x<k>` (`base` the name the layer
    was first copied from, `k` one more than its copies so far), carry
    `"copy_of"`, read what the block's layers read (the block's stream
    becoming the block's output), and every layer that read the block's
    output reads the copy's instead.

    Args:
        nodes: tuple of node dicts.
        block: a `GraphBlock` of `nodes`.
    """
    by_name = {n["name"]: n for n in nodes}
    names = {}
    for name in block.layers:
        base = by_name[name].get("copy_of", name)
        copies = sum(n.get("copy_of") == base for n in nodes)
        names[name] = f"{base}_x{copies + 1}"
    added = []
    for name in block.layers:
        node = dict(by_name[name])
        node["config"] = dict(node["config"], name=names[name])
        node["copy_of"] = node.get("copy_of", name)
        node["name"] = names[name]
        node["inputs"] = [
            block.name if i == block.stream else names.get(i, i) for i in node["inputs"]
        ]
        added.append(node)
    end = names[block.name]
    result = []
    for node in nodes:
        if node["name"] not in block.layers:
            node = dict(
                node, inputs=[end if i == block.name else i for i in node["inputs"]]
            )
        result.append(node)
        if node["name"] == block.name:
            result += added
    return tuple(result)


def removed(nodes, block):
    """The nodes without `block`: what read its output reads its stream."""
    return tuple(
        dict(n, inputs=[block.stream if i == block.name else i for i in n["inputs"]])
        for n in nodes
        if n["name"] not in block.layers
    )
