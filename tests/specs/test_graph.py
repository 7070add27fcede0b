"""The graph family's spec: analysis, widths, depth sites, refusals (no Keras)."""

import pytest

from keras_grow import specs
from keras_grow.specs import graph_analysis


def node(name, cls, inputs, **config):
    return {"name": name, "class_name": cls, "config": config, "inputs": inputs}


def residual_cnn(width=4, hidden=5):
    """conv-relu, a BN'd conv added back, depthwise, pooling, two Dense."""
    return specs.GraphSpec(
        input_shape=(8, 8, 3),
        num_classes=10,
        input_name="x",
        output="out",
        name="net",
        nodes=(
            node("c1", "Conv2D", ["x"], filters=width, activation="relu"),
            node("c2", "Conv2D", ["c1"], filters=width),
            node("bn", "BatchNormalization", ["c2"]),
            node("add", "Add", ["c1", "bn"]),
            node("relu", "ReLU", ["add"]),
            node("dw", "DepthwiseConv2D", ["relu"], kernel_size=3),
            node("pool", "GlobalAveragePooling2D", ["dw"]),
            node("hidden", "Dense", ["pool"], units=hidden, activation="relu"),
            node("out", "Dense", ["hidden"], units=10),
        ),
    )


def test_add_joins_both_branches_into_one_group():
    spec = residual_cnn()
    groups = {g.name: g for g in spec.analysis.groups if g.producers}
    assert groups["c1"].producers == ("c1", "c2")
    assert groups["c1"].norms == ("bn",)
    assert groups["c1"].passthrough == ("dw",)
    assert groups["c1"].consumers == ("c2", "hidden")
    assert groups["out"].fixed == ("it is the model's output",)
    assert spec.widths == (4, 5)
    assert spec.notation == "Graph(net)-4-5"


def test_with_widths_sets_every_producer_of_a_group():
    grown = residual_cnn().with_widths((6, 7))
    configs = {n["name"]: n["config"] for n in grown.nodes}
    assert configs["c1"]["filters"] == configs["c2"]["filters"] == 6
    assert configs["hidden"]["units"] == 7
    assert grown == residual_cnn(6, 7)
    with pytest.raises(ValueError, match="2 growable unit groups"):
        residual_cnn().with_widths((6,))


def test_json_round_trip():
    spec = residual_cnn().with_block_added(0)
    assert specs.from_json(spec.to_json()) == spec


def test_every_layer_but_the_output_is_a_depth_site_and_insertions_stack():
    spec = residual_cnn()
    sites = spec.depth_sites()
    assert sites == ("c1", "c2", "bn", "add", "relu", "dw", "pool", "hidden")
    assert spec.analysis.relu_sites == {"c1", "relu", "hidden"}
    relu, hidden = sites.index("relu"), sites.index("hidden")
    deeper = spec.with_block_added(relu).with_block_added(relu)
    deeper = deeper.with_block_added(hidden)
    names = [n["name"] for n in deeper.nodes]
    assert names[4:9] == [
        "relu",
        "relu_deep1_conv",
        "relu_deep1_relu",
        "relu_deep2_conv",
        "relu_deep2_relu",
    ]
    reads = {n["name"]: n["inputs"] for n in deeper.nodes}
    assert reads["dw"] == ["relu_deep2_relu"]
    assert reads["relu_deep2_conv"] == ["relu_deep1_relu"]
    assert reads["out"] == ["hidden_deep1_relu"]
    conv = next(n for n in deeper.nodes if n["name"] == "relu_deep1_conv")
    assert conv["config"]["filters"] == 4 and conv["class_name"] == "Conv2D"
    dense = next(n for n in deeper.nodes if n["name"] == "hidden_deep1_dense")
    assert dense["class_name"] == "Dense" and dense["config"]["units"] == 5
    # Sites stay the user's layers: stage numbers keep their meaning.
    assert deeper.depth_sites() == spec.depth_sites()
    assert deeper.inserted_blocks() == [
        ("relu_deep1", "relu_deep1_conv", "relu"),
        ("relu_deep2", "relu_deep2_conv", "relu"),
        ("hidden_deep1", "hidden_deep1_dense", "hidden"),
    ]


def test_a_layer_after_a_non_relu_output_is_linear():
    """After BN (whose output can be negative) the new conv has no ReLU, so
    an identity kernel still computes the identity."""
    spec = residual_cnn()
    deeper = spec.with_block_added(spec.depth_sites().index("bn"))
    names = [n["name"] for n in deeper.nodes]
    assert names[2:5] == ["bn", "bn_deep1_conv", "add"]
    reads = {n["name"]: n["inputs"] for n in deeper.nodes}
    assert reads["add"] == ["c1", "bn_deep1_conv"]
    again = deeper.with_block_added(spec.depth_sites().index("bn"))
    assert [n["name"] for n in again.nodes][2:6] == [
        "bn",
        "bn_deep1_conv",
        "bn_deep2_conv",
        "add",
    ]


