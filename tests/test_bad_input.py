"""Bad inputs that docs/bad_input.md lists and no other test file covers.

Each test is a row of that table: the error type, that the message names
the value and the fix, and that nothing already there is changed.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from experiments.runs import firefly as firefly_runs
from tests.conftest import compile_sgd

MNIST = (28, 28, 1)


def _model():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(4, 8, 8))
    return compile_sgd(kg.GrowableModel(spec))


def test_data_without_the_channel_axis():
    model = _model()
    with pytest.raises(ValueError, match=r"received shape \(8, 28, 28\).*channel"):
        model.fit(np.zeros((8, 28, 28), "float32"), np.zeros(8, "int64"), verbose=0)
    assert model.optimizer.iterations.numpy() == 0


def test_data_of_another_image_size():
    with pytest.raises(ValueError, match=r"takes inputs of shape \(batch, 28, 28, 1\)"):
        _model().predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)


def test_integer_pixels():
    with pytest.raises(TypeError, match=r"received uint8 inputs.*images / 255.0"):
        _model().fit(np.zeros((8, 28, 28, 1), "uint8"), np.zeros(8, "int64"), verbose=0)


def test_firefly_data_of_another_shape_fails_before_training():
    model = compile_sgd(kg.GrowableModel(kg.specs.parse("VGG11-4", MNIST, 10)))
    data = tf.data.Dataset.from_tensors(
        (tf.zeros((4, 32, 32, 3)), tf.zeros((4,), tf.int64))
    )
    firefly = kg.callbacks.Firefly(data, grow_every=1, verbose=0)
    with pytest.raises(
        ValueError, match=r"received shape \(4, 32, 32, 3\) from `train_data`"
    ):
        model.fit(
            np.zeros((4, 28, 28, 1), "float32"),
            np.zeros(4, "int64"),
            callbacks=[firefly],
            verbose=0,
        )
    assert model.optimizer.iterations.numpy() == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda data: kg.callbacks.RandomSplit(data),  # takes no data
        lambda data: kg.callbacks.AutoGrow(data),
        lambda data: kg.callbacks.ProgressiveGrowth(
            kg.specs.parse("MLP-8", MNIST, 10), depth=data
        ),
    ],
    ids=["number", "integer", "choice"],
)
def test_data_where_an_argument_goes_is_named_by_its_shape(make):
    data = (np.zeros((1024, 784), "float32"), np.zeros(1024, "int64"))
    with pytest.raises(ValueError) as raised:
        make(data)
    message = str(raised.value)
    assert (
        "received a tuple of (ndarray of shape (1024, 784) and dtype float32, "
        "ndarray of shape (1024,) and dtype int64)." in message
    )
    assert len(message) < 200  # not the arrays' values


def test_unknown_growth_method_of_the_firefly_binary():
    with pytest.raises(ValueError, match="Unknown method 'firefy'; known:"):
        firefly_runs.resolve("fmnist_tiny", method="firefy")


@pytest.mark.parametrize(
    "form", ["arrays", "dataset", "one_hot", "float arrays", "fractional floats"]
)
def test_labels_beyond_num_classes_are_refused_before_training(form):
    spec = kg.specs.parse("MLP-4", input_shape=(28, 28, 1), num_classes=10)
    model = kg.GrowableModel(spec)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss)
    x = np.zeros((8, 28, 28, 1), "float32")
    y = np.arange(8) + 3  # 10 is not a class
    if form == "arrays":
        args, match = (x, y), "Label 10 is outside"
    elif form == "dataset":
        args, match = (tf.data.Dataset.from_tensor_slices((x, y)).batch(8),), "Label 10"
    elif form == "float arrays":
        args, match = (x, y.astype("float32") + 2), "Label 12 is outside"
    elif form == "fractional floats":
        args, match = (x, np.full(8, 2.5, "float32")), "Label 2.5 is not a class index"
    else:
        args, match = (x, keras.utils.to_categorical(y % 5, 5)), "rows of 5"
    with pytest.raises(ValueError, match=match):
        model.fit(*args, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0


@pytest.mark.parametrize(
    "notation,shape,match",
    [
        ("Basic3ResNet-1-1-1", (28, 28, 1), r"one example without the batch axis"),
        ("Basic3ResNet-1-1-1", (8, 28, 28), r"Add the channel axis: x\[\.\.\., None\]"),
        ("MLP-4", (8, 784), r"reshape the data to \(-1, 28, 28, 1\)"),
        ("MLP-4", (8, 32, 32, 3), r"input_shape=\(32, 32, 3\)"),
    ],
)
def test_a_wrong_input_shape_gets_the_fix_for_that_shape(notation, shape, match):
    model = kg.GrowableModel(kg.specs.parse(notation, MNIST, 10))
    with pytest.raises(ValueError, match=match):
        model(np.zeros(shape, "float32"))
