"""GrowableModel: growth before/after compile, mid-fit, jit, distributed,
save/load, summary, bad input."""

import gc
import os
import warnings
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_grow as kg
from tests.conftest import compile_sgd
from tests.helpers import images
from tests.helpers import infer

MNIST = (28, 28, 1)


def _spec(notation="Basic3ResNet-1-1-1", **kwargs):
    kwargs.setdefault("widths", (4, 8, 8))
    return kg.specs.parse(notation, MNIST, 10, **kwargs)


class GrowAt(keras.callbacks.Callback):
    """Grows at a given batch (or epoch) and records what the steps saw."""

    def __init__(self, successor, batch=None, epoch=None):
        super().__init__()
        self.successor, self.batch, self.epoch = successor, batch, epoch
        self.new_gamma_at_growth = None
        self.new_gamma_later = None
        self.losses_after = []
        self.grown = False

    def _grow(self, info):
        self.model.grow(self.successor(self.model.spec), initializer="zero", info=info)
        self.grown = True
        self.new_gamma_at_growth = self._new_gamma()

    def _new_gamma(self):
        return self.model.body.get_layer("stage1_block2_bn2").gamma.numpy().copy()

    def on_train_batch_end(self, batch, logs=None):
        if self.grown and self.new_gamma_later is None:
            self.new_gamma_later = self._new_gamma()
            self.losses_after.append(float(logs["loss"]))
        if self.batch is not None and batch == self.batch and not self.grown:
            self._grow({"batch": batch})

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch is not None and epoch == self.epoch and not self.grown:
            self._grow({"epoch": epoch})


def _add_stage1_block(spec):
    return spec.with_block_added(0)


def test_grow_before_compile_then_fit(sample_arrays):
    model = kg.GrowableModel(_spec())
    model.grow(model.spec.with_depths((2, 2, 1)))
    compile_sgd(model)
    x, y = sample_arrays
    history = model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-2-1"


def test_grow_after_compile_trains_the_grown_graph(sample_arrays):
    model = compile_sgd(kg.GrowableModel(_spec()))
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    model.grow(_add_stage1_block(model.spec))
    new = model.body.get_layer("stage1_block2_conv1")
    before = new.kernel.numpy().copy()
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    assert np.abs(new.kernel.numpy() - before).max() > 0
    assert len(model.trainable_variables) == len(model.body.trainable_variables)
    assert {id(v) for v in model.weights} == {id(v) for v in model.body.weights}


# Nightly with XLA: tests/experiments/test_bench_xla_compiles.py grows
# under XLA in the fast run.
@pytest.mark.parametrize(
    "jit_compile", [False, pytest.param(True, marks=pytest.mark.nightly)]
)
def test_grow_between_batches_next_step_trains_new_graph(jit_compile, sample_arrays):
    model = compile_sgd(kg.GrowableModel(_spec()), jit_compile=jit_compile)
    grow = GrowAt(_add_stage1_block, batch=1)
    x, y = sample_arrays
    model.fit(x[:96], y[:96], batch_size=16, epochs=1, verbose=0, callbacks=[grow])
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"
    # Zero-initialised gamma moved in the very next step: it trained.
    assert not np.any(grow.new_gamma_at_growth)
    assert np.abs(grow.new_gamma_later).max() > 0
    assert np.isfinite(grow.losses_after[0])
    assert model.growth_log[0]["batch"] == 1


def test_steps_per_execution_is_kept_across_growth(sample_arrays):
    # Several steps per execution is what makes small nets as fast as
    # PyTorch (docs/benchmarks.md, "Beside PyTorch"): growth must keep it.
    model = kg.GrowableModel(_spec())
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=3,
    )
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch)
    )
    grow = GrowAt(_add_stage1_block, epoch=0)
    x, y = sample_arrays
    model.fit(
        x[:96], y[:96], batch_size=16, epochs=2, verbose=0, callbacks=[grow, record]
    )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"
    assert model.steps_per_execution == 3
    # 6 steps per epoch, callbacks see the end of each execution of 3.
    assert seen == [2, 5, 2, 5]


