"""Property tests: random nets of every family, random function-preserving
growth sequences.

For any spec hypothesis draws and any sequence of growth operations that
start as the identity (a new residual block with zero init, a new plain
layer with identity init, units split with delta = 0, new units with
epsilon = 0), in inference mode:
- the logits stay within `EXACT` of the original (logits of order 1; the
  operations reorder float32 sums, nothing more);
- the parameter count is the spec's arithmetic (`expected_params`, written
  here from the architectures' definitions, not from the builders);
- `.keras` round trips give bit-identical logits, SavedModel exports the
  same logits within float32 rounding (`SAVED_MODEL`).

Hypothesis profiles: see tests/conftest.py.
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
from keras_grow.specs import staged as staged_specs
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import randomize_norms

EXACT = 1e-4
SAVED_MODEL = 1e-5


STAGED = ["Basic3ResNet", "Basic4ResNet", "Bottleneck4ResNet", "Plain3Net"]
LAYERED = ["VGG11", "MobileNetV1", "MLP"]
SHAPE = (32, 32, 3)  # large enough for every family's downsampling


# --- the spec arithmetic ---------------------------------------------------


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out  # no bias: a BN follows


def _bn(c):
    return 4 * c  # gamma, beta, moving mean, moving variance


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def expected_params(spec):
    """Parameters of `spec`'s net, from the architecture's definition."""
    if isinstance(spec, kg.specs.GraphSpec):
        return _graph_params(spec)
    channels = spec.input_shape[-1]
    if isinstance(spec, kg.specs.StagedNetSpec):
        stem = 7 if spec.stem == "imagenet" else 3
        total = _conv(stem, channels, spec.stem_width) + _bn(spec.stem_width)
        c_in = spec.stem_width
        for stage, depth in enumerate(spec.depths):
            w = spec.widths[stage]
            out = w * spec.expansion
            for index in range(depth):
                stride = 2 if index == 0 and stage > 0 else 1
                if spec.block == "plain":
                    total += _conv(3, c_in, w) + _bn(w)
                elif spec.block == "basic":
                    total += _conv(3, c_in, w) + _conv(3, w, w) + 2 * _bn(w)
                else:
                    total += _conv(1, c_in, w) + _conv(3, w, w) + _conv(1, w, out)
                    total += 2 * _bn(w) + _bn(out)
                if spec.residual and (stride != 1 or c_in != out):
                    total += _conv(1, c_in, out) + _bn(out)
                c_in = out
        return total + _dense(c_in, spec.num_classes)
    if spec.family == "MLP":
        n_in, total = int(np.prod(spec.input_shape)), 0
        for w in spec.widths:
            total, n_in = total + _dense(n_in, w), w
        return total + _dense(n_in, spec.num_classes)
    if spec.family.startswith("VGG"):
        c_in, total = channels, 0
        for w in spec.widths:
            total, c_in = total + _conv(3, c_in, w) + _bn(w), w
        return total + _dense(c_in, spec.num_classes)
    widths = spec.widths  # MobileNetV1: stem, then depthwise + pointwise
    total = _conv(3, channels, widths[0]) + _bn(widths[0])
    for c_in, c_out in zip(widths, widths[1:]):
        total += 9 * c_in + _bn(c_in) + _conv(1, c_in, c_out) + _bn(c_out)
    return total + _dense(widths[-1], spec.num_classes)


def _graph_params(spec):
    """Parameters of a graph spec's net, layer by layer from the configs."""
    channels = dict(spec.analysis.channels)
    total = 0
    for node in spec.nodes:
        source = node["inputs"][0]
        c_in = channels[source]
        if c_in is None:  # a Flatten of the model input
            c_in = int(np.prod(spec.input_shape))
        config, kind = node["config"], node["class_name"]
        bias = config.get("use_bias", True)
        if kind == "Dense":
            total += c_in * config["units"] + bias * config["units"]
        elif kind == "Conv2D":
            k = int(np.prod(config.get("kernel_size", (1, 1))))
            total += k * c_in * config["filters"] + bias * config["filters"]
        elif kind == "DepthwiseConv2D":
            k = int(np.prod(config["kernel_size"]))
            total += k * c_in + bias * c_in
        elif kind == "BatchNormalization":
            total += _bn(c_in)
    return total


