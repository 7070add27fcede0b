"""Firefly and its random baselines inside a real fit on the embedded sample."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow import build
from tests.conftest import compile_sgd
from tests.conftest import sample_model


def _data(batch=64, take=256):
    return kg.data.load("fashion_mnist_sample", "train", batch, take=take, seed=0)


def _model(notation="VGG11-2", **extra):
    return sample_model(notation, **extra)


def _one_round(train, **kwargs):
    """Firefly growing once, after the first epoch, with short descents."""
    return kg.callbacks.Firefly(
        train, grow_every=1, max_rounds=1, delta_steps=2, seed=0, verbose=0, **kwargs
    )


def _callbacks(train):
    common = dict(grow_every=1, max_rounds=2, seed=0, verbose=0)
    return [
        kg.callbacks.Firefly(train, delta_steps=2, score_batches=1, **common),
        kg.callbacks.RandomSplit(**common),
        kg.callbacks.RandomNew(**common),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    # Nightly for the random baselines: they share Firefly's rounds.
    "index",
    [0] + [pytest.param(i, marks=pytest.mark.nightly) for i in (1, 2)],
)
def test_two_rounds_in_a_real_fit_log_widths_that_match_the_parameters(index):
    train = _data()
    callback = _callbacks(train)[index]
    model = _model()
    steps_per_epoch = len(list(train))
    model.fit(train, epochs=3, callbacks=[callback], verbose=0, shuffle=False)
    rounds = [e for e in model.growth_log if e["kind"] == "grow"]
    assert [e["round"] for e in rounds] == [1, 2]
    assert {e["method"] for e in rounds} == {callback.method}
    for event in rounds:
        # eta = floor(0.3 x units), exactly, globally across layers.
        assert event["units_added"] == max(1, int(0.3 * sum(event["widths_before"])))
        assert (
            sum(event["widths_after"]) - sum(event["widths_before"])
            == event["units_added"]
        )
        grown = model.spec.with_widths(event["widths_after"])
        assert event["params_after"] == build.build_body(grown).count_params()
    assert list(model.spec.widths) == rounds[-1]["widths_after"]
    # The optimizer was carried, never restarted: it counted every step.
    assert int(model.optimizer.iterations.numpy()) == 3 * steps_per_epoch


@pytest.mark.slow
def test_firefly_grows_depth_and_width_of_a_resnet():
    train = _data()
    model = _model("Basic3ResNet-1-1-1", widths=(4, 4, 8))
    firefly = _one_round(
        train, score_batches=2, grow_depth=True, new_layers_per_round=3
    )
    model.fit(train, epochs=2, callbacks=[firefly], verbose=0, shuffle=False)
    event = [e for e in model.growth_log if e["kind"] == "grow"][0]
    negative = sum(s < 0 for s in event["depth_scores"])
    assert len(event["new_layers"]) == negative
    assert sum(model.spec.depths) == 3 + negative
    assert model.body.count_params() == event["params_after"]


def test_max_params_caps_growth_and_then_ends_it():
    train = _data(take=128)
    model = _model()
    start = model.body.count_params()
    cap = start + 60
    growth = kg.callbacks.RandomNew(grow_every=1, max_params=cap, seed=0, verbose=0)
    model.fit(train, epochs=3, callbacks=[growth], verbose=0, shuffle=False)
    assert start < model.body.count_params() <= cap
    assert growth.finished
    assert model.growth_log[-1]["kind"] == "growth_end"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"growth_ratio": 0}, "growth_ratio"),
        ({"growth_ratio": 1.5}, "growth_ratio"),
        ({"grow_every": 0}, "grow_every"),
        ({"epsilon": -1}, "epsilon"),
        ({"score_samples": 0}, "score_samples"),
        ({"candidates_per_layer": 0}, "candidates_per_layer"),
        ({"split_epsilon": 0}, "split_epsilon"),
        ({"delta_optimizer": "sgd"}, "delta_optimizer"),
        ({"split": False, "new_units": False}, "split=True or new_units=True"),
        ({"max_params": 0}, "max_params"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kg.callbacks.Firefly(_data(take=64), **kwargs)


def test_a_round_pools_eta_new_units_per_layer_and_steps_splits_by_root_epsilon():
    # The default pool lets a round put all its eta units into one layer;
    # splits take sqrt(epsilon) steps, new units epsilon (one scale).
    train = _data(take=128)
    model = _model("MLP-6-4")
    callback = _one_round(train, epsilon=0.04, delta_optimizer="rmsprop")
    model.fit(train, epochs=1, callbacks=[callback], verbose=0, shuffle=False)
    event = [e for e in model.growth_log if e["kind"] == "grow"][0]
    assert event["eta"] == 3  # floor(0.3 x 10)
    assert event["new_unit_candidates"] == 3
    assert event["candidates"] == (6 + 4) + 2 * 3  # every unit splits, + pools
    assert event["split_epsilon"] == pytest.approx(0.2)
    assert event["epsilon"] == pytest.approx(0.04)
    assert sum(model.spec.widths) == 10 + 3


def test_train_data_must_be_a_dataset():
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        kg.callbacks.Firefly([1, 2, 3])


@pytest.mark.parametrize(
    "notation,kwargs,error,match",
    [
        ("MobileNetV1-2", {"grow_depth": True}, ValueError, "grow_depth"),
        ("Bottleneck4ResNet-1-1-1-1", {}, ValueError, "4x their stage width"),
    ],
)
def test_specs_that_cannot_grow_fail_before_training(notation, kwargs, error, match):
    train = _data(take=64)
    model = (
        _model(notation)
        if "Bottleneck" not in notation
        else _model(notation, widths=(2, 2, 2, 2))
    )
    firefly = kg.callbacks.Firefly(train, verbose=0, **kwargs)
    with pytest.raises(error, match=match):
        model.fit(train, epochs=1, callbacks=[firefly], verbose=0, shuffle=False)
    assert model.optimizer.iterations.numpy() == 0  # nothing trained


def test_a_plain_keras_model_is_refused():
    train = _data(take=64)
    inputs = keras.Input((28, 28, 1))
    plain = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    compile_sgd(plain)
    with pytest.raises(TypeError, match=r"GrowableModel.from_keras\(model\)"):
        plain.fit(train, epochs=1, callbacks=[kg.callbacks.RandomSplit()], verbose=0)


# Nightly: tests/test_growable_model.py grows under mixed_bfloat16 fast.
@pytest.mark.nightly
def test_firefly_grows_under_mixed_bfloat16(mixed_bfloat16):
    train = kg.data.load("fashion_mnist_sample", "train", 32, take=128)
    model = compile_sgd(kg.GrowableModel(kg.specs.parse("VGG11-4", (28, 28, 1), 10)))
    firefly = _one_round(train, score_batches=1, grow_depth=True)
    history = model.fit(train, epochs=2, verbose=0, callbacks=[firefly])
    event = next(e for e in model.growth_log if e["kind"] == "grow")
    assert sum(model.spec.widths) > 8 * 4 and event["units_added"] > 0
    assert np.all(np.isfinite(event["depth_scores"]))
    assert np.all(np.isfinite(history.history["loss"]))
    assert {v.dtype for v in model.body.weights} == {"float32"}
    assert model.body.get_layer("stage1_layer1_conv").compute_dtype == "bfloat16"
    assert model.body.get_layer("classifier").compute_dtype == "float32"


def _norm_statistics(model):
    return {
        layer.name: (layer.moving_mean.numpy(), layer.moving_variance.numpy())
        for layer in model.body.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def test_new_units_statistics_are_measured_on_data_and_nothing_else_changes():
    from keras_grow.descent import scoring
    from keras_grow.transfer import calibration

    fixed = kg.data.load(
        "fashion_mnist_sample", "train", 64, take=128, shuffle=False, augment=False
    )
    grown = {}
    for batches in (0, 2):
        model = _model("VGG11-2")
        growth = kg.callbacks.RandomNew(
            grow_every=1,
            max_rounds=1,
            seed=0,
            verbose=0,
            calibrate_new_units=batches,
            calibration_data=fixed,
        )
        keras.utils.set_random_seed(0)
        model.fit(fixed, epochs=1, callbacks=[growth], verbose=0, shuffle=False)
        grown[batches] = (model, _norm_statistics(model))
    model, calibrated = grown[2]
    _, plain = grown[0]
    event = [e for e in model.growth_log if e["kind"] == "grow"][0]
    new = {group: plan["new"] for group, plan in event["plan"].items()}
    assert sum(new.values()) == event["units_added"] > 0
    expected = {}
    for group in kg.descent.growable_groups(model.spec):
        for norm in group.norms:
            width = model.spec.widths[group.width_index]
            expected[norm] = list(range(width - new.get(group.name, 0), width))
    names = [n for n, idx in expected.items() if idx]
    # Measured on the net as it ended up (each layer after the ones before
    # it were set), so measuring again gives the same numbers.
    data = scoring.batches(fixed)
    moments = calibration.input_moments(model.body, names, [next(data), next(data)])
    for name, (mean, var) in zip(names, moments):
        idx = expected[name]
        np.testing.assert_allclose(
            calibrated[name][0][idx], mean[idx], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            calibrated[name][1][idx], var[idx], rtol=1e-4, atol=1e-5
        )
        # Without calibration they start at 0/1, as the authors'.
        np.testing.assert_array_equal(plain[name][0][idx], 0.0)
        np.testing.assert_array_equal(plain[name][1][idx], 1.0)
    for name, (mean, var) in plain.items():
        old = [i for i in range(len(mean)) if i not in expected.get(name, [])]
        np.testing.assert_array_equal(calibrated[name][0][old], mean[old])
        np.testing.assert_array_equal(calibrated[name][1][old], var[old])


def test_calibration_needs_data():
    with pytest.raises(ValueError, match="calibration_data"):
        kg.callbacks.RandomNew(calibrate_new_units=2)


def test_one_hot_labels_score_and_grow_like_sparse_ones():
    # Keras' habit: one-hot labels with CategoricalCrossentropy. The scores
    # come from the compiled loss on the labels as given.
    sparse = kg.data.load(
        "fashion_mnist_sample", "train", 64, take=128, shuffle=False, augment=False
    )
    one_hot = sparse.map(lambda x, y: (x, tf.one_hot(y, 10)))
    events = {}
    for name, data, loss in (
        (
            "sparse",
            sparse,
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ),
        ("one_hot", one_hot, keras.losses.CategoricalCrossentropy(from_logits=True)),
    ):
        keras.utils.set_random_seed(0)
        model = _model("MLP-6-4")
        model.compile(keras.optimizers.SGD(0.05), loss, metrics=["accuracy"])
        model.fit(data, epochs=1, callbacks=[_one_round(data)], verbose=0)
        events[name] = [e for e in model.growth_log if e["kind"] == "grow"][0]
    assert events["one_hot"]["score_min"] < 0
    assert events["one_hot"]["widths_after"] == events["sparse"]["widths_after"]
    assert events["one_hot"]["score_min"] == pytest.approx(
        events["sparse"]["score_min"], rel=1e-3
    )


def test_arrays_are_training_data_as_fit_takes_them(sample_arrays):
    # Firefly(train_data=(x, y)), as fit(x, y): batched by 32, shuffled.
    x, y = sample_arrays
    model = _model("MLP-6-4")
    firefly = _one_round((x[:128], y[:128]), score_batches=2)
    model.fit(x[:128], y[:128], epochs=1, callbacks=[firefly], verbose=0)
    event = [e for e in model.growth_log if e["kind"] == "grow"][0]
    assert sum(event["widths_after"]) == 13
    first = next(iter(firefly.train_data))
    assert tuple(first[0].shape) == (32, 28, 28, 1)
    with pytest.raises(ValueError, match="as many labels as examples"):
        kg.callbacks.Firefly((x[:4], y[:3]))
    # Unscaled integer pixels are refused at fit start, as fit refuses
    # them, not scored as floats in [0, 255].
    pixels = (x[:64] * 255).astype("uint8")
    model = _model("MLP-6-4")
    firefly = _one_round((pixels, y[:64]))
    with pytest.raises(TypeError, match="received uint8 inputs from `train_data`"):
        model.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[firefly])


def test_a_round_shows_its_progress(capsys):
    train = _data(take=128)
    model = _model("MLP-6-4")
    firefly = kg.callbacks.Firefly(
        train, grow_every=1, max_rounds=1, delta_steps=3, score_batches=2, seed=0
    )
    model.fit(train, epochs=1, callbacks=[firefly], verbose=0)
    out = capsys.readouterr().out
    assert "firefly round 1 (width): 16 candidates, 3 step-one steps" in out
    assert "5/5" in out  # the progress bar reached the end
    assert "firefly round 1: +3 units" in out
    # fit(verbose=2) prints a line per epoch and no bars; nor does Firefly.
    model = _model("MLP-6-4")
    firefly = kg.callbacks.Firefly(
        train, grow_every=1, max_rounds=1, delta_steps=3, score_batches=2, seed=0
    )
    model.fit(train, epochs=1, callbacks=[firefly], verbose=2)
    out = capsys.readouterr().out
    assert "firefly round 1 (width)" in out and "5/5" not in out


@pytest.mark.parametrize("empty", ["taken", "filtered"])
def test_empty_train_data_is_refused_before_training(empty):
    train = _data(take=64)
    nothing = train.take(0) if empty == "taken" else train.filter(lambda x, y: False)
    model = _model("VGG11-4")
    firefly = kg.callbacks.Firefly(nothing, verbose=0)
    with pytest.raises(ValueError, match="`train_data` yields no batches"):
        model.fit(train, epochs=1, callbacks=[firefly], verbose=0, shuffle=False)
    assert model.optimizer.iterations.numpy() == 0 and model.growth_log == []


def test_rounds_of_an_mlp_growing_in_place_trace_their_descent_once():
    train = _data(take=128)
    model = _model("MLP-6-5")
    callback = kg.callbacks.Firefly(
        train, grow_every=1, delta_steps=2, score_batches=2, seed=0, verbose=0
    )
    model.fit(train, epochs=3, callbacks=[callback], verbose=0)
    events = [e for e in model.growth_log if e["kind"] == "grow"]
    assert len(events) == 3 and all(e["in_place"] for e in events)
    assert [e["descent_traces"] for e in events] == [1, 1, 1]
    # eta grows with the net, so each round had more candidates.
    assert len({e["candidates"] for e in events}) == 3
