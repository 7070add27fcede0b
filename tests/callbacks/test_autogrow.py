"""AutoGrow: decisions driven with scripted logs, initialisers on real
graphs, one real fit on the embedded sample."""

import glob
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.callbacks import autogrow_rules as rules
from tests.conftest import compile_sgd
from tests.helpers import HalveRateAt
from tests.helpers import images
from tests.helpers import infer
from tests.helpers import infer_live
from tests.helpers import randomize_norms

MNIST = (28, 28, 1)


def _model(notation="Basic3ResNet-1-1-1", learning_rate=0.1):
    spec = kg.specs.parse(notation, MNIST, 10, widths=(4, 8, 8))
    return compile_sgd(kg.GrowableModel(spec), learning_rate=learning_rate)


def _drive(callback, model, values, key="val_accuracy", start=0):
    """Runs the epoch hooks with scripted monitored values; stops like fit."""
    callback.set_model(model)
    if start == 0:
        callback.on_train_begin()
    trace = []
    for epoch, value in enumerate(values, start=start):
        callback.on_epoch_begin(epoch)
        lr = float(np.asarray(model.optimizer.learning_rate))
        callback.on_epoch_end(epoch, {key: value, "accuracy": 0.5})
        trace.append((epoch, model.spec.notation, callback.phase, lr))
        if model.stop_training:
            break
    return trace


def _events(model, kind):
    return [(e["epoch"], e.get("stage")) for e in model.growth_log if e["kind"] == kind]


SCRIPT = [0.5, 0.6, 0.7, 0.75, 0.751, 0.752, 0.8, 0.8, 0.8, 0.8] + [0.8] * 8


def test_round_robin_stopping_and_fine_tune_schedule():
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        patience=2,
        min_delta=0.01,
        fine_tune_epochs=4,
        initializer="zero",
        verbose=0,
    )
    trace = _drive(callback, model, SCRIPT)
    # Round robin over growing stages: 0, 1, 2, 0, 1, then 1 stops.
    assert _events(model, "grow") == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 0),
        (4, 1),
        (5, 2),
        (6, 0),
        (7, 2),
        (8, 0),
    ]
    # At epoch 5 the running best rose 0.752 - 0.75 < 0.01 over J=2 epochs:
    # stage 1 (grown at epoch 4) stops and keeps that block (depth 3).
    assert _events(model, "stop_stage") == [(5, 1), (8, 2), (9, 0)]
    assert model.spec.notation == "Basic3ResNet(4,8,8)-5-3-4"
    stop = [e for e in model.growth_log if e["kind"] == "stop_stage"][0]
    assert stop["decided_by"]["best_now"] == pytest.approx(0.752)
    assert stop["decided_by"]["best_then"] == pytest.approx(0.75)
    assert stop["spec_notation"] == "Basic3ResNet(4,8,8)-3-3-2"
    # Fine-tune epochs 10..13: LR reset to 0.1, x0.1 at 1/2 and at 3/4.
    fine = [(epoch, lr) for epoch, _, phase, lr in trace if epoch >= 10]
    assert [epoch for epoch, _ in fine] == [10, 11, 12, 13]
    np.testing.assert_allclose(
        [lr for _, lr in fine], [0.1, 0.1, 0.01, 0.001], rtol=1e-5
    )
    assert model.stop_training and callback.phase == "done"
    assert trace[-1][0] == 13


def test_learning_rate_is_constant_while_growing_and_cuts_carry_into_fine_tune():
    model = _model(learning_rate=0.05)
    callback = kg.callbacks.AutoGrow(
        growth_period=2,
        patience=1,
        min_delta=1.0,
        fine_tune_epochs=2,
        initializer="zero",
        verbose=0,
    )
    trace = _drive(callback, model, [0.1] * 4)
    # Two growths, two new optimizers: the learning rate stayed constant.
    assert len(_events(model, "grow")) == 2
    assert {round(lr, 6) for _, _, _, lr in trace} == {0.05}
    model.optimizer.learning_rate.assign(0.0001)  # e.g. ReduceLROnPlateau's cut
    trace = _drive(callback, model, [0.1] * 10, start=4)
    start = callback.get_state()["fine_tune_start"]
    fine = [lr for epoch, _, _, lr in trace if epoch >= start]
    assert fine == pytest.approx([0.0001, 0.00001])  # the cut stays, drops compose


