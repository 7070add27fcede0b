"""The graph family: a user's own Keras model as a growable spec.

A `GraphSpec` is the user's layer graph as data: one node per layer (its
Keras class name, its config and the names of the layers it reads). The
widths of its Dense and Conv2D layers live in their configs.
`keras_grow.specs.graph_analysis` says which channels grow together, which
groups may grow (and why the others not) and where a new layer may go.
`keras_grow.build.graph` turns a spec into Keras layers and a Keras model
into a spec.
"""

import copy
import dataclasses
import json
import re
from keyword import iskeyword

from keras_grow.specs import base
from keras_grow.specs import graph_analysis
from keras_grow.specs import graph_blocks
from keras_grow.specs.graph_analysis import EMBEDDINGS
from keras_grow.specs.graph_analysis import MASK_KEYWORDS
from keras_grow.specs.graph_analysis import MERGES
from keras_grow.specs.graph_analysis import PRODUCERS
from keras_grow.specs.graph_analysis import SUPPORTED
from keras_grow.specs.graph_analysis import analyse

FAMILY_PREFIX = "Graph"
DEPTH_MODES = ("sites", "blocks", "named")
INPUT_DTYPES = ("float32", "float16", "bfloat16", "int32", "int64", "uint8")
SIDE_INPUT_DTYPES = INPUT_DTYPES + ("bool",)
# The names Keras gives an unnamed `keras.Input` (`keras.Input(shape)`).
KERAS_INPUT_NAME = re.compile(r"input_layer(_\d+)?")


def _argument_name(name):
    """Whether `name` can name an argument of a served signature."""
    return name.isidentifier() and not iskeyword(name)


def _normalised(entries, field):
    """`entries` as JSON data: dicts of lists, equal after a JSON round
    trip."""
    try:
        return tuple(json.loads(json.dumps(list(entries))))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"GraphSpec `{field}` must be JSON data (dicts, lists, strings, "
            f"numbers); {error}."
        ) from None


