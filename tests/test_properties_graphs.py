"""Property tests: user graphs of the layers transformers and modern CNNs
are made of, recurrent nets, and convnets that flatten their maps into
Dense layers, grown through random width and depth sequences.

Hypothesis draws small transformers (token or feature inputs, Conv1D,
learned positions, LayerNormalization, self-attention, feed-forward blocks,
1D pooling), recurrent nets (LSTM, GRU or SimpleRNN over masked or
unmasked tokens, stacked or pooled) and SE-CNNs (Rescaling of uint8
pixels, GroupNormalization, SeparableConv2D, a squeeze-and-excitation gate
through Reshape and Multiply), grows them where the operators promise the
function (splits with delta 0 and new units with epsilon 0; in a group a
LayerNormalization reads, every unit split at once; a new layer with the
identity kernel; a repeated transformer layer with its last projections
zero),
and checks, in inference mode:
- the logits within `EXACT` of the original after every growth (absolute
  and relative: a 2-wide stream through layer norms rounds at 1e-5);
- the parameter count against the layers' definitions (`expected_params`);
- `.keras` round trips bit-identical, SavedModel exports within
  `SAVED_MODEL` (absolute and relative: the traced graph rounds
  differently).
"""

import keras
import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_grow as kg
from keras_grow import build
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits

EXACT = 1e-5
SAVED_MODEL = 1e-5
VOCABULARY = 50


def _node(name, kind, inputs, **config):
    return {"name": name, "class_name": kind, "config": config, "inputs": inputs}


def _graph(nodes, input_shape, **fields):
    """A 4-class graph from input `in` to the node `logits`."""
    return kg.specs.GraphSpec(
        input_shape=input_shape,
        num_classes=4,
        nodes=tuple(nodes),
        input_name="in",
        output="logits",
        **fields,
    )


# --- strategies ------------------------------------------------------------


@st.composite
def transformers(draw):
    """A pre-norm transformer classifier: embedded tokens or projected
    features, learned positions, 1-2 layers of self-attention and a
    feed-forward block, each added to the residual stream."""
    positions = draw(st.integers(3, 6))
    width = draw(st.integers(2, 6))
    tokens = draw(st.booleans())
    if tokens:
        nodes = [
            _node("embed", "Embedding", ["in"], input_dim=VOCABULARY, output_dim=width)
        ]
        input_shape, dtype = (positions,), "int32"
    else:
        nodes = [
            _node("project", "Conv1D", ["in"], filters=width, kernel_size=1)
            if draw(st.booleans())
            else _node("project", "Dense", ["in"], units=width)
        ]
        input_shape, dtype = (positions, 3), "float32"
    stream = nodes[-1]["name"]
    nodes += [
        _node("pos", "PositionEmbedding", [stream], sequence_length=positions),
        _node("pos_add", "Add", [stream, "pos"]),
    ]
    stream = "pos_add"
    for i in range(draw(st.integers(1, 2))):
        # key_dim 1 keeps the heads fixed (see graph_analysis._attention).
        heads, key_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        causal = {"use_causal_mask": True} if draw(st.booleans()) else {}
        attention = _node(f"mha{i}", "MultiHeadAttention", [f"ln{i}a"])
        attention["config"].update(num_heads=heads, key_dim=key_dim)
        if causal:
            attention["call"] = causal
        nodes += [
            _node(f"ln{i}a", "LayerNormalization", [stream]),
            attention,
            _node(f"res{i}a", "Add", [stream, f"mha{i}"]),
            _node(f"ln{i}b", "LayerNormalization", [f"res{i}a"]),
            _node(
                f"ff{i}a",
                "Dense",
                [f"ln{i}b"],
                units=draw(st.integers(2, 6)),
                activation=draw(st.sampled_from(["gelu", "relu"])),
            ),
            _node(f"ff{i}b", "Dense", [f"ff{i}a"], units=width),
            _node(f"res{i}b", "Add", [f"res{i}a", f"ff{i}b"]),
        ]
        stream = f"res{i}b"
    pool = draw(st.sampled_from(["GlobalAveragePooling1D", "GlobalMaxPooling1D"]))
    nodes += [
        _node("ln_out", "LayerNormalization", [stream]),
        _node("pool", pool, ["ln_out"]),
        _node("logits", "Dense", ["pool"], units=4),
    ]
    return _graph(
        nodes,
        input_shape,
        input_dtype=dtype,
        # Depth: a copy of the last layer (its last projections zero), or
        # a layer after the pooled vector.
        depth=draw(st.sampled_from(["blocks", "sites"])),
    )