def _fine_tune_rates(extra, **kwargs):
    """The rate at the end of every epoch of a real fit: AutoGrow grows at
    epoch 0, every stage stops at epoch 1, then it fine-tunes epochs 2-5
    (drops at epochs 4 and 5)."""
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)
    spec = kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(2, 2, 2))
    model = compile_sgd(kg.GrowableModel(spec), learning_rate=0.1)
    grow = kg.callbacks.AutoGrow(
        growth_period=1,
        monitor="accuracy",
        max_depths=(2, 1, 1),
        fine_tune_epochs=4,
        verbose=0,
        **kwargs,
    )
    rates = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: rates.append(
            float(model.optimizer.learning_rate.numpy())
        )
    )
    model.fit(data, epochs=8, verbose=0, callbacks=[*extra, grow, probe])
    return rates


@pytest.mark.slow
def test_learning_rate_callbacks_compose_or_own_the_rate():
    # ReduceLROnPlateau-like cuts (epoch 1, and epoch 3 inside the fine-tune)
    # stay, and the fine-tune's x0.1 drops multiply on top of them.
    rates = _fine_tune_rates([HalveRateAt(1), HalveRateAt(3)])
    expected = [0.1, 0.05, 0.05, 0.025, 0.0025, 0.00025]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    # fine_tune_lr sets the fine-tune's start explicitly.
    rates = _fine_tune_rates([HalveRateAt(0)], fine_tune_lr=0.2)
    expected = [0.05, 0.05, 0.2, 0.2, 0.02, 0.002]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    # LearningRateScheduler owns the rate; a warning says so at fit start.
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: 0.3 / (epoch + 1))
    with pytest.warns(UserWarning, match="LearningRateScheduler sets the learning"):
        rates = _fine_tune_rates([scheduler])
    np.testing.assert_allclose(rates, [0.3 / (e + 1) for e in range(6)], rtol=1e-5)


def test_max_depths_stop_a_stage():
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        patience=50,
        max_depths=(2, 1, 3),
        fine_tune_epochs=0,
        initializer="zero",
        verbose=0,
    )
    _drive(callback, model, [0.1 * i for i in range(1, 20)])
    assert model.spec.depths == (2, 1, 3)
    stops = [e for e in model.growth_log if e["kind"] == "stop_stage"]
    assert {e["reason"] for e in stops} == {"max_depth"}
    assert model.stop_training  # fine_tune_epochs=0 ends at once


def test_convergent_policy_grows_only_on_a_plateau():
    model = _model()
    callback = kg.callbacks.AutoGrow(
        policy="convergent",
        growth_period=2,
        convergence_patience=2,
        patience=100,
        min_delta=0.01,
        initializer="zero",
        verbose=0,
    )
    values = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.5, 0.6, 0.6, 0.6]
    _drive(callback, model, values)
    # Plateaus (no gain >= 0.01 over 2 epochs) end at epochs 5 and 9.
    assert [epoch for epoch, _ in _events(model, "grow")] == [5, 9]


def test_convergent_policy_with_fixed_long_period():
    model = _model()
    callback = kg.callbacks.AutoGrow(
        policy="convergent",
        growth_period=4,
        patience=100,
        initializer="zero",
        verbose=0,
    )
    _drive(callback, model, [0.1 * i for i in range(12)])
    assert [epoch for epoch, _ in _events(model, "grow")] == [3, 7, 11]


