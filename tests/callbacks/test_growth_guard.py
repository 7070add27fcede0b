"""GrowableModel.rollback and GrowthGuard: a failed growth is undone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from tests.conftest import compile_sgd
from tests.helpers import infer_live

MNIST = (28, 28, 1)


def _model():
    spec = kg.specs.parse("Basic3ResNet-1-1-1", MNIST, 10, widths=(4, 8, 8))
    return compile_sgd(kg.GrowableModel(spec))


def _optimizer_state(model):
    return {v.path: np.array(v.numpy()) for v in model.optimizer.variables}


def test_rollback_restores_graph_weights_and_optimizer_exactly(sample_arrays):
    model = _model()
    x, y = sample_arrays
    model.fit(x[:64], y[:64], batch_size=16, verbose=0)
    before = infer_live(model, x[:16])
    state = _optimizer_state(model)
    spec = model.spec
    model.grow(spec.with_block_added(0), initializer="gaussian")
    model.fit(x[:64], y[:64], batch_size=16, verbose=0)  # trains the grown net
    assert model.spec != spec
    event = model.rollback("test")
    assert model.spec == spec
    np.testing.assert_array_equal(infer_live(model, x[:16]), before)
    after = _optimizer_state(model)
    assert after.keys() == state.keys()
    for path, value in state.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)
    assert event["kind"] == "rollback" and event["undoes"] == 0
    assert event["from"] == "Basic3ResNet(4,8,8)-2-1-1" and event["reason"] == "test"
    assert [e["kind"] for e in model.growth_log] == ["grow", "rollback"]
    assert {id(v) for v in model.weights} == {id(v) for v in model.body.weights}
    history = model.fit(x[:64], y[:64], batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="Nothing to roll back"):
        model.rollback("twice")


def test_rollback_reuses_the_pre_growth_traces_and_trains_as_if_never_grown(
    sample_arrays,
):
    x, y = sample_arrays

    def fit(model):
        model.fit(x[:64], y[:64], batch_size=16, shuffle=False, verbose=0)

    keras.utils.set_random_seed(1)
    never_grown = _model()
    fit(never_grown)
    fit(never_grown)
    keras.utils.set_random_seed(1)
    model = _model()
    fit(model)
    train_function = model.train_function
    model.grow(model.spec.with_block_added(0), initializer="gaussian")
    fit(model)
    model.rollback("test")
    assert model.train_function is train_function  # Keras' traced function
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    fit(model)
    assert traces == []  # Python ran no train step: nothing was traced
    assert "retrace_train" not in model.last_change.get("timing", {})
    for a, b in zip(model.weights, never_grown.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_rollback_after_a_recompile_traces_anew(sample_arrays):
    model = _model()
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    old = model.train_function
    model.grow(model.spec.with_block_added(0))
    compile_sgd(model, learning_rate=0.01)  # another loss object: old traces stale
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    model.rollback("test")
    assert model.train_function is not old
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    assert model.last_change["timing"]["retrace_train"] > 0


def test_rollback_of_a_growth_before_training_gives_a_fresh_optimizer(sample_arrays):
    model = _model()
    spec = model.spec
    model.grow(spec.with_block_added(1))  # optimizer not built yet
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)  # builds it on the grown net
    model.rollback("test")
    history = model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    assert model.spec == spec and np.isfinite(history.history["loss"][0])


class _GrowWithNaN(keras.callbacks.Callback):
    """Injects a failure: a growth whose new block computes NaN."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch != 0:
            return
        spec = self.model.spec.with_block_added(0)
        norm = kg.build.build_body(spec).get_layer("stage1_block2_bn2")
        values = {v.name: np.array(v.numpy()) for v in norm.weights}
        values["gamma"][:] = np.nan
        self.model.grow(spec, values={"stage1_block2_bn2": values})


def test_guard_rolls_back_a_nan_growth_and_training_goes_on(sample_arrays):
    model = _model()
    x, y = sample_arrays
    history = model.fit(
        x[:64],
        y[:64],
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[_GrowWithNaN(), kg.callbacks.GrowthGuard(verbose=0)],
    )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    log = model.growth_log
    assert [e["kind"] for e in log] == ["grow", "rollback"]
    assert "non-finite loss" in log[1]["reason"]
    # The NaN batch's running mean was reset: every epoch reports a number.
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(infer_live(model, x[:16])))


def test_guard_can_stop_with_a_clear_error_after_rolling_back(sample_arrays):
    model = _model()
    x, y = sample_arrays
    guard = kg.callbacks.GrowthGuard(on_failure="raise", verbose=0)
    with pytest.raises(kg.callbacks.GrowthFailedError, match="rolled back"):
        model.fit(
            x[:64],
            y[:64],
            batch_size=16,
            epochs=2,
            verbose=0,
            callbacks=[_GrowWithNaN(), guard],
        )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1"
    assert np.all(np.isfinite(infer_live(model, x[:16])))


class _GrowAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.model.grow(self.model.spec.with_block_added(0))