@base.register_family
@dataclasses.dataclass(frozen=True)
class GraphSpec(base.NetSpec):
    """A user's own layer graph (see `keras_grow.GrowableModel.from_keras`).

    Widths are those of the growable unit groups (`analyse`), in graph
    order: `with_widths` sets every producer of a group at once (both
    branches of an `Add` grow together). Depth stages are the layers a new
    layer can follow (`depth_sites`); `with_block_added(stage)` inserts a
    Dense (rank-2 input) or 3x3 Conv2D, as wide as its input and followed
    by a ReLU where the site's output is a ReLU's, after that stage's last
    inserted layer.

    Args:
        input_shape: tuple of int. One example's shape, batch axis left out.
        num_classes: int. Width of the model's output.
        nodes: tuple of dict. One per layer, in an order where a layer
            comes after those it reads: `{"name", "class_name", "config",
            "inputs"}` (the Keras class name and `get_config()`, the names
            of the layers it reads, `input_name` for the model input),
            `"keyword_inputs"` (`{keyword: side input}`, a mask a layer
            reads, `MASK_KEYWORDS`) and `"site"` for a layer depth growth
            inserted.
        input_name: str. How nodes name the model's input (the examples).
        output: str. The node whose output is the model's output.
        name: str. The model's name, shown in the notation.
        depth: str. What depth growth adds: `"sites"`, a layer after a
            layer (`depth_sites`); `"blocks"`, a copy of a chain's last
            residual block (`graph_blocks`); `"named"`, a named family's
            net (`NetSpec.lowered()`): its nodes name its blocks and unit
            groups, and the family's spec grows it.
        input_dtype: str. The input's dtype: `"float32"`, or an integer
            dtype for token ids (an `Embedding` reads them) or pixels a
            `Rescaling` scales.
        side_inputs: tuple of dict. Further inputs, `{"name", "shape",
            "dtype"}`, that layers read only as masks (`"keyword_inputs"`),
            such as a text model's padding mask. With side inputs the model
            takes a dict of tensors by name, `input_name` the examples.
        input_mean, input_std, weight_decay: must stay at their defaults;
            the graph's own layers normalise and regularise.
    """

    kind = "graph"

    nodes: tuple = ()
    input_name: str = "input"
    output: str = ""
    name: str = "model"
    input_dtype: str = "float32"
    depth: str = "sites"
    side_inputs: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        if self.input_mean is not None or self.weight_decay:
            raise ValueError(
                "A GraphSpec keeps the normalisation and regularisers of its "
                "own layers; `input_mean`, `input_std` and `weight_decay` must "
                "stay unset."
            )
        if self.depth not in DEPTH_MODES:
            raise ValueError(
                f"`depth` must be one of {DEPTH_MODES}; received {self.depth!r}."
            )
        if self.input_dtype not in INPUT_DTYPES:
            raise ValueError(
                f"`input_dtype` must be one of {INPUT_DTYPES}; received "
                f"{self.input_dtype!r}."
            )
        self._set("nodes", _normalised(self.nodes, "nodes"))
        self._set("side_inputs", _normalised(self.side_inputs, "side_inputs"))
        self._check_side_inputs()
        self._check_nodes()
        analysis = analyse(self)
        object.__setattr__(self, "_analysis", analysis)
        for group in analysis.groups:
            widths = {self._entry(key) for key in group.width_keys}
            if len(widths) > 1:
                raise ValueError(
                    f"Layers {list(group.layers)} hold one unit group (added "
                    f"together, or reshaped), so they need one width; received "
                    f"widths {sorted(widths)}."
                )

    # --- validation ----------------------------------------------------

    def _check_side_inputs(self):
        names = [self.input_name]
        for side in self.side_inputs:
            if not isinstance(side, dict) or set(side) != {"name", "shape", "dtype"}:
                raise ValueError(
                    "Every side input is a dict with 'name', 'shape' and "
                    f"'dtype'; received {side!r}."
                )
            if side["name"] in names:
                raise ValueError(f"Input name '{side['name']}' appears twice.")
            base.check_positive(
                base.as_int_tuple(side["shape"], "shape"), "shape", "input dimension"
            )
            if side["dtype"] not in SIDE_INPUT_DTYPES:
                raise ValueError(
                    f"Side input '{side['name']}' has dtype {side['dtype']!r}; "
                    f"known: {SIDE_INPUT_DTYPES}."
                )
            names.append(side["name"])

    def _check_keyword_inputs(self, node):
        sides = {side["name"] for side in self.side_inputs}
        allowed = MASK_KEYWORDS.get(node["class_name"], ())
        for keyword, source in node.get("keyword_inputs", {}).items():
            if keyword not in allowed or source not in sides:
                raise ValueError(
                    f"Layer '{node['name']}' reads '{source}' as `{keyword}`; a "
                    "layer reads a side input of the model (one of "
                    f"{sorted(sides)}) only as a mask keyword: "
                    f"{dict(MASK_KEYWORDS)}."
                )

    def _check_nodes(self):
        if not self.nodes:
            raise ValueError("A GraphSpec needs at least one layer node.")
        seen = {self.input_name}
        for node in self.nodes:
            if not isinstance(node, dict) or not {
                "name",
                "class_name",
                "config",
                "inputs",
            } <= set(node):
                raise ValueError(
                    "Every GraphSpec node is a dict with 'name', 'class_name', "
                    f"'config' and 'inputs'; received {node!r}."
                )
            name, cls = node["name"], node["class_name"]
            if cls not in SUPPORTED:
                raise ValueError(
                    f"Layer '{name}' is {base.a_or_an(cls)}, which keras_grow "
                    f"cannot grow through. Supported layers: {', '.join(SUPPORTED)}."
                )
            if name in seen:
                raise ValueError(f"Layer name '{name}' appears twice in the graph.")
            missing = [i for i in node["inputs"] if i not in seen]
            if not node["inputs"] or missing:
                raise ValueError(
                    f"Layer '{name}' reads {node['inputs']}; every input must be "
                    f"the model input '{self.input_name}' or an earlier layer "
                    f"(unknown or later: {missing})."
                )
            self._check_keyword_inputs(node)
            if (cls in MERGES) != (len(node["inputs"]) > 1):
                raise ValueError(
                    f"Layer '{name}' ({cls}) reads {len(node['inputs'])} inputs; "
                    "only Add, Concatenate and Multiply read several, and they need "
                    "two or more."
                )
            if cls == "Concatenate" and node["config"].get("axis", -1) != -1:
                raise ValueError(
                    f"Concatenate '{name}' joins axis {node['config']['axis']}; "
                    "keras_grow supports joining channels (axis=-1) only."
                )
            seen.add(name)
        if self.output not in seen or self.output == self.input_name:
            raise ValueError(
                f"`output` must name a layer of the graph; received {self.output!r}."
            )

    def _node(self, name):
        return next(n for n in self.nodes if n["name"] == name)

    def _entry(self, width_key):
        """int. The width a node's config states (a `GraphGroup` width key)."""
        layer, key, index = width_key
        value = self._node(layer)["config"][key]
        return value if index is None else value[index]

    def _width(self, group):
        return self._entry(group.width_keys[0])

    # --- the family interface -----------------------------------------

    def lowered(self):
        return self

    @property
    def output_activation(self):
        return graph_analysis.output_activation(self._node(self.output))

    @property
    def analysis(self):
        """`GraphAnalysis` of the graph."""
        return self._analysis

    @property
    def family(self):
        return f"{FAMILY_PREFIX}({self.name})"

    @property
    def notation(self):
        """str. `Graph(<name>)-` and the widths; the graph itself is read
        back from JSON (`keras_grow.specs.from_json`), not from this."""
        return f"{self.family}-" + "-".join(str(w) for w in self.widths)

    @property
    def takes_integer_inputs(self):
        """bool. Whether every layer reading the input is a `Rescaling`
        (the Keras way to take uint8 images) or an embedding of token ids."""
        return all(
            n["class_name"] in ("Rescaling", *EMBEDDINGS)
            for n in self.nodes
            if self.input_name in n["inputs"]
        )

    @property
    def model_inputs(self):
        """tuple of `ModelInput`: the examples, then the side inputs.

        The examples are named `input_name` (a model of your own: the
        name you gave its `keras.Input`, or its key in the dict the model
        takes), which a dict of inputs and the served signature use, as
        in Keras. A name Keras gave (`input_layer_3`) depends on how many
        inputs the process built before, so it would make no stable key,
        and a name that is no Python identifier (`in`, `input-1`) can name
        no argument of the signature: such examples are named `images`,
        as a named family's."""
        examples = self.input_name
        if KERAS_INPUT_NAME.fullmatch(examples) or not _argument_name(examples):
            examples = base.INPUT
        return (
            base.ModelInput(examples, tuple(self.input_shape), self.input_dtype),
            *(
                base.ModelInput(s["name"], tuple(s["shape"]), s["dtype"])
                for s in self.side_inputs
            ),
        )

    @property
    def widths(self):
        """tuple of int. The width of each growable group, in graph order."""
        return tuple(self._width(g) for g in self._analysis.growable)

    def with_widths(self, widths):
        """Returns the spec with each growable group `widths[i]` wide."""
        widths = base.as_int_tuple(widths, "widths")
        growable = self._analysis.growable
        if len(widths) != len(growable):
            raise ValueError(
                f"{self.family} has {len(growable)} growable unit groups "
                f"({', '.join(g.name for g in growable)}); received "
                f"{len(widths)} widths {widths}."
            )
        base.check_positive(widths, "widths", "layer width")
        nodes = {n["name"]: n for n in copy.deepcopy(list(self.nodes))}
        for group, width in zip(growable, widths):
            for layer, key, index in group.width_keys:
                config = nodes[layer]["config"]
                if index is None:
                    config[key] = width
                else:
                    config[key] = list(config[key])
                    config[key][index] = width
        return self.replace(nodes=tuple(nodes.values()))

    def with_stage_widths(self, stages):
        stages = tuple(tuple(s) for s in stages)
        if len(stages) != 1 or len(stages[0]) != len(self.widths):
            raise ValueError(
                "A graph's depth does not scale: `scaled` and progressive "
                "growth change its widths only (depth=1.0); insert layers with "
                "`with_block_added(stage)`."
            )
        return self.with_widths(stages[0])

    def with_layer_widened(self, layer, width):
        """Returns the spec with the units of Dense/Conv2D `layer` (and of
        every layer added to it) `width` wide.

        Raises:
            ValueError: naming the layer and why, if its units cannot grow.
        """
        for group in self._analysis.groups:
            if layer in group.layers:
                if not group.growable:
                    raise ValueError(
                        f"The units of layer '{layer}' cannot grow: "
                        f"{'; '.join(group.fixed)}."
                    )
                index = self._analysis.growable.index(group)
                widths = list(self.widths)
                widths[index] = width
                return self.with_widths(widths)
        layers = [g.layers[0] for g in self._analysis.groups if g.width_keys]
        raise ValueError(
            f"Layer {layer!r} of {self.family} states no width; the layers "
            f"that do (Dense, Conv, Embedding, MultiHeadAttention heads, ...) "
            f"are: {layers}."
        )

    def growth_report(self):
        """list of str. One line per unit group: width and whether (or why
        not) it grows."""
        lines = []
        for group in self._analysis.groups:
            if not group.width_keys:
                continue
            verdict = "grows" if group.growable else "fixed: " + "; ".join(group.fixed)
            if group.growable and group.notes:
                verdict += " (" + "; ".join(group.notes) + ")"
            lines.append(
                f"{group.name} ({', '.join(group.layers)}): "
                f"{self._width(group)} units, {verdict}"
            )
        return lines

    @property
    def depth_stages(self):
        if self.depth == "blocks":
            return len(self.depths)
        return len(self._analysis.sites)

    # --- depth by blocks -------------------------------------------------

    def graph_blocks(self):
        """list of `graph_blocks.GraphBlock`: the repeatable residual
        blocks, chain by chain (see `keras_grow.specs.graph_blocks`)."""
        return graph_blocks.blocks(self.nodes)

    @property
    def depths(self):
        """tuple of int. Blocks per chain (`depth="blocks"`)."""
        self._check_blocks_mode("depths")
        stages = [b.stage for b in self.graph_blocks()]
        return tuple(stages.count(s) for s in range(max(stages, default=-1) + 1))

    @property
    def residual(self):
        """bool. Whether a new block is added to a stream (blocks mode), so
        zeroing its last projections makes it the identity."""
        return self.depth == "blocks"

    def with_depths(self, depths):
        """Returns the spec with `depths[i]` blocks in chain `i`: copies of
        its last block added after it, or its last blocks removed (their
        readers read the stream they read)."""
        self._check_blocks_mode("with_depths")
        depths = base.as_int_tuple(depths, "depths")
        if len(depths) != len(self.depths):
            raise ValueError(
                f"{self.family} has {len(self.depths)} chains of blocks; "
                f"received {len(depths)} depths {depths}."
            )
        base.check_positive(depths, "depths", "chain depth")
        spec = self
        for stage, depth in enumerate(depths):
            while spec.depths[stage] < depth:
                spec = spec.with_block_added(stage)
            while spec.depths[stage] > depth:
                last = spec._last_block(stage)
                spec = spec.replace(nodes=graph_blocks.removed(spec.nodes, last))
        return spec

    def scaled(self, width=1.0, depth=1.0):
        """The spec `width` times as wide in every width entry and, with
        `depth="blocks"`, `depth` times as many blocks in every chain (new
        blocks copies of each chain's last); see `NetSpec.scaled`."""
        if self.depth != "blocks":
            return super().scaled(width, depth)
        base.check_scale_factors(width, depth)
        grown = self.with_depths(
            [max(1, base.round_half_up(d * depth)) for d in self.depths]
        )
        return grown.with_widths(
            [max(1, base.round_half_up(w * width)) for w in grown.widths]
        )

    def _widths_by_base(self):
        """`{layer: width}` of every growable group, by the layer its first
        width entry was first copied from (a repeated block's groups
        answer for the block they copy)."""
        return {
            self._copied_from(g): w
            for g, w in zip(self._analysis.growable, self.widths)
        }

    def progress_pairs(self, target):
        """(start value, target value) of every dimension progressive
        growth from this spec to `target` moves (`depth="blocks"`): each
        chain's block count, then each of the target's widths against the
        width of the group it starts from."""
        if len(self.depths) != len(target.depths):
            raise ValueError(
                f"{target.notation} has {len(target.depths)} chains of blocks, "
                f"{self.notation} {len(self.depths)}."
            )
        start = self._widths_by_base()
        pairs = list(zip(self.depths, target.depths))
        for group, width in zip(target.analysis.growable, target.widths):
            pairs.append((start.get(target._copied_from(group), width), width))
        return pairs

    def towards(self, target, between):
        """The spec `between(start value, target value)` of the way to
        `target` in every block count and width (`progress_pairs`)."""
        grown = self.with_depths(
            [between(a, b) for a, b in zip(self.depths, target.depths)]
        )
        start = self._widths_by_base()
        goal = dict(zip((g.name for g in target.analysis.growable), target.widths))
        widths = []
        for group in grown.analysis.growable:
            old = start[grown._copied_from(group)]
            widths.append(between(old, goal.get(group.name, old)))
        return grown.with_widths(widths)

    def _last_block(self, stage):
        return [b for b in self.graph_blocks() if b.stage == stage][-1]

    def _copied_from(self, group):
        """str. The layer `group`'s first width entry was first copied
        from (itself where it is no copy)."""
        layer = group.layers[0]
        return self._node(layer).get("copy_of", layer)

    def _check_blocks_mode(self, what):
        if self.depth != "blocks":
            raise ValueError(
                f"`{what}` counts repeatable blocks: build the spec with "
                f"depth='blocks' (GrowableModel.from_keras(model, "
                f"depth='blocks')); this one inserts layers at sites."
            )

    def depth_sites(self):
        """tuple of str. The layer each depth stage inserts after."""
        return self._analysis.sites

    def with_block_added(self, stage):
        """Returns the spec one block deeper at depth stage `stage`.

        With `depth="blocks"`, chain `stage`'s last block is repeated after
        itself (`graph_blocks.repeated`: its layers copied, named
        `<layer>_x<k>`). Otherwise a new layer goes after depth site
        `stage`:

        The new layer follows the layers inserted there before, reads
        their output and is as wide: a Dense on rank-2 tensors, a 3x3
        'same' Conv2D on maps, then a ReLU if the site's output is a
        ReLU's (so an identity kernel keeps the function either way). The
        layers that read the site's chain read the new layer instead.
        Named `{site}_deep{k}_dense` (or `_conv`) and `{site}_deep{k}_relu`.
        """
        if self.depth == "named":
            raise ValueError(
                f"{self.family} is a named family's net; grow its spec "
                "(`with_block_added` of the family's spec) instead."
            )
        self._check_depth_stage(stage)
        if self.depth == "blocks":
            last = self._last_block(stage)
            return self.replace(nodes=graph_blocks.repeated(self.nodes, last))
        site = self._analysis.sites[stage]
        chain = [n for n in self.nodes if n.get("site") == site]
        tail = chain[-1]["name"] if chain else site
        count = sum(n["class_name"] in PRODUCERS for n in chain)
        prefix = f"{site}_deep{count + 1}"
        width = self._analysis.channels[tail]
        if self._analysis.ranks[tail] == 2:
            layer = {
                "name": f"{prefix}_dense",
                "class_name": "Dense",
                "config": {"name": f"{prefix}_dense", "units": width},
            }
        else:
            layer = {
                "name": f"{prefix}_conv",
                "class_name": "Conv2D",
                "config": {
                    "name": f"{prefix}_conv",
                    "filters": width,
                    "kernel_size": [3, 3],
                    "padding": "same",
                },
            }
        layer.update(inputs=[tail], site=site)
        added = [layer]
        if site in self._analysis.relu_sites:
            added.append(
                {
                    "name": f"{prefix}_relu",
                    "class_name": "ReLU",
                    "config": {"name": f"{prefix}_relu"},
                    "inputs": [layer["name"]],
                    "site": site,
                }
            )
        end = added[-1]["name"]
        nodes = []
        for node in copy.deepcopy(list(self.nodes)):
            node["inputs"] = [end if i == tail else i for i in node["inputs"]]
            nodes.append(node)
            if node["name"] == tail:
                nodes += added
        return self.replace(nodes=tuple(nodes))

    def inserted_blocks(self):
        """list of (block name, producer name, site): the layers depth
        growth inserted, in graph order."""
        return [
            (n["name"].rsplit("_", 1)[0], n["name"], n["site"])
            for n in self.nodes
            if "site" in n and n["class_name"] in PRODUCERS
        ]
