"""The graph family in Keras: a user's model to a spec, a spec to a graph.

`spec_from_keras` reads a Sequential or functional model (one output,
each layer called once, nested graph models such as KerasHub backbones
read layer by layer; one input of examples, and masks beside it) into a
`keras_grow.specs.GraphSpec`;
`build_graph` rebuilds the layers from their configs, by name, so weights
find their way across a rebuild like every other family's.
"""

import importlib
import inspect
import json

import keras

from keras_grow import gated_layers
from keras_grow import keras_compat
from keras_grow import layers as own_layers
from keras_grow.build.structure import Block
from keras_grow.build.structure import UnitGroup
from keras_grow.specs import graph as graph_specs
from keras_grow.specs import graph_analysis
from keras_grow.specs.base import a_or_an

# Layer classes of keras_grow's own a graph may hold, by class name.
_OWN_LAYERS = {"PositionEmbedding": own_layers.PositionEmbedding}
# Layer classes that hold no weights (a reserved block may hold any).
WEIGHTLESS = (
    "Activation",
    "Add",
    "Dropout",
    "Identity",
    "ReLU",
    "SpatialDropout2D",
)
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


def leaf_layers(model):
    """The operations of `model`'s graph, each nested model that computes
    its graph (a KerasHub backbone) replaced by its own: layers, and
    operations that are not layers (`x[:, 0]`), which keras_grow refuses;
    not the masks Keras propagates by itself (`implicit_masks`)."""
    return _leaves(model, implicit_masks(model))  # nested models' masks too


def _leaves(model, masks):
    operations = getattr(model, "operations", None) or model.layers
    leaves = []
    for layer in operations:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in masks:
            continue
        if isinstance(layer, keras.Model) and keras_compat.computes_its_graph(layer):
            leaves += _leaves(layer, masks)
        else:
            leaves.append(layer)
    return leaves


def _layer_problem(layer):
    """str or `None`: why keras_grow cannot take `layer`."""
    if not isinstance(layer, keras.layers.Layer):
        return (
            f"'{layer.name}' is a Keras operation ({type(layer).__name__}) "
            "called on a tensor, not a layer; keras_grow reads graphs of "
            "layers. Use a layer for it (e.g. GlobalAveragePooling1D for "
            "x[:, 0])."
        )
    cls = graph_analysis.node_class(layer)
    if isinstance(layer, keras.Model):
        return (
            f"Layer '{layer.name}' is a nested subclassed model, whose "
            "computation keras_grow cannot see; nested Sequential and "
            "functional models (KerasHub backbones included) are read "
            "layer by layer."
        )
    if cls not in graph_analysis.SUPPORTED or type(layer) is not _layer_class(cls):
        return (
            f"Layer '{layer.name}' is {a_or_an(cls)}, which keras_grow cannot "
            "grow through."
        )
    if cls in graph_analysis.RECURRENT:
        for key, why in (
            ("return_state", "returns its states as outputs of their own"),
            ("stateful", "keeps its state between batches, for one batch size"),
        ):
            if getattr(layer, key):
                return (
                    f"{cls} '{layer.name}' {why} ({key}=True); keras_grow "
                    "rebuilds it with one output, for any batch size."
                )
    return None


def _tensors(value):
    """The serialized tensors in a recorded call argument (any nesting)."""
    if _is_tensor(value):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def implicit_masks(model):
    """set of str. The operations of `model` (and of the graph models nested
    in it) that compute a mask Keras propagates by itself: `not_equal(ids,
    0)` of token ids an embedding with `mask_zero=True` reads (Keras' or
    KerasHub's), passed on only
    as layers' `mask` argument. A graph rebuilt from the same layers
    propagates the same mask, so such an operation is not a node and the
    `mask` it feeds is not a recorded argument."""
    entries = keras.Model(*_ends(model)).get_config()["layers"]
    embedded, read_otherwise = set(), set()
    for entry in entries:
        for call in entry["inbound_nodes"]:
            kwargs = call.get("kwargs", {})
            others = [v for k, v in kwargs.items() if k != "mask"]
            for tensor in _tensors([call["args"], others]):
                read_otherwise.add(tensor["config"]["keras_history"][0])
            if entry.get("config", {}).get("mask_zero"):  # an embedding that masks
                embedded.update(
                    t["config"]["keras_history"][0] for t in _tensors(call["args"])
                )
    names = set()
    for entry in entries:
        calls = entry["inbound_nodes"]
        args = calls[0]["args"] if len(calls) == 1 else ()
        if (
            entry["class_name"] == "NotEqual"
            and len(args) == 2
            and _is_tensor(args[0])
            and args[1] == 0
            and args[0]["config"]["keras_history"][0] in embedded
            and entry["name"] not in read_otherwise
        ):
            names.add(entry["name"])
    for layer in model.layers:
        if isinstance(layer, keras.Model) and keras_compat.computes_its_graph(layer):
            names |= implicit_masks(layer)
    return names