@st.composite
def se_cnns(draw):
    """A CNN of uint8 pixels with GroupNormalization, a SeparableConv2D and
    a squeeze-and-excitation gate."""
    width, inner = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    norm = draw(st.sampled_from([-1, 1]))  # instance norm, or one group
    nodes = [
        _node("scale", "Rescaling", ["in"], scale=1 / 255, offset=0.0),
        _node("c1", "Conv2D", ["scale"], filters=width, kernel_size=[3, 3]),
        _node("gn", "GroupNormalization", ["c1"], groups=norm),
        _node("relu", "ReLU", ["gn"]),
        _node(
            "sep",
            "SeparableConv2D",
            ["relu"],
            filters=width + 1,
            kernel_size=[3, 3],
            padding="same",
            activation="relu",
        ),
        _node("squeeze", "GlobalAveragePooling2D", ["sep"]),
        _node("excite1", "Dense", ["squeeze"], units=inner, activation="relu"),
        _node("excite2", "Dense", ["excite1"], units=width + 1, activation="sigmoid"),
        _node("shape", "Reshape", ["excite2"], target_shape=[1, 1, width + 1]),
        _node("gate", "Multiply", ["sep", "shape"]),
        _node("pool", "GlobalAveragePooling2D", ["gate"]),
        _node("drop", "Dropout", ["pool"], rate=0.2),
        _node("logits", "Dense", ["drop"], units=4),
    ]
    return _graph(nodes, (12, 12, 3), input_dtype="uint8")


@st.composite
def flat_cnns(draw):
    """keras.io's MNIST convnet in small: 'same' convs (so the map keeps
    the input's positions), a Flatten, maybe a Dropout, then Dense layers."""
    nodes, source = [], "in"
    for name, activation in (("c1", "relu"), ("c2", None)):
        activation = activation or draw(st.sampled_from(["relu", "linear"]))
        filters = draw(st.integers(1, 4))
        nodes.append(
            _node(
                name,
                "Conv2D",
                [source],
                filters=filters,
                kernel_size=[3, 3],
                padding="same",
                activation=activation,
            )
        )
        source = name
    nodes.append(_node("flat", "Flatten", ["c2"]))
    read = "flat"
    if draw(st.booleans()):
        nodes.append(_node("drop", "Dropout", ["flat"], rate=0.3))
        read = "drop"
    nodes += [
        _node("hidden", "Dense", [read], units=draw(st.integers(1, 4))),
        _node("logits", "Dense", ["hidden"], units=4),
    ]
    return _graph(nodes, (4, 5, 2))


RNN_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


@st.composite
def recurrent_nets(draw):
    """keras.io's text RNN in small: token ids embedded (padding masked or
    not) or features projected, one or two recurrent layers (LSTM, GRU or
    SimpleRNN), a pool or the last state, a hidden Dense."""
    cls = draw(st.sampled_from(sorted(RNN_GATES)))
    tokens = draw(st.booleans())
    if tokens:
        mask_zero = draw(st.booleans())
        nodes = [
            _node(
                "embed",
                "Embedding",
                ["in"],
                input_dim=VOCABULARY,
                output_dim=draw(st.integers(1, 4)),
                mask_zero=mask_zero,
            )
        ]
        input_shape, dtype = (5,), "int32"
    else:
        nodes = [_node("embed", "Dense", ["in"], units=draw(st.integers(1, 4)))]
        input_shape, dtype = (5, 3), "float32"
    source = "embed"
    for i in range(draw(st.integers(1, 2))):
        last = draw(st.booleans())
        nodes.append(
            _node(
                f"rnn{i}",
                cls,
                [source],
                units=draw(st.integers(1, 4)),
                return_sequences=not last,
            )
        )
        source = f"rnn{i}"
        if last:
            break
    else:
        pool = draw(st.sampled_from(["GlobalAveragePooling1D", "GlobalMaxPooling1D"]))
        nodes.append(_node("pool", pool, [source]))
        source = "pool"
    nodes += [
        _node(
            "hidden",
            "Dense",
            [source],
            units=draw(st.integers(1, 4)),
            activation="relu",
        ),
        _node("logits", "Dense", ["hidden"], units=4),
    ]
    return _graph(nodes, input_shape, input_dtype=dtype)


def _width_op(spec, draw):
    """(grown spec, morphisms) of one width entry: a unit split (delta 0)
    and new units (epsilon 0); in a group a LayerNormalization (or a
    one-group GroupNormalization) reads, every unit split at once."""
    groups = [g for g in build.unit_groups(spec) if g.width_index is not None]
    group = draw(st.sampled_from(groups))
    width = spec.widths[group.width_index]
    note = spec.analysis.groups[
        [g.name for g in spec.analysis.groups].index(group.name)
    ].notes
    if note:
        morphisms, added = [SplitUnits(group.name, range(width))], width
    else:
        split = draw(st.integers(0, 1))
        new = draw(st.integers(0 if split else 1, 2))
        unit = draw(st.integers(0, width - 1))
        morphisms = [SplitUnits(group.name, [unit])] if split else []
        morphisms += [AddUnits(group.name, new)] if new else []
        added = split + new
    widths = list(spec.widths)
    widths[group.width_index] += added
    return spec.with_widths(widths), morphisms


@st.composite
def growth_sequences(draw, specs):
    spec = draw(specs)
    operations, current = [], spec
    for _ in range(draw(st.integers(1, 3))):
        if current.depth_stages and draw(st.booleans()):
            stage = draw(st.integers(0, current.depth_stages - 1))
            current = current.with_block_added(stage)
            operations.append({"new_spec": current, "initializer": "identity"})
        else:
            current, morphisms = _width_op(current, draw)
            operations.append({"new_spec": current, "morphisms": morphisms})
    return spec, operations