def test_grow_between_epochs_with_validation(sample_arrays):
    model = compile_sgd(kg.GrowableModel(_spec()))
    grow = GrowAt(_add_stage1_block, epoch=0)
    x, y = sample_arrays
    history = model.fit(
        x[:64],
        y[:64],
        validation_data=(x[64:96], y[64:96]),
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[grow],
    )
    assert len(history.history["val_accuracy"]) == 2
    assert np.abs(grow.new_gamma_later).max() > 0
    assert model.growth_log[0]["epoch"] == 0
    # predict/evaluate use the grown graph too.
    assert model.predict(x[:4], verbose=0).shape == (4, 10)
    model.evaluate(x[:32], y[:32], verbose=0)


class CountTraces:
    """Wraps a model's step method; Python runs it only while tracing."""

    def __init__(self, model, name):
        self.count = 0
        step = getattr(model, name)

        def counted(data):
            self.count += 1
            return step(data)

        setattr(model, name, counted)


# Nightly with XLA: tests/experiments/test_bench_xla_compiles.py counts its
# compiles in the fast run.
@pytest.mark.parametrize(
    "jit_compile", [False, pytest.param(True, marks=pytest.mark.nightly)]
)
def test_each_growth_retraces_train_and_test_steps_once(jit_compile, sample_arrays):
    # What growth costs at run time is one trace of each step function per
    # growth: nothing may trace again in later steps or epochs.
    model = compile_sgd(kg.GrowableModel(_spec()), jit_compile=jit_compile)
    train_traces = CountTraces(model, "train_step")
    test_traces = CountTraces(model, "test_step")

    first_epoch_traces = {}

    class GrowEveryOtherEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                # Keras may trace the very first step twice (it traces
                # again when the first trace created variables).
                first_epoch_traces.update(
                    train=train_traces.count, test=test_traces.count
                )
            if epoch % 2 == 0:
                self.model.grow(_add_stage1_block(self.model.spec))

    x, y = sample_arrays
    model.fit(
        x[:64],  # whole batches: a smaller last batch would trace its shape
        y[:64],
        validation_data=(x[64:96], y[64:96]),
        batch_size=16,
        epochs=5,
        verbose=0,
        callbacks=[GrowEveryOtherEpoch()],
    )
    growths = len(model.growth_log)
    assert growths == 3 and model.spec.notation == "Basic3ResNet(4,8,8)-4-1-1"
    # Growths after epochs 0 and 2 trace once each; the one after the last
    # epoch leaves its new functions untraced.
    assert train_traces.count - first_epoch_traces["train"] == growths - 1
    assert test_traces.count - first_epoch_traces["test"] == growths - 1


def test_the_wrapper_adds_no_op_to_the_train_step():
    # Why GrowableModel trains as fast as the plain functional body: the
    # compiled step is the same graph (timings: docs/benchmarks.md).
    from experiments.runs.bench.probes import train_step_ops

    spec = _spec()
    plain = compile_sgd(kg.build.build_body(spec))
    growable = compile_sgd(kg.GrowableModel(spec))
    ops = [train_step_ops(m, spec.input_shape, 16) for m in (plain, growable)]
    assert ops[0] == ops[1] > 100


def test_grow_under_mirrored_strategy(mirrored_strategy, sample_arrays):
    strategy = mirrored_strategy
    with strategy.scope():
        model = compile_sgd(kg.GrowableModel(_spec()))
    x, y = sample_arrays
    data = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(32)
    grow = GrowAt(_add_stage1_block, batch=1)
    model.fit(data, epochs=1, verbose=0, callbacks=[grow])
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"
    new_vars = model.body.get_layer("stage1_block2_conv1").weights
    slot = [
        v
        for v in model.optimizer.variables
        if v.name == "stage1_block2_conv1_kernel_momentum"
    ][0]
    for variable in new_vars + [slot]:
        assert isinstance(variable.value, tf.distribute.DistributedValues), (
            variable.path
        )
        replicas = strategy.experimental_local_results(variable.value)
        np.testing.assert_array_equal(replicas[0].numpy(), replicas[1].numpy())
    assert np.abs(grow.new_gamma_later).max() > 0


