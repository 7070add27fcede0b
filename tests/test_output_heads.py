"""Models of your own whose output is not class logits: probabilities out
(keras.io's softmax classifiers), binary labels, regression. The compiled
loss says what the output is (`keras_grow.losses.Head`); label checks,
warnings and the serving signature follow it."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from tests.helpers import infer


def mnist_convnet(output="dense"):
    """keras.io's "Simple MNIST convnet", narrowed: softmax out, by the
    output Dense's activation, a Softmax layer or a float32 Activation
    (Keras' mixed precision advice)."""
    keras.utils.set_random_seed(0)
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(6, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
    ]
    if output == "dense":
        layers.append(keras.layers.Dense(10, activation="softmax"))
    elif output == "softmax layer":
        layers += [keras.layers.Dense(10), keras.layers.Softmax()]
    else:
        layers += [keras.layers.Dense(10), keras.layers.Activation("softmax")]
    return keras.Sequential(layers)


def mlp(outputs):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(outputs),
        ]
    )


def _mismatch_warnings(caught):
    return [
        str(w.message)
        for w in caught
        if "reads probabilities" in str(w.message)
        or "applies it again" in str(w.message)
    ]


def _served(model, path, x):
    served = tf.saved_model.load(model.export_serving(str(path)))
    signature = served.signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(images=tf.constant(x)).items()}


@pytest.mark.parametrize("output", ["dense", "softmax layer", "activation"])
def test_a_softmax_classifier_is_taken_as_it_is(output):
    user = mnist_convnet(output)
    model = kg.GrowableModel.from_keras(user)
    assert model.spec.output_activation == "softmax"
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(infer(model, x), infer(user, x))
    np.testing.assert_allclose(infer(model, x).sum(axis=1), 1.0, atol=1e-6)
    # Both convs can grow (the second through the Flatten); the classes
    # never do.
    assert model.spec.widths == (4, 6)
    grown = kg.GrowableModel(model.spec.with_widths((5, 7)))
    assert grown.body.output_shape == (None, 10)
    np.testing.assert_allclose(infer(grown, x).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.slow
def test_keras_io_convnet_grows_with_its_own_loss_and_serves_probabilities(
    sample_arrays, tmp_path
):
    x, y = sample_arrays
    one_hot = keras.utils.to_categorical(y, 10)
    model = kg.GrowableModel.from_keras(mnist_convnet())
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    firefly = kg.callbacks.Firefly(
        (x, one_hot), grow_every=1, max_rounds=1, delta_steps=2, seed=0, verbose=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, one_hot, epochs=2, batch_size=32, verbose=0, callbacks=[firefly]
        )
    assert _mismatch_warnings(caught) == []
    assert history.history["loss"][-1] < history.history["loss"][0]
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert sum(event["widths_after"]) > sum(event["widths_before"])
    out = _served(model, tmp_path / "serving", x[:8])
    assert sorted(out) == ["probabilities"]
    np.testing.assert_allclose(out["probabilities"], infer(model, x[:8]), atol=1e-6)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)


def test_probabilities_given_a_loss_that_squashes_them_again_warn():
    model = kg.GrowableModel.from_keras(mnist_convnet())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int64")
    with pytest.warns(UserWarning, match="applies softmax, but the loss"):
        model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.slow
def test_a_binary_classifier_checks_its_labels_and_serves_sigmoids(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    model = kg.GrowableModel.from_keras(mlp(1))
    model.compile(
        "adam",
        keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    with pytest.raises(ValueError, match=r"Label 2 is outside \[0, 1\]"):
        model.fit(x, y + y * (x[:, 2] > 0), epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[kg.callbacks.ScheduledGrowth({1: model.spec.with_widths((12,))})],
    )
    assert model.spec.widths == (12,)
    out = _served(model, tmp_path / "serving", x[:8])
    assert sorted(out) == ["logits", "probabilities"]
    logits = infer(model, x[:8])
    np.testing.assert_allclose(out["logits"], logits, atol=1e-6)
    np.testing.assert_allclose(
        out["probabilities"], 1 / (1 + np.exp(-logits)), atol=1e-6
    )


@pytest.mark.slow
def test_a_regression_net_takes_any_targets_and_serves_its_outputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    target = 30 * x[:, :1] + 40.5  # not class indices
    model = kg.GrowableModel.from_keras(mlp(1))
    model.compile("adam", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(
            x,
            target,
            epochs=2,
            verbose=0,
            callbacks=[
                kg.callbacks.Firefly(
                    (x, target), grow_every=1, max_rounds=1, delta_steps=2, verbose=0
                )
            ],
        )
    assert [e["kind"] for e in model.growth_log].count("grow") == 1
    out = _served(model, tmp_path / "serving", x[:8])
    assert sorted(out) == ["outputs"]
    np.testing.assert_allclose(out["outputs"], infer(model, x[:8]), atol=1e-5)


def test_an_uncompiled_model_of_your_own_serves_plain_outputs(tmp_path):
    model = kg.GrowableModel.from_keras(mlp(1))
    x = np.ones((2, 6), "float32")
    out = _served(model, tmp_path / "serving", x)
    assert sorted(out) == ["outputs"]
    np.testing.assert_allclose(out["outputs"], infer(model, x), atol=1e-6)


def test_adam_init_on_a_regression_loss_is_refused_before_training():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(2, 2, 2))
    model = kg.GrowableModel(spec)
    model.compile("sgd", "mse")
    x = np.zeros((8, 28, 28, 1), "float32")
    y = np.zeros((8, 10), "float32")
    autogrow = kg.callbacks.AutoGrow(initializer="adam", adam_init_data=(x, y))
    with pytest.raises(ValueError, match=r"initializer='adam'.*compiled with mse"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[autogrow])
    assert int(model.optimizer.iterations.numpy()) == 0


def test_a_tagger_takes_one_class_index_per_token():
    inputs = keras.Input((12,), dtype="int32")
    h = keras.layers.Embedding(50, 8)(inputs)
    h = keras.layers.Dense(16, activation="relu")(h)
    model = kg.GrowableModel.from_keras(keras.Model(inputs, keras.layers.Dense(5)(h)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, tags = rng.integers(0, 50, (16, 12)), rng.integers(0, 5, (16, 12))
    model.fit(x, tags, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 1
    with pytest.raises(ValueError, match=r"Label 5 is outside \[0, 5\)"):
        model.fit(x, tags + (tags == 4), epochs=1, verbose=0)
    # Padding tokens labelled -1, which the loss skips, are no bad label.
    padded = np.where(np.arange(12) < 9, tags, -1)
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1),
    )
    model.fit(x, padded, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Label -2 is outside"):
        model.fit(x, padded - (padded == -1), epochs=1, verbose=0)


def test_class_indices_given_a_loss_that_takes_rows_are_named_as_such():
    model = kg.GrowableModel.from_keras(mlp(3))
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((8, 6), "float32"), np.arange(8) % 3
    with pytest.raises(ValueError, match=r"shape \(8,\): class indices\?"):
        model.fit(x, y, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0