# --- the parameter arithmetic, from the layers' definitions ----------------


def expected_params(spec):
    """Parameters of the graph, layer by layer from configs and the
    channels each layer reads."""
    channels = dict(spec.analysis.channels)
    total = 0
    for node in spec.nodes:
        if node["class_name"] == "Flatten":
            # A map of the input's positions ('same' convs, no pooling).
            positions = int(np.prod(spec.input_shape[:-1]))
            channels[node["name"]] = channels[node["inputs"][0]] * positions
        if node["class_name"] == "Dropout" and channels[node["name"]] is None:
            channels[node["name"]] = channels[node["inputs"][0]]
        c = channels[node["inputs"][0]]
        config, kind = node["config"], node["class_name"]
        kernel = int(np.prod(config.get("kernel_size", [1])))
        if kind in ("Dense", "Conv1D", "Conv2D"):
            out = config.get("units", config.get("filters"))
            total += kernel * c * out + out
        elif kind == "SeparableConv2D":
            total += kernel * c + c * config["filters"] + config["filters"]
        elif kind == "Embedding":
            total += config["input_dim"] * config["output_dim"]
        elif kind == "PositionEmbedding":
            total += config["sequence_length"] * c
        elif kind == "MultiHeadAttention":
            inner = config["num_heads"] * config["key_dim"]
            total += 3 * (c * inner + inner) + inner * c + c
        elif kind in ("LayerNormalization", "GroupNormalization"):
            total += 2 * c
        elif kind in RNN_GATES:
            units, gates = config["units"], RNN_GATES[kind]
            biases = 2 if kind == "GRU" else 1  # GRU's reset_after default
            total += gates * (c * units + units * units) + biases * gates * units
    return total


# --- properties ------------------------------------------------------------


def _inputs(spec, n=8):
    rng = np.random.default_rng(1)
    if spec.input_dtype == "int32":
        return rng.integers(0, VOCABULARY, (n,) + spec.input_shape).astype("int32")
    if spec.input_dtype == "uint8":
        return rng.integers(0, 256, (n,) + spec.input_shape).astype("uint8")
    return rng.normal(size=(n,) + spec.input_shape).astype("float32")


def _randomize(model):
    """Non-trivial norm gains and offsets, biases, and heads' outputs (a
    zero-initialised bias or a unit gain would hide a misplaced unit)."""
    rng = np.random.default_rng(0)
    for variable in model.body.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("gamma", "beta", "bias"):
            base = 1.0 if name == "gamma" else 0.0
            value = base + rng.normal(0, 0.3, variable.shape)
            variable.assign(value.astype("float32"))


@given(growth_sequences(st.one_of(transformers(), se_cnns())))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_transformers_and_se_cnns_grow_preserving_function(tmp_path, case):
    _grows_preserving_function(tmp_path, case)


@given(growth_sequences(recurrent_nets()))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_recurrent_nets_grow_preserving_function(tmp_path, case):
    _grows_preserving_function(tmp_path, case)


@given(growth_sequences(flat_cnns()))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_convnets_that_flatten_grow_preserving_function(tmp_path, case):
    _grows_preserving_function(tmp_path, case)


def _grows_preserving_function(tmp_path, case):
    """Every growth of `case` keeps the logits and the parameter count the
    layers define; the grown model saves, loads and serves the same."""
    spec, operations = case
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(spec)
    _randomize(model)
    x = _inputs(spec)
    before = np.asarray(model(x, training=False))
    # A tiny random net can compute a constant (e.g. a 2-wide stream that
    # a LayerNormalization maps to +-1), which any growth would preserve.
    assume(before.std(axis=0).max() > 1e-3)
    assert model.body.count_params() == expected_params(spec)
    for seed, operation in enumerate(operations):
        model.grow(seed=seed, **operation)
        assert model.spec == operation["new_spec"]
        assert model.body.count_params() == expected_params(model.spec)
        np.testing.assert_allclose(
            model(x, training=False), before, atol=EXACT, rtol=EXACT
        )
    after = np.asarray(model(x, training=False))
    directory = tmp_path / f"case{abs(hash(model.spec.to_json())) % 10**8}"
    directory.mkdir(exist_ok=True)
    model.save(str(directory / "model.keras"))
    loaded = keras.models.load_model(str(directory / "model.keras"))
    assert loaded.spec == model.spec
    np.testing.assert_array_equal(loaded(x, training=False), after)
    served = tf.saved_model.load(
        model.export_serving(str(directory / "serving"), overwrite=True)
    )
    # Uncompiled, a model of your own serves its outputs as they are.
    outputs = served.signatures["serving_default"](images=tf.constant(x))["outputs"]
    np.testing.assert_allclose(
        outputs.numpy(), after, atol=SAVED_MODEL, rtol=SAVED_MODEL
    )


@given(st.one_of(transformers(), se_cnns(), flat_cnns()))
def test_graph_arithmetic_matches_the_built_net(spec):
    assert kg.GrowableModel(spec).body.count_params() == expected_params(spec)
