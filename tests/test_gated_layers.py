"""Gated layers (keras_grow.gated_layers): while on, their Keras layer;
while off, zeros or their input, no gradient, no statistics moved, no
penalty; switched by assignment inside a traced step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_grow import gated_layers

RNG = np.random.default_rng(0)
X4 = RNG.normal(size=(6, 5, 5, 3)).astype("float32")
X2 = RNG.normal(size=(6, 3)).astype("float32")
CASES = {
    "Conv2D": (dict(filters=4, kernel_size=3, strides=2, padding="valid"), X4),
    "Dense": (dict(units=4), X2),
    "BatchNormalization": (dict(momentum=0.5), X4),
}


def _pair(name):
    config, x = CASES[name]
    plain = getattr(keras.layers, name)(**config)
    gated = gated_layers.GATED[name](**config)
    plain.build(x.shape)
    gated.build(x.shape)
    for source, target in zip(plain.weights, gated.weights):
        target.assign(RNG.normal(size=source.shape).astype("float32") + 1.5)
        source.assign(target.numpy())
    return plain, gated, x


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_gated_layer_on_is_its_keras_layer(name):
    plain, gated, x = _pair(name)
    assert isinstance(gated, getattr(keras.layers, name)) and not gated.is_on
    gated.switch(True)
    for training in (False, True):
        np.testing.assert_allclose(
            gated(x, training=training), plain(x, training=training), atol=1e-5
        )
    # Training moved the statistics of both alike.
    for a, b in zip(plain.non_trainable_weights, gated.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_gated_layer_off_outputs_zeros_or_its_input(name):
    plain, gated, x = _pair(name)
    before = [w.numpy() for w in gated.non_trainable_weights]
    with tf.GradientTape() as tape:
        out = gated(x, training=True)
        loss = tf.reduce_sum(out**2)
    expected = x if name == "BatchNormalization" else np.zeros(plain(x).shape)
    np.testing.assert_array_equal(out.numpy(), expected)
    grads = tape.gradient(loss, gated.trainable_weights)
    assert all(g is None or not np.any(g.numpy()) for g in grads)
    for value, weight in zip(before, gated.non_trainable_weights):
        np.testing.assert_array_equal(value, weight.numpy())


def test_a_penalty_counts_only_while_on():
    inputs = keras.Input((3,))
    layer = gated_layers.GatedDense(2, kernel_regularizer=keras.regularizers.L2(0.1))
    model = keras.Model(inputs, layer(inputs))
    assert float(sum(model.losses)) == 0.0
    layer.switch(True)
    expected = 0.1 * np.sum(layer.kernel.numpy() ** 2)
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-6)
    assert layer.get_config()["kernel_regularizer"]["class_name"] == "L2"


def test_switching_on_keeps_the_traced_train_step():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="relu")(inputs)
    gated = gated_layers.GatedDense(4, name="reserve")
    x = keras.layers.Add()([hidden, gated(hidden)])
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.compile("sgd", "mse")
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    y = RNG.normal(size=(6, 2)).astype("float32")
    model.fit(X2, y, batch_size=6, epochs=1, verbose=0)
    kernel = gated.kernel.numpy()
    off = model.predict(X2, verbose=0)
    gated.switch(True)
    model.fit(X2, y, batch_size=6, epochs=1, verbose=0)
    assert len(traces) == 1
    assert np.any(gated.kernel.numpy() != kernel)  # it trains once on
    assert not np.allclose(model.predict(X2, verbose=0), off)


@pytest.mark.parametrize(
    "name, config", [("ReLU", {}), ("Activation", {"activation": "relu"})]
)
def test_a_gated_activation_passes_its_input_on_while_off(name, config):
    gated = gated_layers.GATED[name](**config)
    np.testing.assert_array_equal(gated(X4).numpy(), X4)  # built off
    gated.switch(True)
    np.testing.assert_array_equal(gated(X4).numpy(), np.maximum(X4, 0))


def test_a_gated_add_passes_its_shortcut_on_while_off():
    shortcut, branch = X4, X4[::-1].copy()
    gated = gated_layers.GatedAdd(pass_index=1)
    np.testing.assert_array_equal(gated([branch, shortcut]).numpy(), shortcut)
    gated.switch(True)
    np.testing.assert_allclose(gated([branch, shortcut]).numpy(), shortcut + branch)
    again = gated_layers.GatedAdd.from_config(gated.get_config())
    assert again.pass_index == 1
