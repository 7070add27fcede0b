"""The data growth measures on is what `fit` trains on: sample weights in
it weigh Firefly's scores, GradMax's and TINY's statistics and AdamInit's
loss and accuracy as `fit` weighs its loss; `fit` warns where it weighs
examples that a growth callback would not, and where a growth callback's
arrays hold the examples `validation_split` holds out.

Each weighted case pairs a batch with a copy of itself under other labels,
weighted 1 and 0: the copy must count for nothing, and the loss (a mean
over the doubled batch, as Keras reduces it) halves.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import descent
from keras_grow import losses
from keras_grow.adam_init import adam_init_norm
from keras_grow.callbacks import arguments
from keras_grow.descent import new_units
from keras_grow.descent import scoring
from keras_grow.transfer.weights import weight_shapes
from tests import helpers
from tests.conftest import compile_sgd


def _doubled(x, y, num_classes=10):
    """(x, y) and its copy under other labels, the copy weighted 0."""
    wrong = (np.asarray(y) + 1) % num_classes
    weights = np.concatenate([np.ones(len(x)), np.zeros(len(x))]).astype("float32")
    return np.concatenate([x, x]), np.concatenate([y, wrong]), weights


def test_a_string_loss_weighs_and_reduces_as_compile_does():
    model = kg.GrowableModel(kg.specs.parse("MLP-4", (3,), 3))
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=6).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    weights = np.array([1, 2, 0, 1, 0.5, 3], "float32")
    expected = keras.losses.SparseCategoricalCrossentropy()(
        y, probabilities, sample_weight=weights
    )
    found = losses.compiled_loss(model, "x")(y, probabilities, weights)
    assert float(found) == pytest.approx(float(expected), rel=1e-6)


def test_batch_parts_gives_ones_where_a_batch_has_no_weights():
    x, y = np.zeros((4, 2), "float32"), np.arange(4)
    _, _, weights = losses.batch_parts((x, y))
    np.testing.assert_array_equal(weights.numpy(), np.ones(4, "float32"))
    _, _, weights = losses.batch_parts((x, y, np.arange(4)))
    assert weights.dtype == tf.float32
    np.testing.assert_array_equal(weights.numpy(), [0, 1, 2, 3])


def test_firefly_scores_weigh_the_examples():
    spec = kg.specs.parse("VGG11-4", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    helpers.randomize_norms(model)
    x = helpers.images((28, 28, 1), 16)
    y = np.arange(16) % 10
    n = descent.WidthNeighbourhood(model.body, spec, new_units=2, seed=0)
    steps = scoring.DescentSteps(
        n,
        scoring.loss_function(model),
        epsilon=0.5,
        learning_rate=0.01,
        score_points=2,
        jit_compile=False,
    )
    plain = steps.scores(iter([(x, y)]), 1)
    weighted = steps.scores(iter([_doubled(x, y)]), 1)
    np.testing.assert_allclose(weighted, plain / 2, rtol=1e-4, atol=1e-7)
    assert np.abs(plain).max() > 1e-4  # the scores are not all zero
    gates = np.full(len(n.candidates), 0.5)
    doubled_x, doubled_y, w = _doubled(x, y)
    assert steps.loss(doubled_x, doubled_y, gates, w) == pytest.approx(
        steps.loss(x, y, gates) / 2, rel=1e-5
    )


def test_closed_form_statistics_weigh_the_examples():
    keras.utils.set_random_seed(0)
    model = compile_sgd(
        kg.GrowableModel(
            kg.specs.parse("MLP-5-4", input_shape=(3, 2, 1), num_classes=3)
        )
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 3, 2, 1)).astype("float32")
    y = rng.integers(0, 3, 16)
    groups, _ = new_units.closed_form_groups(model.spec, weight_shapes(model.body))
    plain = new_units.measure(model, groups, iter([(x, y)]), 1, model.loss)
    doubled = _doubled(x, y, num_classes=3)
    weighted = new_units.measure(model, groups, iter([doubled]), 1, model.loss)
    for a, b in zip(weighted, plain):
        # The copy adds nothing to the second moments, and the loss halves.
        np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a.jacobians, b.jacobians / 2, rtol=1e-4, atol=1e-7)
        assert np.abs(b.jacobians).max() > 1e-4


def test_adam_init_weighs_its_loss_and_accuracy(sample_arrays):
    x, y = sample_arrays
    x, y = x[:64], y[:64]
    results = []
    for batches in (
        [(x[i : i + 32], y[i : i + 32]) for i in (0, 32)],
        [_doubled(x[i : i + 32], y[i : i + 32]) for i in (0, 32)],
    ):
        keras.utils.set_random_seed(0)
        spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
        model = compile_sgd(kg.GrowableModel(spec))
        data = tf.data.Dataset.from_generator(
            lambda b=batches: iter(b),
            output_signature=tuple(
                tf.TensorSpec(
                    (None,) + np.shape(a)[1:], tf.as_dtype(np.asarray(a).dtype)
                )
                for a in batches[0]
            ),
        )
        result = adam_init_norm(model, "stage1_block1_bn2", data, None, max_epochs=2)
        gamma = model.body.get_layer("stage1_block1_bn2").gamma.numpy()
        results.append((result["train_accuracy"], gamma))
    # The copy (same images: the same batch statistics) counts for nothing;
    # the halved loss gives Adam the same steps.
    assert results[1][0] == pytest.approx(results[0][0])
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-5)
    assert np.abs(results[0][1] - 1.0).max() > 1e-4  # gamma moved


def test_train_data_takes_sample_weights_as_fit_does():
    x, y, w = np.zeros((5, 2)), np.arange(5), np.ones(5)
    data = arguments.as_dataset((x, y, w), "train_data")
    assert len(data.element_spec) == 3
    assert data.element_spec[2].dtype == tf.float32
    with pytest.raises(ValueError, match="lengths 5, 5, 4"):
        arguments.as_dataset((x, y, w[:4]), "train_data")
    with pytest.raises(TypeError, match=r"\(x, y, sample_weight\)"):
        arguments.as_dataset((x,), "train_data")


def _net():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    model = kg.GrowableModel.from_keras(
        keras.Model(inputs, keras.layers.Dense(3)(hidden))
    )
    return compile_sgd(model, learning_rate=0.01)


def _unweighted_warnings(fit_kwargs, train_data):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    w = np.where(y == 2, 4.0, 1.0).astype("float32")
    firefly = kg.callbacks.Firefly(
        train_data=train_data(x, y, w),
        grow_every=1,
        max_rounds=1,
        delta_steps=2,
        score_batches=1,
        calibrate_new_units=1,
        verbose=0,
    )
    model = _net()
    given = {"x": x, "y": y}
    if fit_kwargs == "dataset":
        given = {"x": tf.data.Dataset.from_tensor_slices((x, y, w)).batch(16)}
    else:
        given.update(fit_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(**given, epochs=2, callbacks=[firefly], verbose=0)
    assert firefly.rounds == 1  # grew on the data given, weights and all
    return [str(w.message) for w in caught if "weighs its examples" in str(w.message)]


@pytest.mark.parametrize(
    "fit_kwargs, how",
    [
        ({"class_weight": {0: 1.0, 1: 1.0, 2: 4.0}}, "class_weight"),
        ("dataset", "a dataset of (x, y, sample_weight)"),
    ],
)
def test_fit_warns_where_growth_would_not_weigh_what_fit_weighs(fit_kwargs, how):
    [message] = _unweighted_warnings(fit_kwargs, lambda x, y, w: (x, y))
    assert f"fit weighs its examples ({how})" in message
    assert "Firefly's `train_data` has no sample weights" in message
    # Weighted growth data: nothing to warn of.
    assert not _unweighted_warnings(fit_kwargs, lambda x, y, w: (x, y, w))


def test_fit_without_weights_does_not_warn():
    assert not _unweighted_warnings({}, lambda x, y, w: (x, y))


def _split_warnings(train_data):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    y = rng.integers(0, 3, 40)
    firefly = kg.callbacks.Firefly(train_data=train_data(x, y), grow_every=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _net().fit(
            x, y, validation_split=0.25, epochs=1, callbacks=[firefly], verbose=0
        )
    return [str(w.message) for w in caught if "validation_split" in str(w.message)]


def test_fit_warns_where_growth_would_decide_on_the_validation_split():
    [message] = _split_warnings(lambda x, y: (x, y))
    assert message.startswith(
        "fit holds out the last 0.25 of x for validation (validation_split), "
        "but Firefly's `train_data` holds them"
    )
    assert "train_data=(x[:30], y[:30])" in message
    # The examples fit trains on (a view of x that stops short of the split):
    assert not _split_warnings(lambda x, y: (x[:30], y[:30]))
