"""Width morphisms keep the network's function (inference mode).

Tolerances (logits of order 1): "exact" cases (split with delta = 0, new
units with epsilon = 0) agree to float32 rounding, atol 1e-4 (a split
reorders sums; a 14-layer MobileNet amplifies the rounding); epsilon > 0
changes the logits by at most `EPSILON_GAIN * epsilon`, and by less for a
smaller epsilon.
"""

import numpy as np
import pytest

import keras_grow as kg
from keras_grow import build
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import infer_live
from tests.helpers import randomize_norms

EXACT = 1e-4
EPSILON_GAIN = 50.0
FAMILIES = [
    ("VGG11-8", (28, 28, 1), {}),  # Conv2D + BN
    ("MobileNetV1-8", (28, 28, 1), {}),  # DepthwiseConv2D passthrough
    ("MLP-6-5", (28, 28, 1), {}),  # Dense
    ("Basic3ResNet-2-1-1", (28, 28, 1), {"widths": (4, 4, 6)}),  # residual stream
    ("Bottleneck4ResNet-1-1-1-1", (32, 32, 3), {"widths": (2, 2, 3, 3)}),
    ("Plain3Net-2-1-1", (28, 28, 1), {"widths": (3, 4, 5)}),
]


def _model(notation, shape, kwargs, seed=0):
    spec = kg.specs.parse(notation, shape, 10, **kwargs)
    model = kg.GrowableModel(spec)
    randomize_norms(model, seed)
    return model


@pytest.mark.parametrize("notation,shape,kwargs", FAMILIES)
def test_split_and_new_units_preserve_function_exactly(notation, shape, kwargs):
    model = _model(notation, shape, kwargs)
    x = images(shape)
    before = infer_live(model, x)
    spec = model.spec
    groups = [g for g in build.unit_groups(spec) if g.width_index is not None]
    # Every group sharing a width entry grows the same way: split its first
    # unit, add two units.
    morphisms = []
    for group in groups:
        morphisms += [SplitUnits(group.name, [0]), AddUnits(group.name, 2)]
    widths = list(spec.widths)
    for index in {g.width_index for g in groups}:
        widths[index] += 3
    event = model.grow(spec.with_widths(widths), morphisms=morphisms, seed=0)
    after = infer(model, x)
    np.testing.assert_allclose(after, before, atol=EXACT)
    assert event["params_after"] > event["params_before"]
    # Bottleneck streams are 4x the stage width: defaults add the rest.
    assert all(new >= old + 3 for old, new in event["widened"].values())


def test_split_copies_parent_units_and_halves_outgoing():
    model = _model("VGG11-4", (28, 28, 1), {})
    old = {
        layer.name: [w.numpy() for w in layer.weights]
        for layer in model.body.layers
        if layer.weights
    }
    model.grow(
        model.spec.with_layer_widened(0, 6),
        morphisms=[SplitUnits("stage1_layer1", [2, 0])],
    )
    conv = model.body.get_layer("stage1_layer1_conv").kernel.numpy()
    np.testing.assert_array_equal(conv[..., 4], old["stage1_layer1_conv"][0][..., 2])
    np.testing.assert_array_equal(conv[..., 5], old["stage1_layer1_conv"][0][..., 0])
    bn = [w.numpy() for w in model.body.get_layer("stage1_layer1_bn").weights]
    for new, prev in zip(bn, old["stage1_layer1_bn"]):
        np.testing.assert_array_equal(new[[4, 5]], prev[[2, 0]])
    nxt = model.body.get_layer("stage2_layer1_conv").kernel.numpy()
    prev = old["stage2_layer1_conv"][0]
    np.testing.assert_allclose(nxt[:, :, [2, 0], :], prev[:, :, [2, 0], :] / 2)
    np.testing.assert_allclose(nxt[:, :, [4, 5], :], prev[:, :, [2, 0], :] / 2)
    np.testing.assert_array_equal(nxt[:, :, [1, 3], :], prev[:, :, [1, 3], :])


def test_depthwise_consumer_gets_the_new_channel_kernel():
    model = _model("MobileNetV1-4", (28, 28, 1), {})
    dw_before = model.body.get_layer("block2_dw").kernel.numpy()
    given = np.full((3, 3, 1, 1), 0.25)
    model.grow(
        model.spec.with_layer_widened(1, 5),
        morphisms=[AddUnits("block1", 1, incoming={"block2_dw": given})],
    )
    dw = model.body.get_layer("block2_dw").kernel.numpy()
    np.testing.assert_array_equal(dw[:, :, :4], dw_before)
    np.testing.assert_allclose(dw[:, :, 4:], given)
    bn = model.body.get_layer("block2_dw_bn")
    assert bn.moving_mean.numpy()[4] == 0 and bn.moving_variance.numpy()[4] == 1


