"""Units read through a Flatten: a Dense after it holds a unit's rows at
every position (`structure.unit_view`), and growth moves them, and the
optimizer's state of them, together."""

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import build
from keras_grow import descent
from keras_grow.transfer import weights as weight_io
from keras_grow.transfer import width

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _convnet():
    """keras.io's MNIST convnet, smaller: Conv2D, pooling, Conv2D, Flatten,
    Dropout, Dense."""
    return keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(6, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10),
        ]
    )


def _text_classifier():
    """Keras' classic text model: Embedding, Flatten, Dense."""
    return keras.Sequential(
        [
            keras.Input((8,), dtype="int32"),
            keras.layers.Embedding(50, 4),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.Dense(2),
        ]
    )


def _trained(plain, x, y):
    model = kg.GrowableModel.from_keras(plain)
    model.compile("adam", LOSS)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return model


def _adam_slots(model, layer):
    """Adam's moments of `layer`'s kernel, in order."""
    path = model.body.get_layer(layer).kernel.path.replace("/", "_")
    return [v.numpy() for v in model.optimizer.variables if v.name.startswith(path)]


def test_the_conv_before_a_flatten_grows():
    spec = kg.GrowableModel.from_keras(_convnet()).spec
    groups = {g.name: g for g in spec.analysis.groups}
    assert groups["conv2d_1"].growable
    assert groups["conv2d_1"].flat_consumers == ("dense",)
    assert groups["conv2d_1"].consumers == ()
    assert spec.scaled(width=2).widths == (8, 12)


def test_growth_spreads_weights_and_optimizer_state_by_position():
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12, 12, 1), dtype=np.float32), np.arange(64) % 10
    model = _trained(_convnet(), x, y)
    before = model.predict(x, verbose=0)
    shapes = weight_io.weight_shapes(model.body)
    expected = width.grown_param_count(
        shapes, build.unit_groups(model.spec), {"conv2d_1": 5}
    )
    kernel = model.body.get_layer("dense").kernel.numpy()
    moments = _adam_slots(model, "dense")
    positions = kernel.shape[0] // 6  # a 3x3 map of 6 units

    model.grow(
        model.spec.with_widths((4, 11)),
        morphisms=[
            width.SplitUnits("conv2d_1", (0, 2, 5)),
            width.AddUnits("conv2d_1", 2),  # epsilon 0: function kept
        ],
    )

    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    assert model.count_params() == expected
    old = kernel.reshape(positions, 6, 10)
    new = model.body.get_layer("dense").kernel.numpy().reshape(positions, 11, 10)
    np.testing.assert_array_equal(new[:, [1, 3, 4]], old[:, [1, 3, 4]])
    # Split units 0, 2, 5 and their children 6, 7, 8 send half each.
    np.testing.assert_allclose(new[:, [0, 2, 5]], old[:, [0, 2, 5]] / 2)
    np.testing.assert_allclose(new[:, [6, 7, 8]], old[:, [0, 2, 5]] / 2)
    np.testing.assert_array_equal(new[:, 9:], 0.0)
    grown_moments = _adam_slots(model, "dense")
    assert len(grown_moments) == len(moments) == 2
    for moment, grown in zip(moments, grown_moments):
        grown = grown.reshape(positions, 11, 10)
        np.testing.assert_array_equal(grown[:, :6], moment.reshape(positions, 6, 10))
        np.testing.assert_array_equal(grown[:, 6:], 0.0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # the grown net trains


def test_an_embedding_before_a_flatten_grows_by_a_rebuild():
    """Embedding groups grow in place elsewhere; read through a Flatten,
    their units move, so the model rebuilds and places the state."""
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 50, (64, 8)).astype("int32"), np.arange(64) % 2
    model = _trained(_text_classifier(), x, y)
    before = model.predict(x, verbose=0)
    moments = _adam_slots(model, "dense")
    event = model.grow(model.spec.with_widths((7, 5)))
    assert not event.get("in_place")
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    for moment, grown in zip(moments, _adam_slots(model, "dense")):
        grown = grown.reshape(8, 7, 5)
        np.testing.assert_array_equal(grown[:, :4], moment.reshape(8, 4, 5))
        np.testing.assert_array_equal(grown[:, 4:], 0.0)


