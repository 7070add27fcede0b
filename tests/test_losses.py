"""The loss and label rules growth code shares (keras_grow.losses), and the
warning for a loss that expects probabilities."""

import warnings

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import losses


def _model():
    spec = kg.specs.parse("MLP-4", input_shape=(28, 28, 1), num_classes=10)
    return kg.GrowableModel(spec)


@pytest.mark.parametrize(
    "loss",
    [
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        keras.losses.SparseCategoricalCrossentropy(),
        keras.losses.CategoricalCrossentropy(from_logits=False),
    ],
)
def test_a_probability_loss_on_logits_warns_with_the_fix(loss):
    model = _model()
    model.compile("sgd", loss)
    x, y = np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int64")
    if "categorical_crossentropy" == loss or isinstance(
        loss, keras.losses.CategoricalCrossentropy
    ):
        y = keras.utils.to_categorical(y, 10)
    with pytest.warns(UserWarning, match=r"from_logits=True"):
        model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "loss",
    [
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        keras.losses.CategoricalCrossentropy(from_logits=True),
        "mse",
    ],
)
def test_a_logits_loss_fits_quietly(loss):
    model = _model()
    model.compile("sgd", loss=loss)
    x, y = np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int64")
    if isinstance(loss, keras.losses.CategoricalCrossentropy) or loss == "mse":
        y = keras.utils.to_categorical(y, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, epochs=1, verbose=0)


def test_the_compiled_loss_is_a_batch_mean_whatever_form_it_was_given():
    model = _model()
    y = np.array([1, 2, 3])
    logits = np.random.default_rng(0).normal(size=(3, 10)).astype("float32")
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert float(losses.compiled_loss(model, "x")(y, logits)) == pytest.approx(
        float(expected)
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    # A bare function (a string loss) is reduced to one number too.
    assert np.ndim(losses.compiled_loss(model, "x")(y, logits)) == 0
    with pytest.raises(ValueError, match="compile the model"):
        losses.compiled_loss(_model(), "Firefly")


def _my_loss(y, outputs):
    return keras.ops.mean(keras.ops.abs(y - outputs))


@pytest.mark.parametrize(
    "loss, kind, from_logits",
    [
        ("sparse_categorical_crossentropy", "classes", False),
        (keras.losses.SparseCategoricalCrossentropy(from_logits=True), "classes", True),
        ("categorical_crossentropy", "one_hot", False),
        (keras.losses.CategoricalFocalCrossentropy(from_logits=True), "one_hot", True),
        (keras.losses.binary_crossentropy, "binary", False),
        (keras.losses.BinaryCrossentropy(from_logits=True), "binary", True),
        ("mse", "values", False),
        (keras.losses.Huber(), "values", False),
        (_my_loss, "values", False),
    ],
)
def test_the_head_is_read_from_the_loss_in_every_form_compile_takes(
    loss, kind, from_logits
):
    head = losses.head(loss)
    assert (head.kind, head.from_logits) == (kind, from_logits)
    assert head.classifies == (kind != "values")
    assert losses.head(None) is None


def test_a_mismatch_is_logits_read_as_probabilities_or_probabilities_squashed_twice():
    reads_probabilities = losses.head("categorical_crossentropy", "linear")
    assert "reads probabilities" in reads_probabilities.mismatch()
    twice = losses.head(keras.losses.BinaryCrossentropy(from_logits=True), "sigmoid")
    assert "applies sigmoid, but the loss BinaryCrossentropy(from_logits=True)" in (
        twice.mismatch()
    )
    for fine in (
        losses.head("categorical_crossentropy", "softmax"),
        losses.head(keras.losses.BinaryCrossentropy(from_logits=True), "linear"),
        losses.head("mse", "sigmoid"),
    ):
        assert fine.mismatch() is None


def test_predictions_are_right_by_class_or_by_label_as_keras_accuracy():
    classes = losses.head("sparse_categorical_crossentropy", "softmax")
    outputs = np.array([[0.7, 0.3], [0.2, 0.8], [0.9, 0.1]], "float32")
    right = classes.predicted_correctly(np.array([0, 0, 0]), outputs)
    np.testing.assert_array_equal(right, [True, False, True])
    logits = np.array([[2.0], [-1.0], [0.5]], "float32")
    for head, outputs in (
        (losses.head(keras.losses.BinaryCrossentropy(from_logits=True)), logits),
        (losses.head("binary_crossentropy", "sigmoid"), 1 / (1 + np.exp(-logits))),
    ):
        right = head.predicted_correctly(np.array([1.0, 1.0, 0.0]), outputs)
        np.testing.assert_array_equal(np.ravel(right), [True, False, False])
    # Sparse labels as (n,) or (n, 1), one-hot rows, and per-token labels
    # of a tagger (outputs (n, positions, classes)) are read alike.
    sparse = np.array([2, 0, 1])
    outputs = np.eye(3, dtype="float32")[[2, 1, 1]]
    for loss, labels in (
        ("sparse_categorical_crossentropy", sparse),
        ("sparse_categorical_crossentropy", sparse[:, None]),
        ("categorical_crossentropy", np.eye(3)[sparse]),
    ):
        right = losses.head(loss, "softmax").predicted_correctly(labels, outputs)
        np.testing.assert_array_equal(right, [True, False, True])
    tagger = losses.head("sparse_categorical_crossentropy", "softmax")
    right = tagger.predicted_correctly(
        np.stack([sparse, sparse]), np.stack([outputs] * 2)
    )
    np.testing.assert_array_equal(right, [[True, False, True]] * 2)
    with pytest.raises(ValueError, match="needs a classification loss"):
        losses.head("mse").predicted_correctly(np.zeros(3), logits)
