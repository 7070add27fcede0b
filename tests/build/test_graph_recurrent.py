"""Recurrent layers (LSTM, GRU, SimpleRNN) in a user's model: their state's
units grow gate by gate, function-preserving, with the optimizer state in
the right places; the mask Keras propagates from `Embedding(mask_zero=True)`
survives the rebuild."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import transfer
from keras_grow.descent.neighbourhood import kernel_groups
from keras_grow.specs import graph_analysis
from keras_grow.transfer.weights import layer_variables
from keras_grow.transfer.weights import weight_shapes

RNNS = [keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN]
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def _two_rnns(cls):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 3))
    x = cls(5, return_sequences=True, name="rnn1")(inputs)
    x = cls(4, name="rnn2")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def _sequences(n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 7, 3)).astype("float32")


@pytest.mark.parametrize("cls", RNNS, ids=lambda c: c.__name__)
def test_rnn_units_grow_by_new_units_and_splits_keeping_the_function(cls):
    user = _two_rnns(cls)
    model = kg.GrowableModel.from_keras(user)
    x = _sequences()
    before = user.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    assert model.spec.widths == (5, 4)
    model.grow(
        model.spec.with_widths((7, 6)),
        morphisms=[
            transfer.SplitUnits("rnn1", (0, 3)),
            transfer.AddUnits("rnn2", 2),
        ],
    )
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    gates = GATES[cls.__name__]
    kernels = {
        key.split("/")[-1]: tuple(v.shape)
        for key, v in layer_variables(model.body.get_layer("rnn2")).items()
    }
    assert kernels["kernel"] == (7, gates * 6)
    assert kernels["recurrent_kernel"] == (6, gates * 6)
    assert model.body.get_layer("logits").kernel.shape == (6, 3)
    # The parameters of the same architecture built by Keras at these widths.
    fresh = keras.Sequential(
        [
            keras.Input((7, 3)),
            cls(7, return_sequences=True),
            cls(6),
            keras.layers.Dense(3),
        ]
    )
    assert model.count_params() == fresh.count_params()


@pytest.mark.parametrize("cls", RNNS, ids=lambda c: c.__name__)
def test_a_split_rnn_unit_is_two_units_of_one_state(cls):
    """With no perturbation the children compute their parent's state at
    every step, and each sends half of what it sent."""
    user = _two_rnns(cls)
    model = kg.GrowableModel.from_keras(user)
    x = _sequences()
    model.grow(
        model.spec.with_widths((6, 4)), morphisms=[transfer.SplitUnits("rnn1", (2,))]
    )
    probe = keras.Model(model.body.inputs, model.body.get_layer("rnn1").output)
    states = probe.predict(x, verbose=0)
    np.testing.assert_allclose(states[..., 5], states[..., 2], atol=1e-6)
    old = keras.Model(user.inputs, user.get_layer("rnn1").output).predict(x, verbose=0)
    np.testing.assert_allclose(states[..., :5], old, atol=1e-5)


def test_optimizer_state_follows_the_units_into_every_gate():
    user = _two_rnns(keras.layers.LSTM)
    model = kg.GrowableModel.from_keras(user)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = _sequences(16), np.arange(16) % 3
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)

    def moments(layer, key):
        variable = layer_variables(model.body.get_layer(layer))[key]
        path = variable.path.replace("/", "_") + "_"
        return [
            np.array(v.numpy())
            for v in model.optimizer.variables
            if v.name.startswith(path) and tuple(v.shape) == tuple(variable.shape)
        ]

    kernel_before = moments("rnn1", "lstm_cell/kernel")
    recurrent_before = moments("rnn1", "lstm_cell/recurrent_kernel")
    bias_before = moments("rnn1", "lstm_cell/bias")
    assert len(kernel_before) == 2  # Adam's two moments
    model.grow(model.spec.with_widths((7, 4)))
    for before, after in zip(kernel_before, moments("rnn1", "lstm_cell/kernel")):
        grown = after.reshape(3, 4, 7)  # (inputs, gates, units)
        np.testing.assert_array_equal(grown[..., :5], before.reshape(3, 4, 5))
        assert not grown[..., 5:].any()  # new units start with none
    for before, after in zip(
        recurrent_before, moments("rnn1", "lstm_cell/recurrent_kernel")
    ):
        grown = after.reshape(7, 4, 7)  # (units' states, gates, units)
        np.testing.assert_array_equal(grown[:5, :, :5], before.reshape(5, 4, 5))
        assert not grown[5:].any() and not grown[:, :, 5:].any()
    for before, after in zip(bias_before, moments("rnn1", "lstm_cell/bias")):
        np.testing.assert_array_equal(after.reshape(4, 7)[:, :5], before.reshape(4, 5))
    assert np.abs(kernel_before[0]).max() > 0  # the state was not all zero
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)


def _masked_text_model(mask_zero=True):
    keras.utils.set_random_seed(0)
    tokens = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=mask_zero, name="embedding")(tokens)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.LSTM(6, return_sequences=True, name="lstm")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="logits")(x))


def _padded_tokens():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, size=(8, 12)).astype("int32")
    tokens[:, rng.integers(4, 12)] = 0
    tokens[:, 9:] = 0
    return tokens


def test_the_mask_keras_propagates_from_an_embedding_survives_growth():
    user = _masked_text_model()
    model = kg.GrowableModel.from_keras(user)
    tokens = _padded_tokens()
    before = user.predict(tokens, verbose=0)
    np.testing.assert_allclose(model.predict(tokens, verbose=0), before, atol=1e-6)
    unmasked = _masked_text_model(mask_zero=False)
    unmasked.set_weights(user.get_weights())
    assert np.abs(unmasked.predict(tokens, verbose=0) - before).max() > 1e-3
    model.grow(model.spec.with_widths((10, 9)))
    np.testing.assert_allclose(model.predict(tokens, verbose=0), before, atol=1e-5)
    assert [n["class_name"] for n in model.spec.nodes].count("NotEqual") == 0


def test_firefly_and_the_closed_forms_skip_an_rnn_naming_it():
    model = kg.GrowableModel.from_keras(_masked_text_model())
    groups, skipped = kernel_groups(model.spec, weight_shapes(model.body))
    assert skipped == {
        "embedding": "its units are the inputs of the RNN 'lstm', which this "
        "method does not measure",
        "lstm": "its units are the state of the RNN 'lstm', which this method "
        "does not measure",
    }
    assert groups == []


def test_an_rnn_across_its_units_is_fixed_with_the_reason():
    inputs = keras.Input((7, 3))
    x = keras.layers.LSTM(5, activation="softmax", name="rnn")(inputs)
    model = kg.GrowableModel.from_keras(keras.Model(inputs, keras.layers.Dense(3)(x)))
    [group] = [g for g in graph_analysis.analyse(model.spec).groups if g.name == "rnn"]
    assert group.fixed == ("'rnn' applies 'softmax' across its units",)


@pytest.mark.parametrize(
    "kwargs, why",
    [
        ({"stateful": True}, "keeps its state between batches, for one batch size"),
        ({"return_state": True}, "returns its states as outputs of their own"),
    ],
)
def test_stateful_rnns_and_rnns_returning_states_are_refused(kwargs, why):
    inputs = keras.Input((7, 3), batch_size=4)
    x = keras.layers.LSTM(5, name="rnn", **kwargs)(inputs)
    x = x[0] if kwargs.get("return_state") else x
    user = keras.Model(inputs, keras.layers.Dense(3)(x))
    with pytest.raises(ValueError, match=rf"LSTM 'rnn' {why} \(\w+=True\)"):
        kg.GrowableModel.from_keras(user)
