"""The graph family in Keras: a user's model to a spec, a spec to a graph.

`spec_from_keras` reads a Sequential or functional model (one input, one
output, each layer called once) into a `keras_grow.specs.GraphSpec`;
`build_graph` rebuilds the layers from their configs, by name, so weights
find their way across a rebuild like every other family's.
"""

import importlib
import json

import keras

from keras_grow import layers as own_layers
from keras_grow.build.structure import Block
from keras_grow.build.structure import UnitGroup
from keras_grow.specs import graph as graph_specs
from keras_grow.specs import graph_analysis
from keras_grow.specs.base import a_or_an

_INPUT = "images"  # the graph's input, as every family names it (serving).
# Layer classes of keras_grow's own a graph may hold, by class name.
_OWN_LAYERS = {"PositionEmbedding": own_layers.PositionEmbedding}
# Keyword arguments of a call the graph keeps, by layer class.
_CALL_KWARGS = {"MultiHeadAttention": ("use_causal_mask",)}


def _layer_class(class_name):
    """The class of a graph node's layer: keras_grow's own, Keras' or, by
    its registered name, KerasHub's (imported on first need)."""
    if class_name.startswith(graph_analysis.HUB):
        try:
            importlib.import_module("keras_hub")
        except ImportError:
            raise ImportError(
                f"This model holds KerasHub's {class_name}; install KerasHub "
                "(pip install 'keras-grow[hub]') to build it."
            ) from None
        return keras.saving.get_registered_object(class_name)
    return _OWN_LAYERS.get(class_name) or getattr(keras.layers, class_name, None)


def _layer_problem(layer):
    """str or `None`: why keras_grow cannot take `layer`."""
    cls = graph_analysis.node_class(layer)
    if isinstance(layer, keras.Model):
        return (
            f"Layer '{layer.name}' is a nested model; keras_grow grows a flat "
            "graph of layers. Build the model from the nested model's layers."
        )
    if cls == "Softmax":
        return (
            f"Layer '{layer.name}' is a Softmax; a GrowableModel outputs "
            "logits. Leave it out and compile with a loss that takes logits "
            "(e.g. SparseCategoricalCrossentropy(from_logits=True))."
        )
    if cls not in graph_analysis.SUPPORTED or type(layer) is not _layer_class(cls):
        return (
            f"Layer '{layer.name}' is {a_or_an(cls)}, which keras_grow cannot "
            "grow through."
        )
    return None


def _check_layers(model):
    """Raises naming every layer keras_grow cannot take, all at once."""
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    problems = [p for p in map(_layer_problem, layers) if p]
    if problems:
        raise ValueError(
            f"Model '{model.name}' has {len(problems)} layer(s) keras_grow "
            "cannot take: " + " ".join(problems) + " Supported layers: "
            f"{', '.join(graph_analysis.SUPPORTED)}."
        )


def _layer_config(layer):
    config = layer.get_config()
    if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
        # An adapted Normalization keeps its statistics in weights it
        # reads only once `finalize_state` ran; as constants in its config
        # they are part of the architecture, as a named family's are.
        config["mean"] = keras.ops.convert_to_numpy(layer.adapt_mean).tolist()
        config["variance"] = keras.ops.convert_to_numpy(layer.adapt_variance).tolist()
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The config of layer '{layer.name}' is not JSON data ({error}); "
            "keras_grow keeps configs in its spec."
        ) from None


def _sequential_nodes(model):
    nodes, previous = [], "input"
    for layer in model.layers:
        nodes.append(
            {
                "name": layer.name,
                "class_name": graph_analysis.node_class(layer),
                "config": _layer_config(layer),
                "inputs": [previous],
            }
        )
        previous = layer.name
    return nodes, "input", previous


def _history(tensor, model_name):
    layer, node_index, tensor_index = tensor["config"]["keras_history"]
    if node_index or tensor_index:
        raise ValueError(
            f"Model '{model_name}' calls layer '{layer}' more than once (or uses "
            "a second output of it); keras_grow grows graphs whose layers are "
            "each called once."
        )
    return layer


