"""BackupAndRestore: an interrupted growing fit, resumed with fresh objects
(as a new process would), ends exactly where an uninterrupted one does.

The subprocess tests that kill real runs with SIGKILL are in
tests/experiments/test_resume_binaries.py.
"""

import os

import keras
import numpy as np
import pytest

import keras_grow as kg
from keras_grow import checkpoints
from keras_grow import growth_events
from tests.conftest import compile_sgd

# AutoGrow grows at the end of epochs 0-2, fine-tunes 4-5 and stops the
# run after 6 of 8 epochs; Firefly grows at the end of epochs 1 and 3.
EPOCHS = {"autogrow": 8, "firefly": 5}
TAKE = 192
BATCH = 64


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises at a batch of an epoch, or right after a growth (the kill)."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_train_batch_begin(self, batch, logs=None):
        if self.batch is not None and self._epoch == self.epoch and batch == self.batch:
            raise Interrupt(f"epoch {self.epoch} batch {batch}")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        # Placed after the growth callback: the growth has just happened.
        if self.batch is None and epoch == self.epoch:
            raise Interrupt(f"after the end of epoch {epoch}")


def _train_data(start_epoch):
    return kg.data.load(
        "fashion_mnist_sample", "train", BATCH, take=TAKE, start_epoch=start_epoch
    )


def _autogrow():
    return kg.callbacks.AutoGrow(
        growth_period=1,
        patience=1,
        min_delta=0.5,
        initializer="gaussian",
        initializer_scale=0.1,
        fine_tune_epochs=2,
        max_depths=(2, 2, 2),
        monitor="val_accuracy",
        seed=3,
        verbose=0,
    )


def _firefly():
    return kg.callbacks.Firefly(
        _train_data(0),  # its own stream; the state says how far it read
        grow_every=2,
        growth_ratio=0.25,
        delta_steps=3,
        score_batches=1,
        seed=3,
        verbose=0,
    )


def _model(kind):
    if kind == "autogrow":
        spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    else:
        spec = kg.specs.parse("VGG11-4", (28, 28, 1), 10)
    return compile_sgd(kg.GrowableModel(spec))


def _fit(kind, backup_dir, interrupt=None, save_freq="epoch"):
    """A fresh model and callbacks, fitted with a backup; `interrupt` stops it."""
    keras.utils.set_random_seed(0)
    model = _model(kind)
    grower = _autogrow() if kind == "autogrow" else _firefly()
    backup = kg.callbacks.BackupAndRestore(
        backup_dir, [grower], delete_checkpoint=False, save_freq=save_freq, verbose=0
    )
    start = kg.callbacks.BackupAndRestore.epochs_done(backup_dir)
    validation = kg.data.load("fashion_mnist_sample", "validation", BATCH)
    callbacks = [backup, grower] + ([interrupt] if interrupt else [])
    history = model.fit(
        _train_data(start),
        steps_per_epoch=kg.data.num_batches(
            "fashion_mnist_sample", "train", BATCH, take=TAKE
        ),
        validation_data=validation.take(2),
        epochs=EPOCHS[kind],
        callbacks=callbacks,
        verbose=0,
    )
    return model, grower, backup, history


def _log(model):
    """The growth log without wall times and trace counts."""
    return growth_events.reproducible(model.growth_log)