def test_new_units_use_given_weights_scaled_by_epsilon():
    model = _model("MLP-6-5", (28, 28, 1), {})
    incoming = np.ones((784, 2))
    outgoing = np.full((2, 5), 3.0)
    model.grow(
        model.spec.with_layer_widened(0, 8),
        morphisms=[
            AddUnits(
                "layer1",
                2,
                incoming={"layer1_dense": incoming},
                outgoing={"layer2_dense": outgoing},
                epsilon=0.1,
            )
        ],
    )
    np.testing.assert_allclose(
        model.body.get_layer("layer1_dense").kernel.numpy()[:, 6:], 1.0
    )
    np.testing.assert_allclose(
        model.body.get_layer("layer2_dense").kernel.numpy()[6:], 0.3, rtol=1e-6
    )


@pytest.mark.parametrize("notation,shape,kwargs", FAMILIES[:3])
def test_epsilon_changes_function_proportionally(notation, shape, kwargs):
    x = images(shape)
    diffs = []
    epsilons = (1e-2, 1e-3, 1e-4)
    for epsilon in epsilons:
        model = _model(notation, shape, kwargs)
        before = infer_live(model, x)
        group = build.unit_groups(model.spec)[0]
        model.grow(
            model.spec.with_layer_widened(group.width_index, model.spec.widths[0] + 2),
            morphisms=[AddUnits(group.name, 2, epsilon=epsilon)],
            seed=3,
        )
        diffs.append(np.max(np.abs(infer(model, x) - before)))
    assert diffs[-1] > 0
    assert diffs[0] > diffs[1] > diffs[2]
    for epsilon, diff in zip(epsilons, diffs):
        assert diff <= EPSILON_GAIN * epsilon


def test_split_delta_changes_function_to_second_order_only_at_zero():
    # w + d and w - d with halved outgoing weights: linear layers cancel the
    # first-order term only through the nonlinearity, so the change is
    # bounded by a constant times |d|.
    shape = (28, 28, 1)
    x = images(shape)
    diffs = []
    for scale in (1e-2, 1e-3):
        model = _model("VGG11-4", shape, {})
        before = infer_live(model, x)
        kernel = model.body.get_layer("stage1_layer1_conv").kernel.shape
        delta = np.random.default_rng(0).normal(0, scale, tuple(kernel[:-1]) + (2,))
        model.grow(
            model.spec.with_layer_widened(0, 6),
            morphisms=[
                SplitUnits(
                    "stage1_layer1", [0, 1], deltas={"stage1_layer1_conv": delta}
                )
            ],
        )
        diffs.append(np.max(np.abs(infer(model, x) - before)))
    assert diffs[1] < diffs[0] < 1.0
    assert diffs[0] / diffs[1] > 5


def test_widening_without_morphisms_adds_silent_units():
    model = _model("Basic3ResNet-1-1-1", (28, 28, 1), {"widths": (4, 4, 6)})
    x = images((28, 28, 1))
    before = infer_live(model, x)
    event = model.grow(model.spec.with_widths((6, 5, 6)))
    np.testing.assert_allclose(infer(model, x), before, atol=EXACT)
    assert event["widened"]["stage1"] == [4, 6]
    assert event["widened"]["stage2"] == [4, 5]


def test_bad_morphisms_raise_clear_errors():
    model = _model("VGG11-4", (28, 28, 1), {})
    wider = model.spec.with_layer_widened(0, 5)
    with pytest.raises(ValueError, match="names unknown group 'nope'"):
        model.grow(wider, morphisms=[SplitUnits("nope", [0])])
    with pytest.raises(ValueError, match="out-of-range indices"):
        model.grow(wider, morphisms=[SplitUnits("stage1_layer1", [9])])
    with pytest.raises(ValueError, match="must be distinct"):
        SplitUnits("stage1_layer1", [1, 1])
    with pytest.raises(ValueError, match="`count` must be an integer >= 1"):
        AddUnits("stage1_layer1", 0)
    with pytest.raises(ValueError, match=r"has shape \(3, 3, 1, 5\) in the new graph"):
        model.grow(wider, morphisms=[AddUnits("stage1_layer1", 2)])
    with pytest.raises(ValueError, match="must have shape"):
        model.grow(
            wider,
            morphisms=[
                AddUnits(
                    "stage1_layer1", 1, incoming={"stage1_layer1_conv": np.ones(3)}
                )
            ],
        )
    assert model.spec.notation == "VGG11-4"  # nothing changed on failure
    assert model.growth_log == []