def _inputs_of(entry, model_name):
    """(names of the layers a layer reads, the call's kept keyword
    arguments)."""
    name, cls = entry["name"], entry["class_name"]
    if len(entry["inbound_nodes"]) != 1:
        raise ValueError(
            f"Layer '{name}' is called {len(entry['inbound_nodes'])} "
            "times; keras_grow grows graphs whose layers are each called once."
        )
    call = entry["inbound_nodes"][0]
    # Keras records `training=False` and `mask=None` for every symbolic call.
    defaults = {"training": False, "mask": None}
    kwargs = {
        k: v for k, v in call.get("kwargs", {}).items() if defaults.get(k, "none") != v
    }
    given = sorted(set(kwargs) - set(_CALL_KWARGS.get(cls, ())))
    if given:
        raise ValueError(
            f"Layer '{name}' is called with keyword arguments {given}; "
            "keras_grow rebuilds calls with one positional input"
            + (" and use_causal_mask." if cls in _CALL_KWARGS else ".")
        )
    args = call["args"]
    if cls in graph_analysis.ATTENTION:
        sources = {_history(t, model_name) for t in args}
        if len(sources) != 1:
            raise ValueError(
                f"MultiHeadAttention '{name}' attends from one tensor to "
                f"others ({sorted(sources)}); keras_grow grows self-attention "
                "(query, value and key one tensor)."
            )
        return sorted(sources), kwargs
    (arg,) = args
    tensors = arg if isinstance(arg, list) else [arg]
    return [_history(t, model_name) for t in tensors], kwargs


def _functional_nodes(model):
    config = model.get_config()
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"Model '{model.name}' has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; keras_grow grows models with one "
            "input and one output."
        )
    output = config["output_layers"]
    output = output if isinstance(output[0], str) else output[0]
    layers = {layer.name: layer for layer in model.layers}
    nodes, input_name = [], None
    for entry in config["layers"]:
        if entry["class_name"] == "InputLayer":
            input_name = entry["name"]
            continue
        inputs, kwargs = _inputs_of(entry, model.name)
        node = {
            "name": entry["name"],
            "class_name": graph_analysis.node_class(layers[entry["name"]]),
            "config": _layer_config(layers[entry["name"]]),
            "inputs": inputs,
        }
        if kwargs:
            node["call"] = kwargs
        nodes.append(node)
    return (
        nodes,
        input_name,
        _history({"config": {"keras_history": output}}, model.name),
    )


def _output_activation(nodes, output):
    node = next(n for n in nodes if n["name"] == output)
    activation = node["config"].get("activation")
    # A Softmax layer is refused by name earlier (`_check_layers`).
    if activation in ("softmax", "sigmoid", "log_softmax"):
        raise ValueError(
            f"The model's output layer '{output}' applies {activation}; "
            "a GrowableModel outputs logits. Leave the activation out and "
            "compile with a loss that takes logits (e.g. "
            "SparseCategoricalCrossentropy(from_logits=True))."
        )