@pytest.mark.parametrize(
    # Nightly for sample weights: the model counts non-finite inputs,
    # labels and sample weights in one count (`nonfinite_inputs`).
    "where",
    ["inputs", pytest.param("sample weights", marks=pytest.mark.nightly)],
)
def test_nan_in_the_data_is_not_blamed_on_the_growth(sample_arrays, where):
    model = _model()
    x, y = sample_arrays
    x, weights = x[:64].copy(), np.ones(64, "float32")
    # Epoch 0 trains on batches 0-1; the growth comes after it; epoch 1's
    # first batch (batch 2) holds a NaN.
    (x if where == "inputs" else weights)[33] = np.nan
    data = tf.data.Dataset.from_tensor_slices((x, y[:64], weights)).batch(16)
    guard = kg.callbacks.GrowthGuard(verbose=0)
    with pytest.raises(kg.callbacks.NonFiniteDataError, match="cause is the data"):
        model.fit(
            data,
            steps_per_epoch=2,
            epochs=2,
            verbose=0,
            callbacks=[_GrowAtEpochEnd(), guard],
        )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"  # the growth stays
    assert [e["kind"] for e in model.growth_log] == ["grow"]


def test_guard_rejects_bad_arguments_and_plain_models(sample_arrays):
    with pytest.raises(ValueError, match="on_failure"):
        kg.callbacks.GrowthGuard(on_failure="ignore")
    with pytest.raises(ValueError, match="batches"):
        kg.callbacks.GrowthGuard(batches=0)
    plain = compile_sgd(
        keras.Sequential(
            [keras.Input(MNIST), keras.layers.Flatten(), keras.layers.Dense(10)]
        )
    )
    x, y = sample_arrays
    with pytest.raises(TypeError, match="GrowableModel"):
        plain.fit(x[:16], y[:16], verbose=0, callbacks=[kg.callbacks.GrowthGuard()])


class _FailingAfterGrowth(kg.callbacks.RandomNew):
    """Injects a failure after the model grew (as Firefly's BN calibration
    could fail), the worst place: the graph has already been swapped."""

    def _after_growth(self, model, added):
        raise RuntimeError("injected failure")


def test_an_exception_in_a_round_is_undone_and_training_goes_on(sample_arrays):
    model = _model()
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    state = _optimizer_state(model)
    spec = model.spec
    failing = _FailingAfterGrowth(grow_every=1, seed=0, verbose=0)
    history = model.fit(
        x[:64], y[:64], batch_size=16, epochs=2, verbose=0, callbacks=[failing]
    )
    assert model.spec == spec and len(history.history["loss"]) == 2
    kinds = [e["kind"] for e in model.growth_log]
    assert kinds == ["grow", "rollback", "growth_failed"] * 2
    failed = model.growth_log[2]
    assert failed["reason"] == "RuntimeError: injected failure"
    assert failed["callback"] == "_FailingAfterGrowth" and failed["what"] == "round 1"
    assert failing.rounds == 0  # no round counted: the next one tries again
    # Training went on from the pre-growth optimizer: same slots, later steps.
    assert _optimizer_state(model).keys() == state.keys()


def test_on_failure_raise_undoes_the_round_then_stops(sample_arrays):
    model = _model()
    spec = model.spec
    x, y = sample_arrays
    failing = _FailingAfterGrowth(grow_every=1, on_failure="raise", verbose=0)
    with pytest.raises(RuntimeError, match="injected failure"):
        model.fit(
            x[:32], y[:32], batch_size=16, epochs=2, verbose=0, callbacks=[failing]
        )
    assert model.spec == spec
    assert [e["kind"] for e in model.growth_log] == [
        "grow",
        "rollback",
        "growth_failed",
    ]


def test_autogrow_retries_a_stage_whose_growth_raised(monkeypatch):
    model = _model()
    autogrow = kg.callbacks.AutoGrow(growth_period=1, patience=5, verbose=0)
    autogrow.set_model(model)
    autogrow.on_train_begin()
    real_grow = model.grow
    calls = []

    def grow_failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("injected before the swap")
        return real_grow(*args, **kwargs)

    monkeypatch.setattr(model, "grow", grow_failing_once)
    for epoch in range(2):
        autogrow.on_epoch_begin(epoch)
        autogrow.on_epoch_end(epoch, {"val_accuracy": 0.5 + epoch / 10})
    # Epoch 0's growth of stage 1 failed; epoch 1 grew stage 1 after all.
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"
    log = model.growth_log
    # The reserve is built at the start of fit, before any growth.
    assert [e["kind"] for e in log] == ["reserve", "growth_failed", "grow"]
    assert log[1]["what"] == "stage 1" and "injected" in log[1]["reason"]
    with pytest.raises(ValueError, match="on_failure"):
        kg.callbacks.AutoGrow(on_failure="skip")
    with pytest.raises(ValueError, match="on_failure"):
        kg.callbacks.RandomSplit(on_failure="skip")