def test_measured_growth_reads_a_flattened_group():
    model = kg.GrowableModel.from_keras(_convnet())
    kept, skipped = descent.kernel_groups(
        model.spec, weight_io.weight_shapes(model.body)
    )
    assert [g.name for g in kept] == ["conv2d", "conv2d_1"] and not skipped


def test_firefly_measures_and_grows_the_units_read_through_a_flatten():
    rng = np.random.default_rng(4)
    x, y = rng.random((64, 12, 12, 1), dtype=np.float32), np.arange(64) % 10
    model = _trained(_convnet(), x, y)
    positions = model.body.get_layer("dense").kernel.shape[0] // 6
    firefly = kg.callbacks.Firefly(
        (x, y), grow_every=1, max_rounds=1, delta_steps=2, seed=0, verbose=0
    )
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[firefly], verbose=0)
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert "skipped_groups" not in event
    # Both groups' units split, and each pools eta = floor(0.3 x 10) new.
    assert event["candidates"] == (4 + 6) + 2 * 3
    assert sum(model.spec.widths) == 10 + 3
    kernel = model.body.get_layer("dense").kernel
    assert kernel.shape == (positions * model.spec.widths[1], 10)


@pytest.mark.parametrize("reader", ["BatchNormalization", "Reshape"])
def test_a_layer_mixing_the_flattened_map_keeps_its_units_fixed(reader):
    layer = (
        keras.layers.BatchNormalization()
        if reader == "BatchNormalization"
        else keras.layers.Reshape((6, 9))
    )
    plain = keras.Sequential(
        [
            keras.Input((5, 5, 1)),
            keras.layers.Conv2D(6, 3),
            keras.layers.Flatten(),
            layer,
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    report = kg.GrowableModel.from_keras(plain).spec.growth_report()
    assert report[0].startswith("conv2d")
    assert "reads the flattened map of its units" in report[0]


@pytest.mark.parametrize("method", [kg.callbacks.GradMax, kg.callbacks.TINY])
def test_closed_form_growth_measures_through_a_flatten(method):
    """GradMax and TINY read a unit's fan-out at every position of the
    flattened map: the conv before the Flatten grows, the function kept."""
    rng = np.random.default_rng(2)
    x, y = rng.random((64, 12, 12, 1), dtype=np.float32), np.arange(64) % 10
    model = _trained(_convnet(), x, y)
    data = (x, y)
    callback = method(data, grow_every=1, score_batches=2, seed=0, verbose=0)
    callback.set_model(model)
    callback.on_train_begin()
    before = model.predict(x, verbose=0)
    callback.on_epoch_end(0, {})
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    (event,) = [e for e in model.growth_log if e["kind"] == "grow"]
    assert set(event["unit_values"]) == {"conv2d", "conv2d_1"}
    assert model.spec.widths[1] > 6  # the units read through the Flatten
    assert "skipped_groups" not in event


def test_gradmax_live_fan_out_lands_on_each_position_of_the_new_units():
    """With the fan-in zero, the new units' fan-out is live: in the Dense's
    (positions, units, out) view it fills the new units at every position
    and leaves the old units' rows as they were."""
    rng = np.random.default_rng(3)
    x, y = rng.random((64, 12, 12, 1), dtype=np.float32), np.arange(64) % 10
    model = _trained(_convnet(), x, y)
    kernel = model.body.get_layer("dense").kernel.numpy()
    positions = kernel.shape[0] // 6
    callback = kg.callbacks.GradMax(
        (x, y), zero_side="fan_in", grow_every=1, score_batches=2, seed=0, verbose=0
    )
    callback.set_model(model)
    callback.on_train_begin()
    before = model.predict(x, verbose=0)
    callback.on_epoch_end(0, {})
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-5)
    grown = model.spec.widths[1]
    assert grown > 6
    view = model.body.get_layer("dense").kernel.numpy().reshape(positions, grown, 10)
    np.testing.assert_array_equal(view[:, :6], kernel.reshape(positions, 6, 10))
    assert (np.abs(view[:, 6:]).sum(axis=-1) > 0).all()
