"""GradMax and TINY inside a real fit: function kept at insertion, eta units
where they are worth most, significance, refusals."""

import warnings

import keras
import numpy as np
import pytest

import keras_grow as kg
from tests.conftest import sample_model
from tests.helpers import infer

METHODS = [kg.callbacks.GradMax, kg.callbacks.TINY]


def _data(batch=32, take=128):
    return kg.data.load("fashion_mnist_sample", "train", batch, take=take, seed=0)


def _model(notation="VGG11-2"):
    keras.utils.set_random_seed(0)
    return sample_model(notation)


def _grow_once(model, callback, data):
    """One round at the end of epoch 0, outside fit; logits before/after."""
    callback.set_model(model)
    callback.on_train_begin()
    x = next(iter(data))[0]
    before = infer(model, x)
    callback.on_epoch_end(0, {})
    return before, infer(model, x), x


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("notation", ["VGG11-2", "MLP-6-5"])
def test_a_round_adds_eta_units_and_keeps_the_function(method, notation):
    data = _data()
    model = _model(notation)
    widths = model.spec.widths
    callback = method(data, grow_every=1, score_batches=2, seed=0, verbose=0)
    before, after, _ = _grow_once(model, callback, data)
    np.testing.assert_allclose(after, before, atol=1e-5)
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert event["method"] == callback.method
    assert event["units_added"] == max(1, int(0.3 * sum(widths)))
    assert sum(model.spec.widths) - sum(widths) == event["units_added"]
    values = event["unit_values"]
    assert set(values) == {g.name for g in kg.descent.growable_groups(model.spec)}
    # The units taken are the best across layers: none left out is worth
    # more than the least taken.
    taken = {name: model.spec.widths[i] - widths[i] for i, name in enumerate(values)}
    chosen = [v for name, vs in values.items() for v in vs[: taken[name]]]
    passed = [v for name, vs in values.items() for v in vs[taken[name] :]]
    assert min(chosen) >= max(passed, default=0.0)


LAYERS = (("layer1_dense", "layer2_dense"), ("layer2_dense", "classifier"))


def _new_slices(model, old_widths):
    """Per hidden layer that grew: (old units' fan-in, new units' fan-in,
    new units' fan-out), fan-ins cut to the inputs the layer had before."""
    inputs = (28 * 28,) + tuple(old_widths[:-1])
    layers = zip(LAYERS, inputs, old_widths, model.spec.widths)
    for (producer, consumer), rows, old, new in layers:
        if new > old:
            kernel = model.body.get_layer(producer).kernel.numpy()
            fan_out = model.body.get_layer(consumer).kernel.numpy()[old:new]
            yield kernel[:rows, :old], kernel[:, old:new], fan_out


@pytest.mark.parametrize(
    "method, scale", [(kg.callbacks.TINY, 1.0), (kg.callbacks.GradMax, 0.1)]
)
def test_new_units_take_the_closed_form_directions(method, scale):
    """On an MLP: each new unit's fan-in is its direction scaled to `scale`
    times the layer's mean fan-in norm (TINY 1, GradMax 0.1 by default);
    its fan-out is zero (epsilon 0)."""
    data = _data()
    model = _model("MLP-6-5")
    callback = method(data, grow_every=1, score_batches=2, verbose=0)
    assert callback.scale == scale
    _grow_once(model, callback, data)
    grown = list(_new_slices(model, (6, 5)))
    assert grown
    for old, fan_in, fan_out in grown:
        rows = old.shape[0]  # rows for an earlier layer's new units are zero
        np.testing.assert_allclose(
            np.linalg.norm(fan_in[:rows], axis=0),
            scale * np.linalg.norm(old[:rows], axis=0).mean(),
            rtol=1e-5,
        )
        np.testing.assert_array_equal(fan_in[rows:], 0)
        np.testing.assert_array_equal(fan_out, 0)


def test_gradmax_zero_fan_in_keeps_the_function_with_a_live_fan_out():
    data = _data()
    model = _model("MLP-6-5")
    callback = kg.callbacks.GradMax(
        data, grow_every=1, score_batches=2, zero_side="fan_in", verbose=0
    )
    before, after, _ = _grow_once(model, callback, data)
    np.testing.assert_allclose(after, before, atol=1e-6)
    grown = list(_new_slices(model, (6, 5)))
    assert grown
    for _, fan_in, fan_out in grown:
        np.testing.assert_array_equal(fan_in, 0)
        assert (np.linalg.norm(fan_out, axis=1) > 0).all()


