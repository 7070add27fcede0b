"""The over-grown neighbourhoods: zero gates are the current net, a realised
net is the over-grown net at its gates, and growth at small epsilon keeps
the function within a bound proportional to epsilon."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import descent
from keras_grow.descent import selection
from keras_grow.transfer import weights as weight_io
from keras_grow.transfer.width import grown_param_count
from tests import helpers
from tests.conftest import max_abs_diff

CONVNET = "a convnet that flattens"
# Dense (MLP), Conv2D+BN (VGG, residual streams, plain nets), MobileNetV1
# pointwise + depthwise pairs, and a Dense reading a flattened map (its
# rows hold each unit of the last conv at every position).
FAMILIES = [
    ("MLP-8-6", {}),
    ("VGG11-4", {}),
    ("MobileNetV1-4", {}),
    ("Basic3ResNet-2-1-2", {"widths": (4, 6, 8)}),
    ("Plain3Net-2-1-1", {"widths": (4, 6, 8)}),
    (CONVNET, {}),
]


def _convnet():
    """keras.io's MNIST convnet, narrow, with a BatchNormalization over the
    flattened group's units and a hidden Dense after the Flatten (which
    reads one group and writes another)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(6, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _model(notation, extra):
    if notation == CONVNET:
        model = kg.GrowableModel.from_keras(_convnet())
    else:
        spec = kg.specs.parse(
            notation, input_shape=(28, 28, 1), num_classes=10, **extra
        )
        model = kg.GrowableModel(spec)
    helpers.randomize_norms(model)
    return model


def _gates(count, chosen, value):
    gates = np.zeros(count, np.float32)
    gates[chosen] = value
    return tf.constant(gates)


def _chosen(neighbourhood, count, seed=0):
    scores = np.random.default_rng(seed).normal(size=len(neighbourhood.candidates))
    order, ranked = selection.slot_order(neighbourhood.candidates, scores)
    return selection.choose(neighbourhood.candidates, order, ranked, count)


@pytest.mark.parametrize("notation,extra", FAMILIES)
def test_zero_gates_compute_the_current_net(notation, extra):
    model = _model(notation, extra)
    x = helpers.images((28, 28, 1), 16)
    n = descent.WidthNeighbourhood(model.body, model.spec, new_units=2, seed=0)
    before = helpers.infer_live(model, x)
    assert max_abs_diff(n.logits(x, n.zero_gates()), before) < 1e-4
    # The over-grown net really is wider: 2W + m per group.
    for g in n.groups:
        assert n.over_width(g.name) == 2 * n.widths[g.name] + 2


@pytest.mark.parametrize("notation,extra", FAMILIES)
def test_realised_net_is_the_overgrown_net_at_its_gates(notation, extra):
    model = _model(notation, extra)
    x = helpers.images((28, 28, 1), 16)
    n = descent.WidthNeighbourhood(model.body, model.spec, new_units=2, seed=1)
    chosen, taken = _chosen(n, 6)
    expected = n.logits(x, _gates(len(n.candidates), chosen, 0.3)).numpy()
    shapes = weight_io.weight_shapes(model.body)
    added = {g.name: taken.get(g.width_index, 0) for g in n.groups}
    new_spec, values = descent.realise(n, chosen, 0.3)
    model.grow(new_spec, values=values)
    # 2e-4: the realised net sums merged halves in another order than the
    # over-grown one; through MobileNetV1's 14 layers float32 rounding
    # reached 1.2e-4 on a 2-core CPU machine (TF 2.21, oneDNN).
    assert max_abs_diff(helpers.infer(model, x), expected) < 2e-4
    assert sum(new_spec.widths) - sum(n.spec.widths) == sum(taken.values()) or (
        # a staged width entry may be shared by several groups, but each
        # slot adds one unit to the entry
        isinstance(new_spec, kg.specs.StagedNetSpec)
    )
    assert model.body.count_params() == grown_param_count(shapes, n.groups, added)


@pytest.mark.parametrize("notation,extra", FAMILIES)
def test_growth_preserves_the_function_within_a_bound_in_epsilon(notation, extra):
    errors = []
    for epsilon in (1e-2, 1e-3):
        model = _model(notation, extra)
        x = helpers.images((28, 28, 1), 16)
        before = helpers.infer_live(model, x)
        n = descent.WidthNeighbourhood(model.body, model.spec, new_units=2, seed=2)
        chosen, _ = _chosen(n, 6, seed=3)
        new_spec, values = descent.realise(n, chosen, epsilon)
        model.grow(new_spec, values=values)
        errors.append(max_abs_diff(helpers.infer(model, x), before))
        assert errors[-1] <= 100 * epsilon, (epsilon, errors[-1])
    assert errors[1] < errors[0]


def test_directions_stay_in_their_norm_balls():
    model = _model("VGG11-4", {})
    n = descent.WidthNeighbourhood(model.body, model.spec, new_units=2, seed=0)
    for p in n._params.values():
        p.variable.assign(p.variable.value * 50.0)
    n.project()
    for p in n._params.values():
        norms = np.linalg.norm(
            np.moveaxis(p.variable.numpy(), p.axis, -1).reshape(-1, p.bound.size),
            axis=0,
        )
        assert np.all(norms <= p.bound * (1 + 1e-5))


def test_bottleneck_resnets_are_refused_clearly():
    spec = kg.specs.parse(
        "Bottleneck4ResNet-1-1-1-1", input_shape=(32, 32, 3), num_classes=10
    )
    with pytest.raises(ValueError, match="4x their stage width"):
        descent.growable_groups(spec)


@pytest.mark.parametrize(
    "notation,extra",
    [
        ("VGG11-4", {}),
        ("MLP-8-6", {}),
        ("Basic3ResNet-1-1-1", {"widths": (4, 6, 8)}),
        ("Plain3Net-1-1-1", {"widths": (4, 6, 8)}),
    ],
)
def test_depth_candidates_are_the_identity_at_zero_and_realise_exactly(notation, extra):
    model = _model(notation, extra)
    x = helpers.images((28, 28, 1), 16)
    before = helpers.infer_live(model, x)
    n = descent.DepthNeighbourhood(model.body, model.spec, seed=0)
    zero = tf.zeros(len(n.candidates))
    assert max_abs_diff(n.logits(x, zero), before) < 1e-4
    gates = _gates(len(n.candidates), [0], 0.2)
    expected = n.logits(x, gates).numpy()
    deep, values = n.realise_layers([0], model.spec, 0.2)
    model.grow(deep, values=values, initializer="default")
    assert len(kg.build.new_blocks(n.spec, deep)) == 1
    assert max_abs_diff(helpers.infer(model, x), expected) < 1e-4


def test_depth_growth_is_refused_for_mobilenet():
    spec = kg.specs.parse("MobileNetV1-4", input_shape=(28, 28, 1), num_classes=10)
    with pytest.raises(ValueError, match="grow_depth"):
        descent.check_depth_growable(spec)


def test_gate_ends_give_splits_the_square_root_step():
    model = _model("MLP-8-6", {})
    n = descent.WidthNeighbourhood(model.body, model.spec, new_units=3, seed=0)
    kinds = [c.kind for c in n.candidates]
    assert set(kinds) == {"split", "new"}
    ends = descent.gate_ends(n.candidates, 0.04)
    assert ends.shape == (len(n.candidates),)
    by_kind = {
        k: {round(float(e), 6) for e, c in zip(ends, kinds) if c == k} for k in kinds
    }
    assert by_kind == {"split": {0.2}, "new": {0.04}}
    explicit = descent.gate_ends(n.candidates, 0.04, split_epsilon=0.1)
    assert {round(float(e), 6) for e, c in zip(explicit, kinds) if c == "split"} == {
        0.1
    }


def test_a_net_realised_at_per_candidate_steps_is_the_overgrown_net_there():
    model = _model("VGG11-4", {})
    x = helpers.images((28, 28, 1), 16)
    n = descent.WidthNeighbourhood(model.body, model.spec, new_units=2, seed=4)
    chosen, _ = _chosen(n, 6, seed=5)
    ends = descent.gate_ends(n.candidates, 0.09)
    gates = np.zeros(len(n.candidates), np.float32)
    gates[chosen] = ends[chosen]
    expected = n.logits(x, tf.constant(gates)).numpy()
    new_spec, values = descent.realise(n, chosen, ends)
    model.grow(new_spec, values=values)
    assert max_abs_diff(helpers.infer(model, x), expected) < 2e-4


def test_the_kernel_methods_say_how_the_units_they_skip_are_written():
    ids = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 4, name="table")(ids)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(24, activation="relu", name="hidden")(x)
    x = keras.layers.Reshape((2, 3, 4))(x)
    x = keras.layers.SeparableConv2D(5, 1, activation="relu", name="sep")(x)
    x = keras.layers.Conv2D(3, 1, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = kg.GrowableModel.from_keras(keras.Model(ids, keras.layers.Dense(2)(x)))
    shapes = weight_io.weight_shapes(model.body)
    kept, skipped = kg.descent.kernel_groups(model.spec, shapes)
    assert [g.name for g in kept] == ["conv"]
    assert skipped == {
        "table": "'table' writes its units from a table (an embedding), not a "
        "kernel, which this method does not measure",
        "sep": "'sep' writes its units with a pointwise kernel after a depthwise "
        "one (a SeparableConv2D), not a kernel, which this method does not measure",
    }