def test_save_load_round_trip_after_growth(tmp_path, sample_arrays):
    model = compile_sgd(kg.GrowableModel(_spec(input_mean=(0.3,), input_std=(0.4,))))
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    model.grow(model.spec.with_depths((2, 1, 2)), initializer="gaussian", seed=1)
    model.grow(model.spec.with_widths((6, 8, 10)))
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)
    path = os.path.join(tmp_path, "grown.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, kg.GrowableModel)
    assert loaded.spec == model.spec
    assert loaded.growth_log == model.growth_log
    np.testing.assert_array_equal(infer(loaded, x[:16]), infer(model, x[:16]))
    assert int(loaded.optimizer.iterations.numpy()) == int(
        model.optimizer.iterations.numpy()
    )
    # The loaded model keeps growing, with its optimizer state carried.
    slot = "stage1_block1_conv1_kernel_momentum"
    before = [v.numpy() for v in loaded.optimizer.variables if v.name == slot][0]
    loaded.grow(loaded.spec.with_block_added(1))
    after = [v.numpy() for v in loaded.optimizer.variables if v.name == slot][0]
    np.testing.assert_array_equal(after, before)
    loaded.fit(x[:32], y[:32], batch_size=16, verbose=0)


def test_growth_log_records_the_event():
    model = kg.GrowableModel(_spec())
    event = model.grow(
        model.spec.with_block_added(2), info={"epoch": 3, "reason": "test"}
    )
    assert (
        event["from"] == "Basic3ResNet(4,8,8)-1-1-1"
        and event["to"] == "Basic3ResNet(4,8,8)-1-1-2"
    )
    assert event["params_after"] == model.body.count_params() > event["params_before"]
    assert event["new_blocks"] == ["stage3_block2"] and event["epoch"] == 3
    assert kg.specs.from_dict(event["spec"]) == model.spec
    log = model.growth_log
    log.append("mutated")
    log[0]["timing"]["build"] = -1.0
    assert len(model.growth_log) == 1  # a copy, nested fields too
    assert model.growth_log[0]["timing"]["build"] >= 0


def test_growth_log_events_read_back_typed_and_write_the_same_json():
    model = kg.GrowableModel(_spec())
    model.grow(model.spec.with_block_added(2), info={"epoch": 3, "callback": "Me"})
    model.rollback("test")
    model.record_event("stop_stage", {"epoch": 4, "stage": 1})
    log = model.growth_log
    events = kg.growth_events.read(log)
    assert [type(e).__name__ for e in events] == ["GrowthEvent", "Event", "Event"]
    grown, rolled, stopped = events
    assert (grown.kind, grown.index, grown.epoch, grown.callback) == (
        "grow",
        0,
        3,
        "Me",
    )
    assert grown.to_notation == "Basic3ResNet(4,8,8)-1-1-2" and not grown.in_place
    assert rolled.details["undoes"] == 0 and rolled.params == model.body.count_params()
    assert (stopped.kind, stopped.epoch, stopped.details["stage"]) == (
        "stop_stage",
        4,
        1,
    )
    assert list(log[0]) == [
        *("kind", "index", "from", "to", "params_before", "params_after"),
        *("initializer", "new_blocks", "widened", "morphisms", "optimizer_state"),
        *("in_place", "spec", "epoch", "callback", "seconds", "timing"),
    ]
    # JSON -> events -> JSON is exact, key order included.
    assert [list(e.to_dict().items()) for e in events] == [list(e.items()) for e in log]
    assert kg.GrowableModel(model.spec, growth_log=log).growth_log == log


def test_summary_shows_notation_and_parameters():
    model = kg.GrowableModel(_spec())
    model.grow(model.spec.with_block_added(0))
    model.record_event("stop_stage", {"stage": 0})  # an event, not a growth
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "Basic3ResNet(4,8,8)-2-1-1" in lines[0]
    assert lines[0].endswith("parameters, 1 growth")
    assert f"{model.body.count_params():,} parameters" in lines[0]
    assert "stage1_block2_conv1" in text


def test_same_spec_gives_same_layer_names():
    a = kg.GrowableModel(_spec())
    b = kg.GrowableModel(_spec())
    assert [x.name for x in a.body.layers] == [x.name for x in b.body.layers]


def test_bad_growth_inputs_raise_and_change_nothing():
    model = kg.GrowableModel(_spec())
    x = images(MNIST)
    before = infer(model, x)
    with pytest.raises(TypeError, match="must be a keras_grow spec"):
        kg.GrowableModel("Basic3ResNet-1-1-1")
    with pytest.raises(TypeError, match="must be a StagedNetSpec"):
        model.grow(kg.specs.parse("VGG11-4", MNIST, 10))
    with pytest.raises(ValueError, match="Growth keeps `num_classes`"):
        model.grow(kg.specs.parse("Basic3ResNet-2-1-1", MNIST, 5, widths=(4, 8, 8)))
    with pytest.raises(ValueError, match="Growth keeps `input_shape`"):
        model.grow(
            kg.specs.parse("Basic3ResNet-2-1-1", (32, 32, 1), 10, widths=(4, 8, 8))
        )
    with pytest.raises(ValueError, match="has shape"):  # narrowing is not growth
        model.grow(model.spec.with_widths((2, 8, 8)))
    assert model.spec.notation == "Basic3ResNet(4,8,8)-1-1-1" and model.growth_log == []
    np.testing.assert_array_equal(infer(model, x), before)


def test_summary_writes_to_stdout_by_default(capsys):
    kg.GrowableModel(kg.specs.parse("MLP-4", MNIST, 10)).summary()
    assert "MLP-4" in capsys.readouterr().out


@pytest.mark.parametrize("loss_scale", [False, True])
def test_growth_under_mixed_bfloat16(mixed_bfloat16, loss_scale, sample_arrays):
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model = kg.GrowableModel(_spec())
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = sample_arrays
    model.fit(x[:64], y[:64], batch_size=16, verbose=0)
    before = infer(model, x[:16])
    assert before.dtype == np.float32  # float32 logits under the policy
    iterations = int(model.optimizer.iterations.numpy())
    # Depth (zero block) and width (new units with zero outgoing weights).
    model.grow(model.spec.with_block_added(0), initializer="zero")
    model.grow(model.spec.with_widths((6, 8, 8)))
    after = infer(model, x[:16])
    # bfloat16 keeps 8 bits of mantissa: preserved within a few of its ulps.
    np.testing.assert_allclose(after, before, atol=4 * 2**-8 * np.abs(before).max())
    new = model.body.get_layer("stage1_block2_conv1")
    assert new.dtype_policy.name == "mixed_bfloat16"
    assert all(v.dtype == "float32" for v in model.body.weights)
    assert (
        isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == loss_scale
    )
    assert int(model.optimizer.iterations.numpy()) == iterations
    history = model.fit(x[:64], y[:64], batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_weights_files_of_a_grown_model_carry_its_spec(tmp_path):
    model = kg.GrowableModel(_spec())
    model.grow(model.spec.with_depths((2, 1, 1)))
    path = str(tmp_path / "grown.weights.h5")
    model.save_weights(path)
    x = images(MNIST)
    # Into the seed net: refused with the way out, nothing loaded.
    seed = kg.GrowableModel(_spec())
    with pytest.raises(ValueError, match="from_weights"):
        seed.load_weights(path)
    # From the file alone: the grown net, its weights, its growth log.
    loaded = kg.GrowableModel.from_weights(path)
    assert loaded.spec == model.spec
    assert loaded.growth_log == model.growth_log
    np.testing.assert_allclose(infer(loaded, x), infer(model, x), atol=1e-6)
    # Keras' own round trip into the same architecture still works.
    same = kg.GrowableModel(model.spec)
    same.load_weights(path)
    np.testing.assert_allclose(infer(same, x), infer(model, x), atol=1e-6)


def test_weights_without_a_spec_that_do_not_fit_get_a_clear_error(tmp_path):
    grown = kg.GrowableModel(_spec())
    grown.grow(grown.spec.with_depths((2, 1, 1)))
    path = str(tmp_path / "plain.weights.h5")
    keras.Model.save_weights(grown, path)  # as written before the spec was
    with pytest.raises(ValueError, match="model.save"):
        kg.GrowableModel(_spec()).load_weights(path)
    with pytest.raises(ValueError, match="records no keras_grow spec"):
        kg.GrowableModel.from_weights(path)


def test_fit_on_a_dataset_as_in_the_readme_warns_of_nothing():
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)
    model = compile_sgd(kg.GrowableModel(_spec()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, epochs=1, verbose=0)
    assert [str(w.message) for w in caught] == []


def test_loading_without_importing_keras_grow_names_keras_grow(tmp_path):
    # Keras imports only its own packages while loading; the error must at
    # least say which package the class lives in (docs/bad_input.md).
    import subprocess
    import sys

    path = str(tmp_path / "m.keras")
    compile_sgd(kg.GrowableModel(_spec())).save(path)
    code = "import keras, sys\nkeras.models.load_model(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "keras_grow>GrowableModel" in result.stderr
    assert "'module': 'keras_grow.growable_model'" in result.stderr


@pytest.mark.slow
def test_old_bodies_and_optimizers_are_released():
    """Only the last growth's pre-growth body and optimizer stay (for
    `rollback`); older ones, the compiled one included (Keras' compile
    state held it), are freed, so a long run does not accumulate graphs."""
    model = compile_sgd(kg.GrowableModel(kg.specs.parse("MLP-4", (8,), 3)))
    x, y = np.zeros((64, 8), "float32"), np.zeros(64, "int32")
    model.fit(x, y, epochs=1, verbose=0)
    bodies, optimizers = [], []
    for depth in range(2, 6):  # a layer each: rebuilt, not grown in place
        bodies.append(weakref.ref(model.body))
        optimizers.append(weakref.ref(model.optimizer))
        model.grow(model.spec.with_widths((4,) * depth))
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    gc.collect()
    assert [b() is not None for b in bodies] == [False, False, False, True]
    assert [o() is not None for o in optimizers] == [False, False, False, True]
    model.rollback("a test")
    model.grow(model.spec.with_widths((4,) * 6))  # undoes nothing older
    gc.collect()
    assert bodies[-1]() is not None  # the rolled-back-to body, now in use
    assert model.get_compile_config()["optimizer"]["class_name"] == "SGD"


class _Script(keras.callbacks.Callback):
    """Logs a scripted `score` each epoch (before EarlyStopping reads it) and
    keeps each epoch's weights and spec."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        self.seen.append(
            (self.model.spec, [w.copy() for w in self.model.get_weights()])
        )


@pytest.mark.parametrize("best", [1, 3])
def test_early_stopping_restores_the_best_epochs_net_across_growth(sample_arrays, best):
    x, y = sample_arrays
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    model = compile_sgd(kg.GrowableModel(spec))
    scores = [0.1, 0.2, 0.15, 0.1]
    scores[best] = 0.9
    script = _Script(scores)
    grow = kg.callbacks.ScheduledGrowth({2: lambda s: s.with_block_added(0)}, verbose=0)
    early = keras.callbacks.EarlyStopping(
        monitor="score", mode="max", patience=10, restore_best_weights=True
    )
    model.fit(x[:64], y[:64], epochs=4, verbose=0, callbacks=[grow, script, early])
    best_spec, best_weights = script.seen[best]
    assert model.spec == best_spec
    for got, want in zip(model.get_weights(), best_weights):
        np.testing.assert_array_equal(got, want)
    kinds = [e["kind"] for e in model.growth_log]
    if best < 2:  # the growth came after the best epoch: its net comes back
        assert kinds == ["grow", "restore_weights"]
        assert model.growth_log[-1]["to"] == spec.notation
        model.fit(x[:32], y[:32], epochs=1, verbose=0)  # and trains on
    else:
        assert kinds == ["grow"]
    # A plain list of another architecture is refused, as by Keras.
    other = kg.GrowableModel(spec.with_depths((3, 1, 1)))
    with pytest.raises(ValueError):
        model.set_weights(list(other.get_weights()))