def spec_from_keras(model, depth="sites"):
    """Reads a Keras model into a `GraphSpec`.

    Args:
        model: a built `keras.Sequential` or functional `keras.Model` with
            one input of a fixed shape and one output.
        depth: str. `GraphSpec.depth`: `"sites"` or `"blocks"` (`"named"`
            is a named family's, which a user's model is not).

    Returns:
        A `keras_grow.specs.GraphSpec` with the model's layers and widths.

    Raises:
        ValueError: naming the layer and why, for a layer keras_grow cannot
            grow through, a shared layer, several inputs or outputs, an
            input shape with unknown dimensions, or a softmax output.
        TypeError: for something that is not a Keras model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model; received {model!r}.")
    if depth not in ("sites", "blocks"):
        raise ValueError(
            f"`depth` must be 'sites' (a layer after a layer) or 'blocks' "
            f"(residual blocks repeated); received {depth!r}."
        )
    sequential = isinstance(model, keras.Sequential)
    if not sequential and type(model).__name__ != "Functional":
        raise ValueError(
            f"Model '{model.name}' is a subclassed {type(model).__name__}; "
            "keras_grow reads Sequential and functional models, whose graph "
            "it can see."
        )
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"Model '{model.name}' has no known input shape; build it first "
            "(e.g. start a Sequential with keras.Input(shape))."
        )
    _check_layers(model)
    if sequential:
        nodes, input_name, output = _sequential_nodes(model)
    else:
        nodes, input_name, output = _functional_nodes(model)
    input_shape = tuple(model.inputs[0].shape[1:])
    if None in input_shape:
        raise ValueError(
            f"Model '{model.name}' takes inputs of shape {input_shape}; "
            "keras_grow needs every dimension but the batch known."
        )
    _output_activation(nodes, output)
    num_classes = model.outputs[0].shape[-1]
    return graph_specs.GraphSpec(
        input_shape=input_shape,
        num_classes=int(num_classes),
        nodes=tuple(nodes),
        input_name=input_name,
        output=output,
        name=model.name,
        input_dtype=keras.backend.standardize_dtype(model.inputs[0].dtype),
        depth=depth,
    )


def build_graph(spec):
    """Builds the functional graph of a `GraphSpec` (input `images`)."""
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name=_INPUT)
    tensors = {spec.input_name: inputs}
    for node in spec.nodes:
        cls = _layer_class(node["class_name"])
        layer = cls.from_config(dict(node["config"], name=node["name"]))
        args = [tensors[name] for name in node["inputs"]]
        if node["class_name"] in graph_analysis.MERGES:
            args = [args]
        elif node["class_name"] in graph_analysis.ATTENTION:
            args = args * 2  # self-attention: query and value
        tensors[node["name"]] = layer(*args, **node.get("call", {}))
    return keras.Model(inputs, tensors[spec.output], name="body")


def _named_blocks(spec):
    """The blocks a named family's nodes name: each block's convs, the
    norm after its last conv (AutoGrow's initialisers set it), and
    whether that norm's output is added to a shortcut."""
    convs, stages = {}, {}
    for node in spec.nodes:
        if "block" in node:
            name, stages[name] = node["block"]
            convs.setdefault(name, []).append(node["name"])
    readers = {}
    for node in spec.nodes:
        for source in node["inputs"]:
            readers.setdefault(source, []).append(node)
    blocks = []
    for name, layers in convs.items():
        norm = next(
            (
                n
                for n in readers.get(layers[-1], ())
                if n["class_name"] in graph_analysis.NORMS
            ),
            None,
        )
        residual = norm is not None and any(
            n["class_name"] == "Add" for n in readers.get(norm["name"], ())
        )
        last_norm = norm["name"] if norm else None
        blocks.append(Block(name, last_norm, residual, tuple(layers), stages[name]))
    return blocks


def graph_blocks(spec):
    """The blocks depth growth adds: a named family's (`depth="named"`),
    the repeatable residual blocks (`depth="blocks"`), or the layers depth
    growth inserted, each a one-layer `Block`."""
    if spec.depth == "named":
        return _named_blocks(spec)
    if spec.depth == "blocks":
        return [
            Block(
                b.name,
                None,
                residual=True,
                stage=b.stage,
                layers=b.layers,
                zero_layers=b.zero_layers,
            )
            for b in spec.graph_blocks()
        ]
    stage_of = {site: stage for stage, site in enumerate(spec.depth_sites())}
    return [
        Block(name, None, residual=False, convs=(producer,), stage=stage_of[site])
        for name, producer, site in spec.inserted_blocks()
    ]


def _named_unit_groups(spec):
    """The groups a named family's producers name (`"unit_group"`), each
    listed once the last layer reading it is made."""
    notes = {n["name"]: n["unit_group"] for n in spec.nodes if "unit_group" in n}
    position = {n["name"]: i for i, n in enumerate(spec.nodes)}
    named = []
    for group in spec.analysis.groups:
        names = [notes[p] for p in group.producers if p in notes]
        if names:
            name, width_index = names[-1]
            unit_group = UnitGroup(name=name, width_index=width_index, **group.roles())
            last_reader = max(
                (position[c] for c in group.consumers), default=len(position)
            )
            named.append((last_reader, unit_group))
    return [group for _, group in sorted(named, key=lambda pair: pair[0])]


def graph_unit_groups(spec):
    """Every group with a stated width; growable ones carry their width
    index (a named family's: the family's width index)."""
    if spec.depth == "named":
        return _named_unit_groups(spec)
    growable = [g.name for g in spec.analysis.growable]
    return [
        UnitGroup(
            name=group.name,
            width_index=growable.index(group.name) if group.growable else None,
            **group.roles(),
        )
        for group in spec.analysis.groups
        if group.width_keys
    ]