def test_a_round_with_no_gradient_grows_nothing_and_says_so():
    """Saturated logits (probability exactly 1 on the label) give zero
    gradients: no unit is worth adding, the round is logged as skipped."""
    model = _model("MLP-4")
    bias = np.zeros(10, "float32")
    bias[0] = 200.0
    model.body.get_layer("classifier").bias.assign(bias)
    x = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    callback = kg.callbacks.TINY(
        (x, np.zeros(64, "int64")),
        grow_every=1,
        score_batches=4,
        unit_count="significant",
        verbose=0,
    )
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {})
    assert model.spec.widths == (4,)
    (event,) = model.growth_log
    assert event["kind"] == "growth_skipped" and event["method"] == "tiny"
    assert event["reason"] == "no unit passed the significance test"
    assert callback.rounds == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(unit_count="significant", score_batches=2), "at least 4"),
        (dict(unit_count="all"), "unit_count"),
        (dict(zero_side="middle"), "zero_side"),
        (dict(epsilon=-1.0), "epsilon"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kg.callbacks.GradMax(_data(), **kwargs)


def test_significant_units_in_a_fit():
    data = _data()
    model = _model("MLP-6-5")
    callback = kg.callbacks.GradMax(
        data,
        grow_every=1,
        max_rounds=1,
        score_batches=4,
        unit_count="significant",
        verbose=0,
    )
    model.fit(data, epochs=2, verbose=0, callbacks=[callback])
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert event["unit_count"] == "significant"
    # At most a layer's width each, and exactly the units the test kept.
    assert event["units_added"] == sum(len(v) for v in event["unit_values"].values())
    assert all(len(v) <= w for v, w in zip(event["unit_values"].values(), (6, 5)))
    counts = event["significant_of_tested"]
    assert {name: kept for name, (kept, _) in counts.items()} == {
        name: len(v) for name, v in event["unit_values"].items()
    }
    assert all(tested <= w for (_, tested), w in zip(counts.values(), (6, 5)))


@pytest.mark.parametrize("method", METHODS)
def test_rounds_of_an_mlp_growing_in_place_measure_with_one_trace(method):
    data = _data()
    model = _model("MLP-6-5")
    callback = method(data, grow_every=1, score_batches=2, seed=0, verbose=0)
    model.fit(data, epochs=3, verbose=0, callbacks=[callback])
    events = [e for e in model.growth_log if e["kind"] == "grow"]
    assert len(events) == 3 and all(e["in_place"] for e in events)
    assert [e["measure_traces"] for e in events] == [1, 1, 1]
    assert model.trace_counts["train"] == 1


@pytest.mark.parametrize("method", METHODS)
def test_a_text_cnn_under_a_string_binary_loss_grows_its_convolutions(method):
    # keras.io's text classification from scratch, small: token ids, Conv1D,
    # one sigmoid output, compile(loss="binary_crossentropy") and labels of
    # shape (batch,), which Keras matches to the (batch, 1) outputs.
    keras.utils.set_random_seed(0)
    ids = keras.Input((24,), dtype="int64")
    x = keras.layers.Embedding(50, 6)(ids)
    x = keras.layers.Conv1D(5, 5, strides=2, activation="relu", name="c1")(x)
    x = keras.layers.Conv1D(4, 3, padding="causal", activation="relu", name="c2")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    user = keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(x))
    model = kg.GrowableModel.from_keras(user)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, (64, 24))
    labels = rng.integers(0, 2, 64).astype("float32")
    grower = method((tokens, labels), grow_every=1, score_batches=2, seed=0, verbose=0)
    before = infer(model, tokens)
    grower.set_model(model)
    grower.on_train_begin()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed round is a warning
        grower.on_epoch_end(0, {})
    np.testing.assert_allclose(infer(model, tokens), before, atol=1e-5)
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert set(event["unit_values"]) == {"c1", "c2"}  # the embedding is skipped
    assert sum(model.spec.widths) - (6 + 5 + 4) == event["units_added"] > 0