def test_a_metric_never_logged_raises_at_the_first_decision(caplog):
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=2, patience=1, min_delta=0.5, initializer="zero", verbose=0
    )
    with pytest.raises(ValueError, match="no epoch has logged; the logs have: "):
        _drive(callback, model, [0.5] * 4, key="val_acc")
    assert "accuracy, val_acc" in caplog.text  # epoch 1 warned, epoch 2 raised
    assert callback.get_state()["epoch"] == 1
    assert _events(model, "grow") == []  # nothing grew on no evidence


def test_a_metric_missing_now_and_then_warns_and_does_not_stop(caplog):
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=1, patience=1, min_delta=0.5, initializer="zero", verbose=0
    )
    callback.set_model(model)
    callback.on_train_begin()
    with caplog.at_level("WARNING"):
        for epoch, logs in enumerate(
            [{"val_accuracy": 0.5}, {"accuracy": 0.5}, {"accuracy": 0.5}]
        ):
            callback.on_epoch_begin(epoch)
            callback.on_epoch_end(epoch, logs)
    assert "`val_accuracy` is not in the logs" in caplog.text
    assert len(_events(model, "grow")) == 3


def test_on_stop_remove_deletes_the_stopped_stages_last_block():
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        patience=1,
        min_delta=0.5,
        on_stop="remove",
        fine_tune_epochs=0,
        initializer="zero",
        verbose=0,
    )
    _drive(callback, model, [0.5] * 6)
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    assert _events(model, "stop_stage") == [(1, 0), (2, 1), (3, 2)]
    # Logged as removals, not growths.
    assert _events(model, "remove_block") == [(1, 0), (2, 1), (3, 2)]
    assert len(_events(model, "grow")) == 3


def test_state_round_trip_resumes_identically():
    values = SCRIPT[:12]
    reference = _model()
    kwargs = dict(
        growth_period=1,
        patience=2,
        min_delta=0.01,
        fine_tune_epochs=4,
        initializer="zero",
        verbose=0,
    )
    _drive(kg.callbacks.AutoGrow(**kwargs), reference, values)

    model = _model()
    first = kg.callbacks.AutoGrow(**kwargs)
    _drive(first, model, values[:6])
    state = first.get_state()
    import json

    resumed = kg.callbacks.AutoGrow(**kwargs)
    resumed.set_state(json.loads(json.dumps(state)))
    resumed.set_model(model)
    resumed.on_train_begin()  # must not reset the restored state
    _drive(resumed, model, values[6:], start=6)
    assert model.spec == reference.spec

    def untimed(log):
        return [
            {k: v for k, v in e.items() if k not in ("seconds", "timing")} for e in log
        ]

    assert untimed(model.growth_log) == untimed(reference.growth_log)


def test_zero_initializer_growth_preserves_function():
    model = _model()
    randomize_norms(model)
    x = images(MNIST)
    before = infer_live(model, x)
    callback = kg.callbacks.AutoGrow(growth_period=1, initializer="zero", verbose=0)
    _drive(callback, model, [0.1, 0.2])
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-2-1"
    np.testing.assert_array_equal(infer(model, x), before)


@pytest.mark.parametrize("initializer", ["gaussian", "uniform"])
def test_random_initializers_set_only_the_last_norm(initializer):
    spec = kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(96, 8, 8))
    model = compile_sgd(kg.GrowableModel(spec))
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        initializer=initializer,
        initializer_scale=0.5,
        seed=3,
        verbose=0,
    )
    _drive(callback, model, [0.1])
    bn = model.body.get_layer("stage1_block2_bn2")
    values = np.concatenate([bn.gamma.numpy(), bn.beta.numpy()])  # 192 draws
    assert abs(values.std() - 0.5) < 0.1 and abs(values.mean()) < 0.12
    other = model.body.get_layer("stage1_block2_bn1")
    np.testing.assert_array_equal(other.gamma.numpy(), 1.0)


def _plain_model():
    spec = kg.specs.parse("Plain3Net-1-1-1", MNIST, 10, widths=(4, 8, 8))
    return compile_sgd(kg.GrowableModel(spec))