def _check_layers(model):
    """Raises naming every layer keras_grow cannot take, all at once."""
    leaves = leaf_layers(model)
    problems = [p for p in map(_layer_problem, leaves) if p]
    if problems:
        raise ValueError(
            f"Model '{model.name}' has {len(problems)} layer(s) keras_grow "
            "cannot take: " + " ".join(problems) + " Supported layers: "
            f"{', '.join(graph_analysis.SUPPORTED)}."
        )
    names = [layer.name for layer in leaves]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(
            f"Model '{model.name}' and the models nested in it name several "
            f"layers {twice}; keras_grow reads them as one graph, by name. "
            "Give the layers distinct names."
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


def _history(tensor, model_name):
    layer, node_index, tensor_index = tensor["config"]["keras_history"]
    if node_index or tensor_index:
        raise ValueError(
            f"Model '{model_name}' calls layer '{layer}' more than once (or uses "
            "a second output of it); keras_grow grows graphs whose layers are "
            "each called once."
        )
    return layer


def _is_tensor(value):
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _is_default(layer, keyword, value):
    """Whether a recorded call argument is one Keras records for every
    symbolic call: `training=False` or the layer's own default (`True` for
    the random image layers), or no mask. A model called with `training`
    passes its value on either way."""
    if keyword == "training":
        default = inspect.signature(layer.call).parameters.get("training")
        return value is False or (default is not None and value is default.default)
    return keyword == "mask" and all(v is None for v in keras.tree.flatten(value))


def _pairs(inputs, argument):
    """(input layer name, serialized tensor) pairs: a model's input
    structure (`[name, 0, 0]` leaves) against what it was called with."""
    if isinstance(inputs, dict):
        return [pair for key in inputs for pair in _pairs(inputs[key], argument[key])]
    if isinstance(inputs[0], str):
        return [(inputs[0], argument)]
    if _is_tensor(argument) and len(inputs) == 1:
        return _pairs(inputs[0], argument)
    return [pair for i, a in zip(inputs, argument) for pair in _pairs(i, a)]


class _GraphReader:
    """Reads a model's graph into `GraphSpec` nodes, nested graph models
    inlined. A node names what it reads in the graph's own terms: a model
    input by its key (its name, for a single input), a layer by its name,
    a nested model by the node that computes its output."""

    def __init__(self, model):
        self.model_name = model.name
        self.nodes = []
        self.implicit_masks = implicit_masks(model)

    def read(self, model, bind):
        """Reads `model`'s layers into `self.nodes`; `bind` maps its input
        structure (`input_layers` of its config) to `{input layer name:
        source}`. Returns the source of its output."""
        config = keras.Model(*_ends(model)).get_config()
        sources = bind(config["input_layers"])
        layers = {layer.name: layer for layer in model.layers}
        for entry in config["layers"]:
            if (
                entry["class_name"] == "InputLayer"
                or entry["name"] in self.implicit_masks
            ):
                continue
            name, layer = entry["name"], layers[entry["name"]]
            call = self._one_call(entry)
            if isinstance(layer, keras.Model):
                (argument,) = call["args"]
                sources[name] = self.read(
                    layer,
                    lambda inputs, argument=argument, outer=dict(sources): {
                        inner: outer[_history(tensor, self.model_name)]
                        for inner, tensor in _pairs(inputs, argument)
                    },
                )
                continue
            self.nodes.append(self._node(entry, layer, call, sources))
            sources[name] = name
        output = config["output_layers"]
        output = output if isinstance(output[0], str) else output[0]
        return sources[_history({"config": {"keras_history": output}}, model.name)]

    def _one_call(self, entry):
        if len(entry["inbound_nodes"]) != 1:
            raise ValueError(
                f"Layer '{entry['name']}' is called "
                f"{len(entry['inbound_nodes'])} times; keras_grow grows graphs "
                "whose layers are each called once."
            )
        return entry["inbound_nodes"][0]

    def _source(self, tensor, sources):
        return sources[_history(tensor, self.model_name)]

    def _implicit(self, keyword, value):
        """Whether a `mask` argument is one Keras propagates by itself
        (`implicit_masks`)."""
        tensors = _tensors(value)
        return (
            keyword == "mask"
            and bool(tensors)
            and all(
                t["config"]["keras_history"][0] in self.implicit_masks for t in tensors
            )
        )

    def _node(self, entry, layer, call, sources):
        """The node of one layer call: what it reads positionally, the
        keyword arguments kept (`_CALL_KWARGS`) and the masks it reads
        (`MASK_KEYWORDS`)."""
        name, cls = entry["name"], graph_analysis.node_class(layer)
        kwargs = {
            k: v
            for k, v in call.get("kwargs", {}).items()
            if not _is_default(layer, k, v) and not self._implicit(k, v)
        }
        mask_keywords = graph_analysis.MASK_KEYWORDS.get(cls, ())
        masks = {k: v for k, v in kwargs.items() if k in mask_keywords}
        constants = {k: v for k, v in kwargs.items() if k not in masks}
        given = sorted(
            [k for k, v in masks.items() if not _is_tensor(v)]
            + [k for k in constants if k not in _CALL_KWARGS.get(cls, ())]
        )
        if given:
            raise ValueError(
                f"Layer '{name}' is called with keyword arguments {given}; "
                "keras_grow rebuilds calls with one positional input, the "
                f"constants {list(_CALL_KWARGS.get(cls, ()))} and masks "
                f"{list(mask_keywords)} that are inputs of the model."
            )
        args = call["args"]
        if cls in graph_analysis.ATTENTION:
            inputs = sorted({self._source(t, sources) for t in args})
            if len(inputs) != 1:
                raise ValueError(
                    f"MultiHeadAttention '{name}' attends from one tensor to "
                    f"others ({inputs}); keras_grow grows self-attention "
                    "(query, value and key one tensor)."
                )
        else:
            (arg,) = args
            tensors = arg if isinstance(arg, list) else [arg]
            inputs = [self._source(t, sources) for t in tensors]
        node = {
            "name": name,
            "class_name": cls,
            "config": _layer_config(layer),
            "inputs": inputs,
        }
        if constants:
            node["call"] = constants
        if masks:
            node["keyword_inputs"] = {
                k: self._source(t, sources) for k, t in masks.items()
            }
        return node


def _ends(model):
    """(input structure, output) of a graph model's own graph (a
    Sequential's are those of the functional graph it holds)."""
    if isinstance(model, keras.Sequential):
        return model.inputs[0], model.outputs[0]
    return model.input, model.output


def _input_keys(model, inputs):
    """{input layer name: key} of a model's input structure `inputs`: a
    single input keyed by its layer's name, several by their keys in the
    dict the model takes."""
    if isinstance(inputs, dict):
        return {_pairs(leaf, leaf)[0][0]: key for key, leaf in inputs.items()}
    names = [name for name, _ in _pairs(inputs, inputs)]
    if len(names) != 1:
        raise ValueError(
            f"Model '{model.name}' takes a list of {len(names)} inputs; "
            "keras_grow reads several inputs given as a dict by name "
            "(keras.Model({'token_ids': ..., 'padding_mask': ...}, ...))."
        )
    return {names[0]: names[0]}


def _functional_nodes(model):
    """(nodes, the examples' input key, side inputs, output) of a graph
    model: the input that layers read positionally holds the examples;
    the others are masks layers read by keyword."""
    if len(model.outputs) != 1:
        raise ValueError(
            f"Model '{model.name}' has {len(model.outputs)} outputs; keras_grow "
            "grows models with one output."
        )
    keys = {}

    def bind(inputs):
        keys.update(_input_keys(model, inputs))
        return dict(keys)

    reader = _GraphReader(model)
    output = reader.read(model, bind)
    nodes = reader.nodes
    struct, _ = _ends(model)
    if isinstance(struct, (list, tuple)):
        (struct,) = struct  # one input in a list (more are refused above)
    tensors = {
        key: struct[key] if isinstance(struct, dict) else struct
        for key in keys.values()
    }
    read = [k for k in tensors if any(k in n["inputs"] for n in nodes)]
    masks = {k for n in nodes for k in n.get("keyword_inputs", {}).values()}
    unread = sorted(set(tensors) - set(read) - masks)
    if len(read) != 1 or unread:
        raise ValueError(
            f"Model '{model.name}' has layers reading inputs {read} (and inputs "
            f"{unread} read by none); keras_grow grows models whose layers read "
            "one input of examples, and further inputs only as masks "
            f"({dict(graph_analysis.MASK_KEYWORDS)})."
        )
    sides = [
        {
            "name": key,
            "shape": _known_shape(model, tensors[key]),
            "dtype": keras.backend.standardize_dtype(tensors[key].dtype),
        }
        for key in tensors
        if key != read[0]
    ]
    return nodes, read[0], tensors[read[0]], sides, output


def _known_shape(model, tensor):
    shape = tuple(tensor.shape[1:])
    if None in shape:
        raise ValueError(
            f"Model '{model.name}' takes inputs of shape {shape}; "
            "keras_grow needs every dimension but the batch known."
        )
    return shape


def spec_from_keras(model, depth="sites"):
    """Reads a Keras model into a `GraphSpec`.

    Args:
        model: a built `keras.Sequential` or functional `keras.Model` with
            one output and one input of examples of a fixed shape; masks
            beside it (a dict of inputs) that layers read by keyword
            (`graph_analysis.MASK_KEYWORDS`); nested graph models.
        depth: str. `GraphSpec.depth`: `"sites"` or `"blocks"` (`"named"`
            is a named family's, which a user's model is not).

    Returns:
        A `keras_grow.specs.GraphSpec` with the model's layers and widths.

    Raises:
        ValueError: naming the layer and why, for a layer keras_grow cannot
            grow through, a shared layer, several inputs layers read,
            several outputs, or an input shape with unknown dimensions.
        TypeError: for something that is not a Keras model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model; received {model!r}.")
    if depth not in ("sites", "blocks"):
        raise ValueError(
            f"`depth` must be 'sites' (a layer after a layer) or 'blocks' "
            f"(residual blocks repeated); received {depth!r}."
        )
    if not keras_compat.computes_its_graph(model):
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
    nodes, input_name, examples, side_inputs, output = _functional_nodes(model)
    return graph_specs.GraphSpec(
        input_shape=_known_shape(model, examples),
        num_classes=int(model.outputs[0].shape[-1]),
        nodes=tuple(nodes),
        input_name=input_name,
        output=output,
        name=model.name,
        input_dtype=keras.backend.standardize_dtype(examples.dtype),
        depth=depth,
        side_inputs=tuple(side_inputs),
    )


def build_graph(spec, gated=None):
    """Builds the functional graph of a `GraphSpec`: its inputs named as
    `GraphSpec.model_inputs` names them (one is given as a tensor, several
    as a dict by name). Layers named
    in `gated` (`{layer: config beyond the node's}`) are their class's
    `keras_grow.gated_layers` subclass, off."""
    gated = gated or {}
    inputs = {
        i.name: keras.Input(i.shape, dtype=i.dtype, name=i.name)
        for i in spec.model_inputs
    }
    examples = inputs[spec.model_inputs[0].name]
    tensors = {spec.input_name: examples, **inputs}
    for node in spec.nodes:
        cls = _layer_class(node["class_name"])
        config = dict(node["config"], name=node["name"])
        if node["name"] in gated:
            cls = gated_layers.GATED[node["class_name"]]
            config.update(gated[node["name"]])
        layer = cls.from_config(config)
        args = [tensors[name] for name in node["inputs"]]
        if node["class_name"] in graph_analysis.MERGES:
            args = [args]
        elif node["class_name"] in graph_analysis.ATTENTION:
            args = args * 2  # self-attention: query and value
        masks = {k: tensors[v] for k, v in node.get("keyword_inputs", {}).items()}
        tensors[node["name"]] = layer(*args, **node.get("call", {}), **masks)
    model_input = examples if len(inputs) == 1 else inputs
    return keras.Model(model_input, tensors[spec.output], name="body")


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
