"""Depth growth: the initialisers of new sub-modules."""

import numpy as np
import pytest

import keras_grow as kg
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import infer_live
from tests.helpers import randomize_norms

MNIST = (28, 28, 1)


def _resnet(notation="Basic3ResNet-1-1-1", **kwargs):
    kwargs.setdefault("widths", (4, 8, 8))
    model = kg.GrowableModel(kg.specs.parse(notation, MNIST, 10, **kwargs))
    randomize_norms(model)
    return model


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_zero_init_residual_block_is_exactly_the_identity(stage):
    model = _resnet()
    x = images(MNIST)
    before = infer_live(model, x)
    event = model.grow(model.spec.with_block_added(stage), initializer="zero")
    np.testing.assert_array_equal(infer(model, x), before)
    assert event["new_blocks"] == [f"stage{stage + 1}_block2"]


def test_zero_init_bottleneck_block_is_exactly_the_identity():
    model = kg.GrowableModel(
        kg.specs.parse(
            "Bottleneck4ResNet-1-1-1-1", (32, 32, 3), 10, widths=(2, 2, 3, 3)
        )
    )
    randomize_norms(model)
    x = images((32, 32, 3))
    before = infer_live(model, x)
    model.grow(model.spec.with_depths((2, 1, 3, 1)), initializer="zero")
    np.testing.assert_array_equal(infer(model, x), before)


@pytest.mark.parametrize(
    "notation,shape,grow",
    [
        ("Plain3Net-1-1-1", MNIST, lambda s: s.with_block_added(1)),
    ],
)
def test_identity_init_plain_submodule_preserves_function(notation, shape, grow):
    model = kg.GrowableModel(kg.specs.parse(notation, shape, 10, widths=(3, 4, 5)))
    randomize_norms(model)
    x = images(shape)
    before = infer_live(model, x)
    model.grow(grow(model.spec), initializer="identity")
    np.testing.assert_allclose(infer(model, x), before, atol=1e-5)


@pytest.mark.parametrize("initializer,bound", [("gaussian", None), ("uniform", 3**0.5)])
def test_random_initializers_draw_with_the_given_scale(initializer, bound):
    model = _resnet(widths=(64, 64, 64))
    scale = 0.5
    model.grow(
        model.spec.with_block_added(0),
        initializer=initializer,
        initializer_scale=scale,
        seed=0,
    )
    bn = model.body.get_layer("stage1_block2_bn2")
    values = np.concatenate([bn.gamma.numpy(), bn.beta.numpy()])  # 128 draws
    assert abs(values.std() - scale) < 0.15 and abs(values.mean()) < 0.2
    if bound is not None:
        assert np.abs(values).max() <= bound * scale + 1e-6


def test_random_initializer_is_seeded_and_changes_function():
    outputs = []
    for _ in range(2):
        model = _resnet()
        x = images(MNIST)
        before = infer_live(model, x)
        model.grow(model.spec.with_block_added(2), initializer="gaussian", seed=7)
        outputs.append(model.body.get_layer("stage3_block2_bn2").gamma.numpy())
        assert np.max(np.abs(infer(model, x) - before)) > 1e-4
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_unknown_initializer_and_bn_less_blocks_raise():
    model = _resnet()
    with pytest.raises(ValueError, match="Unknown block initializer 'he'"):
        model.grow(model.spec.with_block_added(0), initializer="he")
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    mlp = kg.GrowableModel(kg.specs.parse("MLP-4", MNIST, 10))
    with pytest.raises(ValueError, match="has no BatchNormalization"):
        mlp.grow(mlp.spec.with_widths((4, 4)), initializer="gaussian")
    with pytest.raises(ValueError, match="has no shortcut"):
        mlp.grow(mlp.spec.with_widths((4, 4)), initializer="zero")


def test_identity_init_of_new_mlp_layer_preserves_function():
    mlp = kg.GrowableModel(kg.specs.parse("MLP-5", MNIST, 10))
    x = images(MNIST)
    before = infer(mlp, x)
    # A new last hidden layer as wide as the one before it.
    mlp.grow(mlp.spec.with_widths((5, 5)), initializer="identity")
    # The old classifier now reads the new layer: same shape, same weights.
    np.testing.assert_allclose(infer(mlp, x), before, atol=1e-5)