def test_zero_init_on_a_plain_net_is_refused_naming_both_ways():
    model = _plain_model()
    callback = kg.callbacks.AutoGrow(initializer="zero", verbose=0)
    callback.set_model(model)
    with pytest.raises(ValueError, match="initializer='gaussian' for that.*'identity'"):
        callback.on_train_begin()
    assert model.growth_log == []


@pytest.mark.parametrize("initializer", ["gaussian", "uniform", "adam"])
def test_new_plain_submodules_get_default_init_whatever_the_initializer(
    initializer, sample_arrays
):
    model = _plain_model()
    x, y = sample_arrays
    data = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(16)
    callback = kg.callbacks.AutoGrow(
        growth_period=1, initializer=initializer, adam_init_data=data, verbose=0
    )
    _drive(callback, model, [0.1])
    assert model.spec.notation == "Plain3Net(4,8,8)-2-1-1"
    event = [e for e in model.growth_log if e["kind"] == "grow"][0]
    assert event["initializer"] == "default"
    assert event["autogrow_initializer"] == initializer
    bn = model.body.get_layer("stage1_block2_bn")  # its only BN: default
    np.testing.assert_array_equal(bn.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(bn.beta.numpy(), 0.0)
    assert [e for e in model.growth_log if e["kind"] == "adam_init"] == []
    # The signal survives: logits still depend on the input.
    logits = infer(model, images(MNIST, n=8))
    assert np.ptp(logits, axis=0).max() > 1e-3


def test_identity_initializer_deepens_a_plain_net_preserving_its_function():
    model = _plain_model()
    randomize_norms(model)
    x = images(MNIST)
    before = infer_live(model, x)
    callback = kg.callbacks.AutoGrow(growth_period=1, initializer="identity", verbose=0)
    _drive(callback, model, [0.1, 0.2])
    assert model.spec.notation == "Plain3Net(4,8,8)-2-2-1"
    np.testing.assert_allclose(infer(model, x), before, atol=1e-5)


def test_uniform_authors_draws_from_zero_to_scale():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(96, 8, 8))
    model = compile_sgd(kg.GrowableModel(spec))
    callback = kg.callbacks.AutoGrow(
        growth_period=1, initializer="uniform_authors", seed=0, verbose=0
    )
    _drive(callback, model, [0.1])
    bn = model.body.get_layer("stage1_block2_bn2")
    values = np.concatenate([bn.gamma.numpy(), bn.beta.numpy()])
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert abs(values.mean() - 0.5) < 0.08  # U(0, 1), not zero-mean


@pytest.mark.slow
def test_adam_initializer_trains_only_the_new_norm(sample_arrays):
    x, y = sample_arrays
    data = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(32)
    model = _model()
    model.fit(data, epochs=1, verbose=0)
    optimizer_before = {v.path: v.numpy().copy() for v in model.optimizer.variables}
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        initializer="adam",
        adam_init_data=data,
        adam_init_max_epochs=2,
        verbose=0,
    )
    callback.set_model(model)
    callback.on_train_begin()
    model.grow(model.spec)  # no-op growth: snapshot everything after a rebuild
    # The weights of the net before the growth (a reserve's left out).
    snapshot = {
        v.path: v.numpy().copy() for layer in model.net_layers() for v in layer.weights
    }
    slots = {v.name: v.numpy().copy() for v in model.optimizer.variables}
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0, {"val_accuracy": 0.1, "accuracy": 0.99})
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"
    new_norm = "stage1_block2_bn2"
    changed = {
        v.path
        for v in model.body.weights
        if v.path in snapshot and not np.array_equal(v.numpy(), snapshot[v.path])
    }
    assert changed == set()  # no surviving weight moved
    bn = model.body.get_layer(new_norm)
    # Started from the default BN (gamma 1, beta 0, the authors') and trained.
    grow_event = [e for e in model.growth_log if e["kind"] == "grow"][-1]
    assert grow_event["initializer"] == "default"
    assert not np.allclose(bn.gamma.numpy(), 1.0)
    new_block_others = [
        layer
        for layer in model.body.layers
        if layer.name.startswith("stage1_block2") and layer.name != new_norm
    ]
    assert new_block_others  # ... and the rest of the new block kept its init
    event = [e for e in model.growth_log if e["kind"] == "adam_init"][0]
    assert event["epochs"] == 2 and event["reached"] is False
    # The main optimizer's state and step count are untouched.
    for v in model.optimizer.variables:
        if v.name in slots:
            np.testing.assert_array_equal(v.numpy(), slots[v.name])
    assert int(model.optimizer.iterations.numpy()) == 4
    assert len(optimizer_before) > 0