def _same_run(a, b):
    (model_a, grower_a, _, history_a), (model_b, grower_b, _, history_b) = a, b
    assert model_a.spec == model_b.spec
    assert _log(model_a) == _log(model_b)
    assert grower_a.get_state() == grower_b.get_state()
    assert history_a.epoch == history_b.epoch == list(range(len(history_a.epoch)))
    for key in ("loss", "val_accuracy"):
        np.testing.assert_array_equal(history_a.history[key], history_b.history[key])
    for x, y in zip(model_a.weights, model_b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)
    optimizer_a, optimizer_b = model_a.optimizer.variables, model_b.optimizer.variables
    assert len(optimizer_a) == len(optimizer_b)
    for x, y in zip(optimizer_a, optimizer_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per kind."""
    runs = {}
    for kind in ("autogrow", "firefly"):
        backup_dir = str(tmp_path_factory.mktemp(kind) / "backup")
        runs[kind] = (_fit(kind, backup_dir), backup_dir)
    return runs


@pytest.mark.parametrize(
    "kind, interrupts",
    [
        # Right after a growth.
        ("autogrow", [InterruptAt(2)]),
        # Nightly: mid-epoch, then right after a growth, then mid-epoch
        # while fine-tuning: three restarts of one run.
        pytest.param(
            "autogrow",
            [InterruptAt(1, batch=2), InterruptAt(2), InterruptAt(4, 1)],
            marks=pytest.mark.nightly,
        ),
        # Nightly: right after Firefly's first round (the fast run resumes
        # Firefly from a batch checkpoint after that round, below; mid-epoch
        # kills of the Firefly binary: tests/experiments/test_resume_binaries.py).
        pytest.param("firefly", [InterruptAt(1)], marks=pytest.mark.nightly),
    ],
)
def test_interrupted_run_resumes_to_the_uninterrupted_result(
    kind, interrupts, reference, tmp_path
):
    backup_dir = str(tmp_path / "backup")
    for interrupt in interrupts:
        with pytest.raises(Interrupt):
            _fit(kind, backup_dir, interrupt)
    resumed = _fit(kind, backup_dir)
    assert resumed[2].restored_from is not None
    _same_run(resumed, reference[kind][0])
    assert resumed[0].spec != _model(kind).spec  # it did grow


@pytest.mark.parametrize(
    "kind, interrupts",
    [
        # Killed in the middle of fine-tuning epoch 4 (1 batch saved).
        # Nightly: the fast run resumes AutoGrow from epoch checkpoints
        # (three restarts, above) and Firefly from batch checkpoints (below);
        # the fast-forward to a batch does not depend on the growth callback.
        pytest.param("autogrow", [InterruptAt(4, batch=1)], marks=pytest.mark.nightly),
        # Killed at the last batch of epoch 2, after Firefly's first round.
        ("firefly", [InterruptAt(2, batch=2)]),
    ],
)
def test_batch_checkpoints_resume_mid_epoch_to_the_uninterrupted_result(
    kind, interrupts, reference, tmp_path
):
    backup_dir = str(tmp_path / "backup")
    for interrupt in interrupts:
        with pytest.raises(Interrupt):
            _fit(kind, backup_dir, interrupt, save_freq=1)
        newest = checkpoints.latest(backup_dir)
        # Every batch trained before the kill is in the newest checkpoint.
        assert (newest.epoch, newest.batch) == (interrupt.epoch, interrupt.batch)
        assert newest.metric_paths  # the epoch's running metrics
    resumed = _fit(kind, backup_dir, save_freq=1)
    assert resumed[2].restored_from.endswith(
        checkpoints.checkpoint_name(interrupts[-1].epoch, interrupts[-1].batch)
    )
    # Weights, optimizer slots and iteration count, growth log and the
    # interrupted epoch's logged loss are those of the uninterrupted run.
    _same_run(resumed, reference[kind][0])


def test_resume_needs_whole_executions_of_steps_per_execution(tmp_path):
    backup_dir = str(tmp_path / "backup")
    with pytest.raises(Interrupt):
        _fit("autogrow", backup_dir, InterruptAt(0, batch=1), save_freq=1)
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    model = compile_sgd(kg.GrowableModel(spec), steps_per_execution=3)
    backup = kg.callbacks.BackupAndRestore(backup_dir, verbose=0)
    with pytest.raises(ValueError, match="after 1 batches of epoch 0.*steps_per"):
        model.fit(_train_data(0), steps_per_epoch=3, epochs=1, callbacks=[backup])


@pytest.mark.parametrize("save_freq", [0, -2, 1.5, "batch"])
def test_save_freq_is_epoch_or_a_positive_int(save_freq, tmp_path):
    with pytest.raises((ValueError, TypeError), match="save_freq"):
        kg.callbacks.BackupAndRestore(str(tmp_path), save_freq=save_freq)


def test_rerun_of_a_run_a_callback_stopped_trains_no_further(reference):
    first, backup_dir = reference["autogrow"]
    assert first[1].phase == "done" and len(first[3].epoch) == 6
    again = _fit("autogrow", backup_dir)
    _same_run(again, first)


def test_corrupt_newest_checkpoint_is_reported_and_the_one_before_used(
    tmp_path, caplog
):
    backup_dir = str(tmp_path / "backup")
    model = _model("autogrow")
    for epoch in (1, 2):
        checkpoints.save(backup_dir, model, epoch)
    with open(os.path.join(backup_dir, "ckpt-000002", "arrays.npz"), "r+b") as handle:
        handle.seek(100)
        handle.write(b"torn")
    assert kg.callbacks.BackupAndRestore.epochs_done(backup_dir) == 1
    assert "ckpt-000002 is corrupt" in caplog.text
    assert "checksum" in caplog.text


@pytest.mark.parametrize(
    "damage",
    ["truncate_json", "delete_arrays", "garbage_json"],
)
def test_every_kind_of_damage_is_detected(tmp_path, damage):
    model = _model("autogrow")
    path = checkpoints.save(str(tmp_path), model, 1)
    meta, arrays = (
        os.path.join(path, "checkpoint.json"),
        os.path.join(path, "arrays.npz"),
    )
    if damage == "truncate_json":
        with open(meta, "r+") as handle:
            handle.truncate(50)
    elif damage == "delete_arrays":
        os.remove(arrays)
    else:
        with open(meta, "w") as handle:
            handle.write('{"format": 1}')
    with pytest.raises(checkpoints.CorruptCheckpointError):
        checkpoints.read(path)
    with pytest.raises(checkpoints.CorruptCheckpointError, match="Move the directory"):
        checkpoints.latest(str(tmp_path))
    assert os.listdir(tmp_path) == ["ckpt-000001"]  # nothing deleted


def test_restore_rebuilds_the_grown_architecture_with_optimizer_state(tmp_path):
    model = _model("autogrow")
    x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype("float32")
    y = np.arange(8) % 10
    model.fit(x, y, epochs=1, verbose=0)
    model.grow(model.spec.with_block_added(1), initializer="gaussian", seed=0)
    model.fit(x, y, epochs=1, verbose=0)
    path = checkpoints.save(str(tmp_path), model, 2, state={"note": "x"})
    fresh = _model("autogrow")
    checkpoint = checkpoints.latest(str(tmp_path))
    assert checkpoint.path == path and checkpoint.state == {"note": "x"}
    checkpoints.restore(fresh, checkpoint)
    assert fresh.spec == model.spec
    assert fresh.growth_log == model.growth_log
    np.testing.assert_array_equal(
        fresh.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == 2
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    checkpoints.save(str(tmp_path), _model("autogrow"), 1)
    other = compile_sgd(
        kg.GrowableModel(
            kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
        ),
        momentum=0.0,  # no momentum slots: another optimizer state layout
    )
    with pytest.raises(ValueError, match="optimizer variables do not match"):
        checkpoints.restore(other, checkpoints.latest(str(tmp_path)))


def test_keeps_the_newest_checkpoints_and_no_staging(tmp_path):
    model = _model("autogrow")
    for epoch in range(1, 5):
        checkpoints.save(str(tmp_path), model, epoch, keep=2)
    os.makedirs(tmp_path / ".ckpt-000009.tmp1")  # left by a killed writer
    checkpoints.save(str(tmp_path), model, 5, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000004", "ckpt-000005"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="backup_dir"):
        kg.callbacks.BackupAndRestore("")
    with pytest.raises(TypeError, match="get_state"):
        kg.callbacks.BackupAndRestore("/tmp/x", [keras.callbacks.History()])
    with pytest.raises(ValueError, match="keep"):
        kg.callbacks.BackupAndRestore("/tmp/x", keep=0)


def test_plain_keras_model_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(TypeError, match="GrowableModel"):
        model.fit(
            np.zeros((4, 4)),
            np.zeros((4, 2)),
            callbacks=[kg.callbacks.BackupAndRestore(str(tmp_path))],
            verbose=0,
        )


def _mlp_fit(backup_dir, epochs, **backup_kwargs):
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=128, seed=0)
    spec = kg.specs.parse("MLP-4-3", input_shape=(28, 28, 1), num_classes=10)
    model = compile_sgd(kg.GrowableModel(spec))
    grower = kg.callbacks.RandomNew(grow_every=1, max_rounds=2, seed=0, verbose=0)
    backup = kg.callbacks.BackupAndRestore(
        backup_dir, delete_checkpoint=False, verbose=0, **backup_kwargs
    )
    model.fit(data, epochs=epochs, callbacks=[backup, grower], verbose=0)
    return model, grower, backup


def test_without_callbacks_it_carries_the_growth_callbacks_of_the_fit(tmp_path):
    # The user's habit: BackupAndRestore(dir) beside the grower, nothing
    # more. A resumed run keeps the grower's state: 2 rounds in all, not 4.
    model, grower, backup = _mlp_fit(str(tmp_path), epochs=3)
    assert backup.stateful_callbacks == (grower,)
    assert grower.rounds == 2
    resumed, grower, _ = _mlp_fit(str(tmp_path), epochs=5)
    assert grower.rounds == 2 and grower.finished
    assert sum(e["kind"] == "grow" for e in resumed.growth_log) == 2
    assert resumed.spec == model.spec


def test_leaving_out_a_growth_callback_is_refused(tmp_path):
    other = kg.callbacks.RandomSplit(grow_every=1, verbose=0)
    with pytest.raises(ValueError, match="leaves out RandomNew"):
        _mlp_fit(str(tmp_path), epochs=1, callbacks=[other])


def test_keras_own_backup_and_restore_is_refused_before_training(tmp_path):
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)
    model = _model("autogrow")
    with pytest.raises(ValueError, match="kg.callbacks.BackupAndRestore"):
        model.fit(
            data,
            epochs=1,
            callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path))],
            verbose=0,
        )
    assert model.optimizer.iterations.numpy() == 0


def test_checkpoints_are_ordered_by_epoch_then_batch(tmp_path, sample_arrays):
    model = _model("autogrow")
    x, y = sample_arrays
    model.fit(x[:32], y[:32], batch_size=16, verbose=0)  # builds the metrics
    directory = str(tmp_path)
    checkpoints.save(directory, model, 1, keep=2)
    mid = checkpoints.save(directory, model, 1, keep=2, batch=2)
    assert os.path.basename(mid) == "ckpt-000001-000002"
    newest = checkpoints.latest(directory)
    assert (newest.epoch, newest.batch) == (1, 2)
    assert newest.metric_paths == [v.path for v in model.metrics_variables]
    checkpoints.save(directory, model, 2, keep=2)
    assert sorted(os.listdir(directory)) == ["ckpt-000001-000002", "ckpt-000002"]
    end = checkpoints.latest(directory)
    assert (end.epoch, end.batch, end.metric_paths) == (2, 0, [])
