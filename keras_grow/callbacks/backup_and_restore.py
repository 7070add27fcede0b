"""`BackupAndRestore`: resume a growing run after a crash, architecture and all."""

import os
import shutil

import keras
import numpy as np

from keras_grow import checkpoints
from keras_grow import keras_compat
from keras_grow import multi_worker
from keras_grow.callbacks.arguments import check_int
from keras_grow.callbacks.scheduled_growth import require_growable


def _plain(value):
    """A log value as a Python int or float (numpy and tensors included):
    counts such as `params` stay integers in the history."""
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        return int(array)
    return float(array)


class BackupAndRestore(keras.callbacks.Callback):
    """Backs up a growing run every epoch; a rerun of `fit` resumes it.

    Like `keras.callbacks.BackupAndRestore`, but for a `GrowableModel`,
    whose architecture changes while it trains: a checkpoint holds the
    spec, the weights, the optimizer state (slots and iteration count), the
    growth log, the history so far and the state of the growth callbacks
    named in `callbacks` (`get_state`/`set_state`: AutoGrow's phase and
    running-best history, Firefly's round and data position). When `fit`
    starts and `backup_dir` has a checkpoint, the model is rebuilt to it,
    everything is restored, and training continues from the first epoch
    the checkpoint had not completed; the `History` that `fit` returns then
    covers the whole run.

    A checkpoint is written once an epoch is complete, after every callback
    has seen its end (so a growth at the end of the epoch is in it): at the
    next epoch's start and when training ends. Checkpoints are written into
    a staging directory and renamed into place; the newest `keep` are kept.
    A torn or altered checkpoint fails its checksum and is reported, and
    the one before is used (see `keras_grow.checkpoints`). A run killed in
    the middle of an epoch, or in the middle of a growth, redoes that
    epoch from the last checkpoint.

    With `save_freq=N`, a checkpoint is also written every N training
    batches inside an epoch (with the metrics' running sums), so a kill
    loses at most N batches. A run resumed from one starts that epoch
    again but fast-forwards through its first batches: each is drawn from
    the data and dropped, untrained, until the checkpoint's position, then
    training goes on from the checkpoint's weights, optimizer and metric
    state. With epoch-seeded data (below) the resumed run repeats the
    uninterrupted one exactly; callbacks see the skipped batches' ends,
    with the checkpoint's metrics as their logs.

    Under `MultiWorkerMirroredStrategy` only the chief writes checkpoints
    (the workers hold the same model) and every worker resumes from them,
    so `backup_dir` must be on storage all workers share, as for Keras'
    own callback.

    Put it first in the callback list, so it restores the model before the
    other callbacks start. For a resumed run to repeat an uninterrupted one
    exactly, the data must not depend on the process: `kg.data.load(...,
    start_epoch=BackupAndRestore.epochs_done(backup_dir))` gives epochs
    that depend only on the seed and the epoch number, starting where the
    checkpoint stopped (pass `steps_per_epoch=kg.data.num_batches(...)`).

    Args:
        backup_dir: str. Where checkpoints go; used for nothing else.
        callbacks: sequence of callbacks with `get_state()`/`set_state()`
            (e.g. `AutoGrow`, `Firefly`) whose state is saved and restored.
        keep: int. Checkpoints kept, newest first. Defaults to `2`, so that
            a damaged newest one still leaves one to resume from.
        delete_checkpoint: bool. Remove `backup_dir` when `fit` ends
            normally, like Keras' callback. With `False` a rerun of a
            finished run restores the final state and trains no further.
            Defaults to `True`.
        save_freq: `"epoch"` or int. `"epoch"` saves at epoch ends only;
            an int N also saves every N training batches within an epoch.
            Defaults to `"epoch"`.
        verbose: int. 1 prints a line when a run is resumed. Defaults to `1`.

    Example:

    >>> import keras, keras_grow as kg
    >>> spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10,
    ...                       widths=(4, 8, 8))
    >>> model = kg.GrowableModel(spec)
    >>> model.compile(
    ...     "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> grow = kg.callbacks.AutoGrow(growth_period=1, monitor="loss")
    >>> backup = kg.callbacks.BackupAndRestore("/tmp/run/backup", [grow])
    >>> train = kg.data.load("fashion_mnist_sample", "train", 64, take=128)
    >>> history = model.fit(train, epochs=2, callbacks=[backup, grow],
    ...                     verbose=0)
    """

    carries_growth_state = True  # recognised by keras_grow.fit_checks

    def __init__(
        self,
        backup_dir,
        callbacks=(),
        keep=2,
        delete_checkpoint=True,
        save_freq="epoch",
        verbose=1,
    ):
        super().__init__()
        if not backup_dir or not isinstance(backup_dir, (str, os.PathLike)):
            raise ValueError(
                f"`backup_dir` must be a non-empty path; received {backup_dir!r}."
            )
        callbacks = tuple(callbacks)
        for callback in callbacks:
            if not (hasattr(callback, "get_state") and hasattr(callback, "set_state")):
                raise TypeError(
                    "Every entry of `callbacks` needs get_state() and set_state() "
                    f"(AutoGrow, Firefly, RandomSplit, RandomNew do); received "
                    f"{type(callback).__name__}."
                )
        check_int(keep, "keep", 1)
        if save_freq != "epoch":
            check_int(save_freq, "save_freq", 1)
        self.backup_dir = os.fspath(backup_dir)
        self.stateful_callbacks = callbacks
        self.keep = keep
        self.delete_checkpoint = bool(delete_checkpoint)
        self.save_freq = save_freq
        self.verbose = verbose
        self.history = []
        self.restored_from = None
        self._pending = None
        self._history_merged = False
        self._resume_at = None  # a mid-epoch checkpoint to fast-forward to
        self._epoch = 0
        self._batches_saved = 0  # batches of this epoch in a checkpoint

    @staticmethod
    def epochs_done(backup_dir):
        """int. Epochs completed by the checkpoint a `fit` would resume from
        (0 if none): where an epoch-seeded dataset should start
        (`kg.data.load(..., start_epoch=...)`)."""
        checkpoint = checkpoints.latest(os.fspath(backup_dir))
        return 0 if checkpoint is None else checkpoint.epoch

    # --- state of the callbacks it carries --------------------------------

    def _keys(self):
        return [
            f"{i}:{type(c).__name__}" for i, c in enumerate(self.stateful_callbacks)
        ]

    def _callback_states(self):
        return {
            key: callback.get_state()
            for key, callback in zip(self._keys(), self.stateful_callbacks)
        }

    def _set_callback_states(self, states, path):
        missing = sorted(set(self._keys()) - set(states))
        if missing:
            raise ValueError(
                f"Checkpoint {path} has no state for the callbacks {missing}; "
                f"it holds {sorted(states)}. Pass the same callbacks, in the "
                "same order, as the run that wrote it."
            )
        for key, callback in zip(self._keys(), self.stateful_callbacks):
            callback.set_state(states[key])

    # --- hooks --------------------------------------------------------------

    def on_train_begin(self, logs=None):
        require_growable(self.model, "BackupAndRestore")
        self.history, self.restored_from = [], None
        self._pending, self._history_merged = None, False
        self._resume_at = None
        checkpoint = checkpoints.latest(self.backup_dir)
        if checkpoint is None:
            return
        checkpoints.restore(self.model, checkpoint)
        state = checkpoint.state
        self._set_callback_states(state.get("callbacks", {}), checkpoint.path)
        self.history = [dict(row) for row in state.get("history", [])]
        self.restored_from = checkpoint.path
        start = checkpoint.epoch
        if state.get("stopped"):
            # A callback ended the run (e.g. AutoGrow done): nothing to add.
            start = max(start, self.params.get("epochs", start))
        elif checkpoint.batch:
            self._resume_at = checkpoint
        keras_compat.set_initial_epoch(self.model, start)
        if self.verbose:
            batches = f" and {checkpoint.batch} batches" * bool(self._resume_at)
            print(
                f"BackupAndRestore: resumed from {checkpoint.path}: "
                f"{checkpoint.epoch} epochs{batches} done, "
                f"{checkpoint.spec.notation}, "
                f"{self.model.count_params():,} parameters"
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._save_pending(stopped=False)
        self._merge_history()
        self._epoch = epoch
        self._batches_saved = 0
        if self._resume_at is not None:
            self._fast_forward(self._resume_at)
            self._resume_at = None

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        done = batch + 1  # `batch` ends an execution
        if done - self._batches_saved < self.save_freq:
            return
        steps = self.params.get("steps") if self.params else None
        if steps and done >= steps:
            return  # the epoch's own checkpoint follows
        self._batches_saved = done
        self._save(
            self._epoch,
            state={
                "callbacks": self._callback_states(),
                "history": self.history,
                "stopped": False,
            },
            keep=self.keep,
            batch=done,
        )

    def on_epoch_end(self, epoch, logs=None):
        # Saved at the next hook, once every callback has seen this end
        # (growth callbacks grow here; others add to `logs`).
        self._pending = (epoch, logs if logs is not None else {})

    def on_train_end(self, logs=None):
        self._save_pending(stopped=bool(self.model.stop_training))
        self._merge_history()
        keras_compat.set_initial_epoch(self.model, None)
        if self.delete_checkpoint and self._is_chief():
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    # --- helpers -----------------------------------------------------------

    def _is_chief(self):
        return multi_worker.is_chief(self.model.distribute_strategy)

    def _save(self, epoch, **kwargs):
        """`checkpoints.save` into `backup_dir`, by the chief only under
        several workers (they hold the same model; every worker restores
        from the chief's checkpoints, so `backup_dir` must be shared)."""
        if self._is_chief():
            checkpoints.save(self.backup_dir, self.model, epoch, **kwargs)

    def _save_pending(self, stopped):
        if self._pending is None:
            return
        epoch, logs = self._pending
        self._pending = None
        self.history.append({"epoch": epoch, **{k: _plain(v) for k, v in logs.items()}})
        self._save(
            epoch + 1,
            state={
                "callbacks": self._callback_states(),
                "history": self.history,
                "stopped": stopped,
            },
            keep=self.keep,
        )

    def _fast_forward(self, checkpoint):
        """Makes the next `checkpoint.batch` training batches draw their
        data and train nothing, then puts Keras' train function back.

        The first one also restores the metrics' running state (building
        the metrics from its batch first: Keras builds them lazily, with
        the first train step)."""
        model = self.model
        per_execution = getattr(model, "steps_per_execution", 1) or 1
        if checkpoint.batch % per_execution:
            raise ValueError(
                f"Checkpoint {checkpoint.path} was written after "
                f"{checkpoint.batch} batches of epoch {checkpoint.epoch}, which "
                f"is not a whole number of executions of steps_per_execution="
                f"{per_execution}: resume with the steps_per_execution of the "
                "run that wrote it."
            )
        train_function = model.train_function
        remaining = [checkpoint.batch // per_execution]

        def skip(iterator):
            batch = None
            for _ in range(per_execution):
                batch = next(iterator)
            if remaining[0] == checkpoint.batch // per_execution:
                if len(model.metrics_variables) != len(checkpoint.metric_paths):
                    keras_compat.symbolic_build(model, batch)
                checkpoints.restore_metrics(model, checkpoint)
            remaining[0] -= 1
            if remaining[0] == 0:
                model.train_function = train_function
            return model.get_metrics_result()

        model.train_function = skip
        self._batches_saved = checkpoint.batch

    def _merge_history(self):
        """Puts the restored epochs in front of `fit`'s `History`."""
        if self._history_merged or self.restored_from is None:
            return
        self._history_merged = True
        history = getattr(self.model, "history", None)
        if history is None or history.epoch or not self.history:
            return
        for row in self.history:
            for key, value in row.items():
                if key != "epoch":
                    history.history.setdefault(key, []).append(value)
        history.epoch = [row["epoch"] for row in self.history]