def test_tensorboard_scalars(tmp_path):
    model = _model()
    callback = kg.callbacks.AutoGrow(
        growth_period=1, initializer="zero", log_dir=str(tmp_path), verbose=0
    )
    _drive(callback, model, [0.1, 0.2])
    tags = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                tags.setdefault(value.tag, []).append((event.step, float(tensor)))
    assert tags["growth/depth_stage1"] == [(0, 2.0), (1, 2.0)]
    assert tags["growth/depth_stage2"] == [(0, 1.0), (1, 2.0)]
    assert tags["growth/params"][-1][1] == model.count_params()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(growth_period=0), "`growth_period` must be an integer >= 1; received 0"),
        (dict(policy="eager"), "`policy` must be one of"),
        (dict(patience=-2), "`patience` must be an integer >= 1; received -2"),
        (dict(min_delta=-0.1), "`min_delta` must be a number >= 0"),
        (dict(initializer="he"), "`initializer` must be one of"),
        (dict(initializer="adam"), "pass adam_init_data"),
        (
            dict(
                initializer="adam",
                adam_init_data=tf.data.Dataset.from_tensor_slices(
                    (np.zeros((4, 2)), np.zeros(4))
                )
                .batch(2)
                .repeat(),
            ),
            "`adam_init_data` repeats forever, and each AdamInit epoch",
        ),
        (dict(max_depths=(2, 0, 2)), "`max_depths entries` must be an integer >= 1"),
        (dict(fine_tune_epochs=-1), "`fine_tune_epochs` must be an integer >= 0"),
        (dict(fine_tune_lr_boundaries=(0.8, 0.2)), "increasing fractions"),
        (dict(on_stop="drop"), "`on_stop` must be one of"),
        (dict(mode="up"), "`mode` must be one of"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        kg.callbacks.AutoGrow(**kwargs)


def test_models_it_cannot_grow_are_rejected_before_training():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    callback = kg.callbacks.AutoGrow()
    callback.set_model(plain)
    with pytest.raises(TypeError, match="grows a keras_grow.GrowableModel"):
        callback.on_train_begin()
    vgg = compile_sgd(kg.GrowableModel(kg.specs.parse("VGG11-4", MNIST, 10)))
    callback.set_model(vgg)
    with pytest.raises(TypeError, match="grows the depth of a staged net"):
        callback.on_train_begin()
    model = _model()
    callback = kg.callbacks.AutoGrow(max_depths=(2, 2))
    callback.set_model(model)
    with pytest.raises(ValueError, match="one entry per stage"):
        callback.on_train_begin()
    scheduled = kg.GrowableModel(model.spec)
    scheduled.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
        ),
        loss="mse",
    )
    callback = kg.callbacks.AutoGrow()
    callback.set_model(scheduled)
    with pytest.raises(ValueError, match="constant learning rate"):
        callback.on_train_begin()