# --- strategies ------------------------------------------------------------


def _node(name, kind, inputs, **config):
    return {"name": name, "class_name": kind, "config": config, "inputs": inputs}


@st.composite
def user_models(draw):
    """Graph specs of models a user writes in plain Keras: a CNN with an
    optional residual connection and depthwise block, or a Sequential MLP.
    Drawn as spec nodes (building Keras models inside a strategy would use
    Python's `random`); `GrowableModel.from_keras` itself is tested in
    tests/build/test_graph.py."""
    width = st.integers(2, 5)
    if draw(st.booleans()):
        w = draw(width)
        nodes = [
            _node(
                "c1",
                "Conv2D",
                ["in"],
                filters=w,
                kernel_size=[3, 3],
                padding="same",
                activation="relu",
            )
        ]
        last = "c1"
        if draw(st.booleans()):
            nodes += [
                _node(
                    "c2",
                    "Conv2D",
                    ["c1"],
                    filters=w,
                    kernel_size=[3, 3],
                    padding="same",
                ),
                _node("bn", "BatchNormalization", ["c2"]),
                _node("add", "Add", ["c1", "bn"]),
                _node("relu", "ReLU", ["add"]),
            ]
            last = "relu"
        nodes.append(_node("pool", "MaxPooling2D", [last]))
        last = "pool"
        if draw(st.booleans()):
            nodes += [
                _node(
                    "dw",
                    "DepthwiseConv2D",
                    ["pool"],
                    kernel_size=[3, 3],
                    padding="same",
                ),
                _node("dw_bn", "BatchNormalization", ["dw"]),
                _node("dw_relu", "ReLU", ["dw_bn"]),
            ]
            last = "dw_relu"
        nodes += [
            _node(
                "c3",
                "Conv2D",
                [last],
                filters=draw(width),
                kernel_size=[1, 1],
                activation="relu",
            ),
            _node("gap", "GlobalAveragePooling2D", ["c3"]),
            _node("hidden", "Dense", ["gap"], units=draw(width), activation="relu"),
            _node("logits", "Dense", ["hidden"], units=10),
        ]
    else:
        nodes, last = [_node("flat", "Flatten", ["in"])], "flat"
        for i, w in enumerate(draw(st.lists(width, min_size=1, max_size=2))):
            nodes.append(_node(f"d{i}", "Dense", [last], units=w, activation="relu"))
            last = f"d{i}"
        nodes += [
            _node("drop", "Dropout", [last], rate=0.1),
            _node("logits", "Dense", ["drop"], units=10),
        ]
    return kg.specs.GraphSpec(
        input_shape=SHAPE,
        num_classes=10,
        nodes=tuple(nodes),
        input_name="in",
        output="logits",
    )


@st.composite
def specs(draw):
    family = draw(st.sampled_from(STAGED + LAYERED))
    width = st.integers(2, 5)
    if family in STAGED:
        count = staged_specs.FAMILIES[family][1]
        depths = draw(st.lists(st.integers(1, 2), min_size=count, max_size=count))
        widths = draw(st.lists(width, min_size=count, max_size=count))
        notation = f"{family}-" + "-".join(map(str, depths))
        return kg.specs.parse(notation, SHAPE, 10, widths=tuple(widths))
    if family == "MLP":
        widths = draw(st.lists(width, min_size=1, max_size=3))
        return kg.specs.parse("MLP-" + "-".join(map(str, widths)), SHAPE, 10)
    return kg.specs.parse(f"{family}-{draw(width)}", SHAPE, 10)


