"""Width growth in place: no retrace, and the same training as a rebuild."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import in_place
from keras_grow import keras_compat
from keras_grow.transfer import AddUnits
from keras_grow.transfer import SplitUnits

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(shape=(8,), count=64, classes=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count,) + shape).astype("float32")
    return x, rng.integers(0, classes, count)


def _model(notation="MLP-16-16", shape=(8,), optimizer=None, **parse):
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(kg.specs.parse(notation, shape, 3, **parse))
    model.compile(optimizer or keras.optimizers.Adam(1e-2), LOSS)
    return model


def _grow_and_train(model, x, y, grow):
    """Trains an epoch, grows, trains two more; returns the losses."""
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0).history["loss"]
    grow(model)
    return history + model.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"]


def _split_and_widen(model):
    spec = model.spec
    return model.grow(
        spec.replace(widths=(18, 20)),
        morphisms=[SplitUnits("layer1", [0, 3]), AddUnits("layer2", 4)],
        seed=1,
    )


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.Adam(1e-2),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    ],
)
def test_width_growth_in_fit_trains_as_a_rebuild_does_without_a_retrace(
    optimizer, monkeypatch
):
    x, y = _data()
    grown = _model(optimizer=optimizer())
    history = _grow_and_train(grown, x, y, _split_and_widen)
    assert grown.growth_log[-1]["in_place"] is True
    assert grown.trace_counts["train"] == 1

    monkeypatch.setattr(in_place, "plan", lambda model, body: None)
    rebuilt = _model(optimizer=optimizer())
    expected = _grow_and_train(rebuilt, x, y, _split_and_widen)
    assert rebuilt.growth_log[-1]["in_place"] is False
    assert rebuilt.trace_counts["train"] == 2
    np.testing.assert_allclose(history, expected, rtol=1e-5)
    for got, want in zip(grown.get_weights(), rebuilt.get_weights()):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for got, want in zip(grown.optimizer.variables, rebuilt.optimizer.variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


def test_the_grown_net_computes_what_a_net_built_at_its_widths_computes():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = model.predict(x, verbose=0)
    event = model.grow(model.spec.replace(widths=(20, 24)))
    assert event["in_place"] is True
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-6)  # new units: zero out
    fresh = kg.GrowableModel(model.spec)
    fresh.set_weights(model.get_weights())
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), after)
    assert [tuple(v.shape) for v in model.body.weights] == [
        (8, 20),
        (20,),
        (20, 24),
        (24,),
        (24, 3),
        (3,),
    ]
    assert model.count_params() == fresh.count_params()
    assert model.trace_counts == {"train": 1, "test": 0}


def test_rollback_of_an_in_place_growth_restores_weights_slots_and_shapes():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    weights = model.get_weights()
    slots = [v.numpy() for v in model.optimizer.variables]
    _split_and_widen(model)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.rollback("test")
    assert model.spec.notation == "MLP-16-16"
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(model.optimizer.variables, slots):
        assert tuple(got.shape) == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 1


@pytest.mark.parametrize("trained_before_saving", [True, False])
def test_a_run_restored_from_a_checkpoint_still_grows_in_place(
    tmp_path, trained_before_saving
):
    x, y = _data()
    model = _model()
    if trained_before_saving:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    kg.checkpoints.save(str(tmp_path), model, epoch=1)
    restored = _model()
    kg.checkpoints.restore(restored, kg.checkpoints.latest(str(tmp_path)))
    slots = list(restored.optimizer.variables)
    for a, b in zip(model.optimizer.variables, slots):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    restored.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _split_and_widen(restored)["in_place"] is True
    restored.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert restored.trace_counts["train"] == 1
    assert list(restored.optimizer.variables) == slots  # the same optimizer


def test_growing_a_convolution_rebuilds_and_retraces():
    x, y = _data((8, 8, 1), count=32)
    model = _model("Basic3ResNet-1-1-1", (8, 8, 1), widths=(4, 4, 4))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not any(keras_compat.unknown_axes(v) for v in model.body.variables)
    event = model.grow(model.spec.replace(widths=(4, 6, 4)))
    assert event["in_place"] is False
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 2


def test_depth_growth_rebuilds_and_retraces():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    event = model.grow(model.spec.replace(widths=(16, 16, 16)))
    assert event["in_place"] is False
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 2
    # The grown body is resizable again: its next width growth is in place.
    assert model.grow(model.spec.replace(widths=(16, 20, 16)))["in_place"] is True


def test_saved_and_exported_models_of_an_in_place_growth_are_ordinary(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _split_and_widen(model)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "grown.keras")
    loaded = keras.models.load_model(tmp_path / "grown.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    served = tf.saved_model.load(model.export_serving(str(tmp_path / "serving")))
    shapes = [tuple(v.shape) for v in served.variables]
    assert all(None not in shape for shape in shapes)
    assert sorted(shapes) == sorted(tuple(w.shape) for w in model.get_weights())
    logits = served.signatures["serving_default"](images=tf.constant(x))["logits"]
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5)


def _fit_once(keras_model, shape):
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel.from_keras(keras_model)
    model.compile(keras.optimizers.AdamW(1e-3), LOSS)
    x, y = _data(shape, count=32)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return model, x, y


def test_a_transformers_feed_forward_grows_in_place_its_heads_by_rebuilding():
    inputs = keras.Input((6, 8))
    stream = keras.layers.Dense(12, name="embed")(inputs)
    attended = keras.layers.MultiHeadAttention(2, 4, name="mha")(stream, stream)
    stream = keras.layers.Add()([stream, attended])
    stream = keras.layers.LayerNormalization(name="norm")(stream)
    hidden = keras.layers.Dense(16, activation="relu", name="ff1")(stream)
    stream = keras.layers.Add()([stream, keras.layers.Dense(12, name="ff2")(hidden)])
    pooled = keras.layers.GlobalAveragePooling1D()(stream)
    logits = keras.layers.Dense(3, name="logits")(pooled)
    model, x, y = _fit_once(keras.Model(inputs, logits), (6, 8))
    before = model.predict(x, verbose=0)
    widths = model.spec.widths
    assert sorted(widths) == [2, 12, 16]  # heads, stream, feed-forward
    wider = [w * 2 if w == 16 else w for w in widths]
    assert model.grow(model.spec.with_widths(wider))["in_place"] is True
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 1
    # The stream holds a LayerNormalization, the heads an attention layer.
    assert model.grow(model.spec.scaled(width=2.0))["in_place"] is False
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 2


def test_dense_units_under_batch_normalization_and_dropout_grow_in_place():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, name="hidden")(inputs)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    hidden = keras.layers.Dropout(0.1)(keras.layers.ReLU()(hidden))
    logits = keras.layers.Dense(3, name="logits")(hidden)
    model, x, y = _fit_once(keras.Model(inputs, logits), (8,))
    before = model.predict(x, verbose=0)
    event = model.grow(model.spec.with_widths([20]))
    assert event["in_place"] is True
    assert tuple(model.body.get_layer("norm").gamma.shape) == (20,)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.trace_counts["train"] == 1


def test_growths_in_place_in_fit_keep_the_optimizer_free_old_bodies_say_no_retrace(
    capsys,
):
    x, y = _data()
    model = _model()
    optimizer = model.optimizer
    stages = {e: model.spec.with_widths((16 + 2 * e, 16 + e)) for e in (1, 2, 3)}
    bodies = []
    remember = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: bodies.append(weakref.ref(model.body))
    )
    model.fit(
        x,
        y,
        epochs=4,
        batch_size=16,
        validation_data=(x, y),
        callbacks=[remember, kg.callbacks.ScheduledGrowth(stages)],
        verbose=0,
    )
    assert model.spec.notation == "MLP-22-19"
    assert [e["in_place"] for e in model.growth_log] == [True, True, True]
    assert model.trace_counts == {"train": 1, "test": 1}
    assert model.optimizer is optimizer
    gc.collect()
    # Each epoch's body before that epoch's growth: the last growth's stays
    # for `rollback`, older ones go.
    assert [b() is not None for b in bodies] == [False, False, False, True]
    assert "retraced" not in capsys.readouterr().out
