"""Every block initialiser on every family that deepens: it does what its
name promises, or it is refused before anything changes."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow.transfer import BLOCK_INITIALIZERS
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import infer_live
from tests.helpers import randomize_norms

MNIST = (28, 28, 1)
PRESERVING = ("zero", "identity")


def _from_keras():
    inputs = keras.Input(MNIST)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(6, activation="relu", name="d1")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return kg.GrowableModel.from_keras(keras.Model(inputs, outputs))


FAMILIES = {
    "Basic3ResNet": lambda: kg.GrowableModel(
        kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(4, 8, 8))
    ),
    "Plain3Net": lambda: kg.GrowableModel(
        kg.specs.parse("Plain3Net-1-1-1", MNIST, 10, widths=(3, 4, 5))
    ),
    "VGG11": lambda: kg.GrowableModel(kg.specs.parse("VGG11-4", MNIST, 10)),
    "MLP": lambda: kg.GrowableModel(kg.specs.parse("MLP-8-8", MNIST, 10)),
    "from_keras": _from_keras,
}


def _can_start(family, initializer):
    """Whether the initialiser fits the family's new block; the others
    must be refused."""
    residual = family == "Basic3ResNet"
    has_norm = family not in ("MLP", "from_keras")
    if initializer == "zero":
        return residual
    if initializer in ("gaussian", "uniform", "uniform_authors"):
        return has_norm
    return True  # identity, default


@pytest.mark.parametrize("initializer", sorted(BLOCK_INITIALIZERS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_initializer_keeps_its_promise_or_is_refused(family, initializer):
    model = FAMILIES[family]()
    randomize_norms(model)
    x = images(MNIST, n=16)
    before = infer_live(model, x)
    stage = model.spec.depth_stages - 1
    new_spec = model.spec.with_block_added(stage)
    if not _can_start(family, initializer):
        notation, log = model.spec.notation, model.growth_log
        with pytest.raises(ValueError, match="initializer='identity'"):
            model.grow(new_spec, initializer=initializer, seed=0)
        assert model.spec.notation == notation and model.growth_log == log
        np.testing.assert_array_equal(infer(model, x), before)
        return
    model.grow(new_spec, initializer=initializer, seed=0)
    after = infer(model, x)
    if initializer in PRESERVING:
        np.testing.assert_allclose(after, before, atol=1e-5)
    # Whatever the promise, the logits still depend on the input.
    assert after.std(axis=0).max() > 1e-3


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_default_initializer_preserves_the_function(family):
    model = FAMILIES[family]()
    randomize_norms(model)
    x = images(MNIST, n=16)
    before = infer_live(model, x)
    model.grow(model.spec.with_block_added(0))
    np.testing.assert_allclose(infer(model, x), before, atol=1e-5)