@pytest.mark.slow
def test_real_fit_grows_stops_every_stage_and_fine_tunes(capsys):
    train = kg.data.load("fashion_mnist_sample", "train", 64, take=256)
    val = kg.data.load("fashion_mnist_sample", "validation", 200, take=200)
    model = _model(learning_rate=0.05)
    callback = kg.callbacks.AutoGrow(
        growth_period=1,
        patience=1,
        min_delta=0.5,
        fine_tune_epochs=2,
        initializer="gaussian",
        seed=0,
    )
    history = model.fit(
        train, validation_data=val, epochs=30, verbose=0, callbacks=[callback]
    )
    # Every stage grows once, stops at the next boundary (no 50-point gain),
    # then 2 fine-tune epochs end the run long before epochs=30.
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-2-2"
    assert len(history.history["loss"]) == 4 + 2
    assert callback.phase == "done"
    assert [e["kind"] for e in model.growth_log].count("stop_stage") == 3
    assert np.all(np.isfinite(history.history["loss"]))
    out = capsys.readouterr().out
    assert "growth done, found Basic3ResNet(4,8,8)-2-2-2" in out
    # A stop line says the numbers behind it.
    assert re.search(
        r"stage 1 stops \(no_improvement: val_accuracy best \d\.\d{4} -> "
        r"\d\.\d{4} over 1 epochs, [+-]\d\.\d{4} < tau 0\.5000\)",
        out,
    ), out


def test_adam_init_reads_one_hot_labels_as_it_reads_sparse_ones(sample_arrays):
    from keras_grow.adam_init import adam_init_norm

    x, y = sample_arrays
    results = []
    for loss, labels in (
        (keras.losses.SparseCategoricalCrossentropy(from_logits=True), y[:64]),
        (
            keras.losses.CategoricalCrossentropy(from_logits=True),
            keras.utils.to_categorical(y[:64], 10),
        ),
    ):
        keras.utils.set_random_seed(0)
        model = _model()
        model.compile(keras.optimizers.SGD(0.01), loss)
        data = tf.data.Dataset.from_tensor_slices((x[:64], labels)).batch(32)
        result = adam_init_norm(model, "stage1_block1_bn2", data, None, max_epochs=1)
        gamma = model.body.get_layer("stage1_block1_bn2").gamma.numpy()
        results.append((result["train_accuracy"], gamma))
    assert results[0][0] == pytest.approx(results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)


def test_a_fit_that_ends_before_the_fine_tune_does_says_so():
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)

    def run(epochs):
        model = _model()
        autogrow = kg.callbacks.AutoGrow(
            growth_period=1,
            monitor="loss",
            max_depths=(1, 1, 1),  # every stage stops at the first boundary
            fine_tune_epochs=3,
            verbose=0,
        )
        model.fit(data, epochs=epochs, callbacks=[autogrow], verbose=0)
        return autogrow

    with pytest.warns(UserWarning, match=r"fine-tune \(1 of 3 epochs\)"):
        assert run(2).phase == "fine_tuning"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*shuffle.*")
        assert run(10).phase == "done"


def test_a_state_saved_without_the_rate_multiplier_resumes_the_fine_tune():
    model = _model(learning_rate=0.1)
    callback = kg.callbacks.AutoGrow(fine_tune_epochs=4, verbose=0)
    state = rules.AutoGrowState(
        "fine_tuning", [], fine_tune_start=10, initial_lr=0.1, epoch=12
    ).to_dict()
    del state["lr_factor"]  # as written before it existed
    callback.set_state(state)
    callback.set_model(model)
    model.optimizer.learning_rate.assign(0.01)  # epoch 12's rate, restored
    callback.on_epoch_begin(13)
    np.testing.assert_allclose(float(model.optimizer.learning_rate.numpy()), 0.001)


def test_copy_is_refused_on_a_staged_net_at_fit_start():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (8, 8, 1), 3, widths=(2, 4, 4))
    model = kg.GrowableModel(spec)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((4, 8, 8, 1), "float32"), np.zeros(4, "int64")
    grow = kg.callbacks.AutoGrow(initializer="copy", verbose=0)
    with pytest.raises(ValueError, match="initializer='copy'.*first block of a stage"):
        model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0, callbacks=[grow])