def _depth_op(spec, draw):
    """(grown spec, initializer) of one more sub-module that starts as the
    identity, or None where the family has no such growth."""
    if isinstance(spec, kg.specs.StagedNetSpec):
        stage = draw(st.integers(0, len(spec.depths) - 1))
        # A plain sub-module is the identity with a Dirac kernel; a residual
        # one with its last BN at zero.
        return spec.with_block_added(stage), "identity" if not spec.residual else "zero"
    if spec.family == "MLP":
        return spec.with_block_added(0), "identity"
    if spec.family.startswith("VGG"):
        stage = draw(st.integers(0, len(spec.stage_depths) - 1))
        return spec.with_block_added(stage), "identity"
    if isinstance(spec, kg.specs.GraphSpec):
        stage = draw(st.integers(0, spec.depth_stages - 1))
        return spec.with_block_added(stage), "identity"
    return None


def _width_op(spec, draw):
    """(grown spec, morphisms): every group of one width entry splits a
    unit (delta = 0) and gets new units (epsilon = 0)."""
    groups = [g for g in build.unit_groups(spec) if g.width_index is not None]
    index = draw(st.sampled_from(sorted({g.width_index for g in groups})))
    split = draw(st.integers(0, 1))
    new = draw(st.integers(0 if split else 1, 2))
    unit = draw(st.integers(0, spec.widths[index] - 1))
    morphisms = []
    for group in groups:
        if group.width_index == index:
            if split:
                morphisms.append(SplitUnits(group.name, [unit]))
            if new:
                morphisms.append(AddUnits(group.name, new))
    widths = list(spec.widths)
    widths[index] += split + new
    return spec.with_widths(widths), morphisms


@st.composite
def growth_sequences(draw, families=None):
    spec = draw(specs() if families is None else families)
    operations = []
    current = spec
    for _ in range(draw(st.integers(1, 3))):
        depth = _depth_op(current, draw) if draw(st.booleans()) else None
        if depth is not None:
            current, initializer = depth
            operations.append({"new_spec": current, "initializer": initializer})
        else:
            current, morphisms = _width_op(current, draw)
            operations.append({"new_spec": current, "morphisms": morphisms})
    return spec, operations


# --- properties ------------------------------------------------------------


@given(growth_sequences())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_growth_sequences_preserve_function_and_round_trip(tmp_path, case):
    _check_growth_sequence(tmp_path, case)


@given(growth_sequences(user_models()))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_user_models_grow_preserving_function_and_round_trip(tmp_path, case):
    _check_growth_sequence(tmp_path, case)


def _check_growth_sequence(tmp_path, case):
    spec, operations = case
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(spec)
    randomize_norms(model)
    x = images(SHAPE, n=8)
    before = infer(model, x)
    # A tiny random net can be dead (every ReLU off: constant logits), and
    # would pass any preservation check: such cases are discarded.
    assume(before.std(axis=0).max() > 1e-3)
    assert model.body.count_params() == expected_params(spec)
    for seed, operation in enumerate(operations):
        model.grow(seed=seed, **operation)
        assert model.spec == operation["new_spec"]
        assert model.body.count_params() == expected_params(model.spec)
        np.testing.assert_allclose(infer(model, x), before, atol=EXACT)
    after = infer(model, x)
    directory = tmp_path / f"case{abs(hash(model.spec.notation)) % 10**8}"
    directory.mkdir(exist_ok=True)
    path = str(directory / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.spec == model.spec and loaded.growth_log == model.growth_log
    np.testing.assert_array_equal(infer(loaded, x), after)
    served = tf.saved_model.load(
        model.export_serving(str(directory / "serving"), overwrite=True)
    )
    # Uncompiled, a named family serves class logits, a model of your own
    # its outputs as they are.
    key = "outputs" if model.spec.kind == "graph" else "logits"
    outputs = served.signatures["serving_default"](images=tf.constant(x))[key]
    np.testing.assert_allclose(outputs.numpy(), after, atol=SAVED_MODEL)


@given(specs())
def test_spec_arithmetic_matches_the_built_net(spec):
    assert kg.GrowableModel(spec).body.count_params() == expected_params(spec)


@given(user_models())
def test_user_model_arithmetic_matches_the_built_net(spec):
    assert kg.GrowableModel(spec).body.count_params() == expected_params(spec)