def test_inserting_after_a_branch_point_moves_both_readers():
    deeper = residual_cnn().with_block_added(0)
    reads = {n["name"]: n["inputs"] for n in deeper.nodes}
    assert reads["c2"] == ["c1_deep1_relu"] and reads["add"] == ["c1_deep1_relu", "bn"]
    groups = {g.name: g for g in deeper.analysis.growable}
    assert groups["c1"].consumers == ("c1_deep1_conv",)
    assert groups["c1_deep1_conv"].producers == ("c1_deep1_conv", "c2")


@pytest.mark.parametrize(
    "nodes, layer, reason",
    [
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("f", "Flatten", ["c"]),
                node("bn", "BatchNormalization", ["f"]),
                node("d", "Dense", ["bn"], units=3),
            ],
            "c",
            "'bn' reads the flattened map of its units",
        ),
        (
            [
                node("a", "Conv2D", ["x"], filters=4),
                node("b", "Conv2D", ["x"], filters=4),
                node("cat", "Concatenate", ["a", "b"]),
                node("f", "GlobalAveragePooling2D", ["cat"]),
            ],
            "a",
            "Concatenate 'cat' joins it to others",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("s", "Activation", ["c"], activation="softmax"),
                node("f", "GlobalAveragePooling2D", ["s"]),
            ],
            "c",
            "'s' applies 'softmax' across its units",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("s", "Softmax", ["c"]),
                node("f", "GlobalAveragePooling2D", ["s"]),
            ],
            "c",
            "'s' applies softmax across its units",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=3),
                node("a", "Add", ["x", "c"]),
                node("f", "GlobalAveragePooling2D", ["a"]),
            ],
            "c",
            "it is the model's input",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("bn", "BatchNormalization", ["c"], axis=1),
                node("f", "GlobalAveragePooling2D", ["bn"]),
            ],
            "c",
            "'bn' normalises axis 1",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("dw", "DepthwiseConv2D", ["c"], kernel_size=3, depth_multiplier=2),
                node("f", "GlobalAveragePooling2D", ["dw"]),
            ],
            "c",
            "'dw' has depth_multiplier 2",
        ),
        (
            [
                node("c", "Conv2D", ["x"], filters=4),
                node("g", "Conv2D", ["c"], filters=4, groups=2),
                node("f", "GlobalAveragePooling2D", ["g"]),
            ],
            "c",
            "grouped conv 'g' reads it",
        ),
    ],
)
def test_groups_that_cannot_grow_say_why(nodes, layer, reason):
    spec = specs.GraphSpec(
        input_shape=(8, 8, 3),
        num_classes=2,
        input_name="x",
        output="out",
        nodes=tuple(nodes) + (node("out", "Dense", [nodes[-1]["name"]], units=2),),
    )
    with pytest.raises(ValueError, match=f"The units of layer '{layer}' cannot grow"):
        spec.with_layer_widened(layer, 9)
    group = next(g for g in spec.analysis.groups if layer in g.producers)
    assert any(reason in text for text in group.fixed), group.fixed
    assert any(reason in line for line in spec.growth_report())


def test_layer_normalization_grows_with_a_note():
    spec = specs.GraphSpec(
        input_shape=(6,),
        num_classes=2,
        input_name="x",
        output="out",
        nodes=(
            node("h", "Dense", ["x"], units=4),
            node("ln", "LayerNormalization", ["h"]),
            node("out", "Dense", ["ln"], units=2),
        ),
    )
    assert spec.with_layer_widened("h", 6).widths == (6,)
    assert (
        "its LayerNormalization layers normalise across the units, so growth "
        "keeps the function only when every unit is split at once"
        in (spec.growth_report()[0])
    )


@pytest.mark.parametrize(
    "nodes, output, message",
    [
        (
            [node("l", "Bidirectional", ["x"], units=3)],
            "l",
            "Layer 'l' is a Bidirectional",
        ),
        ([node("d", "Dense", ["y"], units=3)], "d", "unknown or later: \\['y'\\]"),
        (
            [node("d", "Dense", ["x"], units=3), node("d", "Dense", ["d"], units=3)],
            "d",
            "appears twice",
        ),
        (
            [node("a", "Add", ["x"])],
            "a",
            "only Add, Concatenate and Multiply read several",
        ),
        ([node("d", "Dense", ["x"], units=3)], "nope", "`output` must name a layer"),
        (
            [
                node("a", "Dense", ["x"], units=3),
                node("b", "Dense", ["x"], units=4),
                node("s", "Add", ["a", "b"]),
            ],
            "s",
            "added together, or reshaped\\), so they need one width",
        ),
    ],
)
def test_bad_graphs_are_refused(nodes, output, message):
    with pytest.raises(ValueError, match=message):
        specs.GraphSpec(
            input_shape=(6,),
            num_classes=3,
            input_name="x",
            output=output,
            nodes=tuple(nodes),
        )


def masked_encoder(side_inputs=None, keyword_inputs=None):
    """Tokens and a padding mask: the mask read only by the encoder."""
    encoder = node(
        "enc", "keras_hub>TransformerEncoder", ["emb"], intermediate_dim=8, num_heads=2
    )
    encoder["keyword_inputs"] = keyword_inputs or {"padding_mask": "mask"}
    return specs.GraphSpec(
        input_shape=(5,),
        num_classes=2,
        input_name="ids",
        input_dtype="int32",
        output="out",
        side_inputs=side_inputs or ({"name": "mask", "shape": [5], "dtype": "bool"},),
        nodes=(
            node("emb", "Embedding", ["ids"], input_dim=9, output_dim=4),
            encoder,
            node("pool", "GlobalAveragePooling1D", ["enc"]),
            node("out", "Dense", ["pool"], units=2),
        ),
    )


def _renamed_input(spec, name):
    """`spec`'s nodes reading its input by `name` instead."""
    return tuple(
        {**n, "inputs": [name if i == spec.input_name else i for i in n["inputs"]]}
        for n in spec.nodes
    )


def test_side_inputs_are_masks_beside_the_examples():
    spec = masked_encoder()
    assert [(i.name, i.shape, i.dtype) for i in spec.model_inputs] == [
        ("ids", (5,), "int32"),
        ("mask", (5,), "bool"),
    ]
    assert specs.from_json(spec.to_json()) == spec
    # One input: by its name (a dict of inputs and the served signature
    # take it so), but for names no signature argument can have, and
    # Keras' own (`input_layer_3`, which depend on what the process built).
    cnn = residual_cnn()
    assert [i.name for i in cnn.model_inputs] == [cnn.input_name] == ["x"]
    for name in ("in", "input-1", "input_layer", "input_layer_12"):
        renamed = cnn.replace(input_name=name, nodes=_renamed_input(cnn, name))
        assert [i.name for i in renamed.model_inputs] == ["images"]
    wider = spec.with_widths((16,))
    assert wider._node("enc")["keyword_inputs"] == {"padding_mask": "mask"}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(keyword_inputs={"padding_mask": "emb"}),
            r"reads 'emb' as `padding_mask`; a layer reads a side input",
        ),
        (
            dict(keyword_inputs={"query_mask": "mask"}),
            r"reads 'mask' as `query_mask`",
        ),
        (
            dict(side_inputs=({"name": "ids", "shape": [5], "dtype": "bool"},)),
            "Input name 'ids' appears twice",
        ),
        (
            dict(side_inputs=({"name": "mask", "shape": [5], "dtype": "str"},)),
            "has dtype 'str'",
        ),
        (dict(side_inputs=({"name": "mask"},)), "'name', 'shape' and 'dtype'"),
    ],
)
def test_bad_side_inputs_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        masked_encoder(**change)


def test_graph_family_refuses_input_normalisation_fields():
    with pytest.raises(ValueError, match="stay unset"):
        residual_cnn().replace(weight_decay=1e-4)


def test_every_supported_class_has_a_rule():
    assert set(graph_analysis.SUPPORTED) >= {
        "Dense",
        "Conv2D",
        "DepthwiseConv2D",
        "BatchNormalization",
        "LayerNormalization",
        "Flatten",
        "Dropout",
        "Add",
        "Concatenate",
        "MaxPooling2D",
        "GlobalAveragePooling2D",
    }


def test_the_docs_list_every_supported_layer():
    """docs/your_model.md's table names every class the analysis has a
    rule for, and no other."""
    import pathlib
    import re

    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "your_model.md"
    text = page.read_text()
    table = text[text.index("| Layer | Role |") : text.index("Any group is also fixed")]
    listed = set()
    for row in table.strip().splitlines()[2:]:
        first = row.split("|")[1]
        for package, cls in re.findall(
            r"`(kg\.layers\.|keras_hub\.layers\.)?([A-Z]\w+)", first
        ):
            hub = package.startswith("keras_hub")
            listed.add(graph_analysis.HUB + cls if hub else cls)
    assert listed == set(graph_analysis.SUPPORTED)
