"""Progress of a run: `EpochLine` (one line per epoch, with the current
architecture), `HistoryFile` (history.csv of the whole run) and
`RunClock` (its wall time across resumes)."""

import csv
import io
import time

import keras

from experiments.runs import workdir as workdir_lib


class EpochLine(keras.callbacks.Callback):
    """Prints one line per epoch and adds the architecture to the logs.

    The architecture in use *during* the epoch goes into the logs as
    numbers (`params`, `depth_stage1`, ...), with the epoch's wall time
    (`epoch_seconds`, growth at its end excluded), so `keras.callbacks.CSVLogger`
    placed after this callback writes it into the history. Put it before
    any growth callback.

    Args:
        total_epochs: int or `None`. Shown as `epoch 5/40`.
        print_fn: callable. Defaults to `print`.
    """

    def __init__(self, total_epochs=None, print_fn=print):
        super().__init__()
        self.total_epochs = total_epochs
        self.print_fn = print_fn
        self._begin = None
        self._notation = None
        self._numbers = {}

    def on_epoch_begin(self, epoch, logs=None):
        spec = self.model.spec
        self._begin = time.perf_counter()
        self._notation = spec.notation
        self._numbers = {"params": self.model.count_params()}
        for stage, depth in enumerate(getattr(spec, "depths", ())):
            self._numbers[f"depth_stage{stage + 1}"] = depth

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = time.perf_counter() - self._begin
        metrics = " - ".join(
            f"{key}: {value:.4f}"
            for key, value in logs.items()
            if key in ("loss", "accuracy", "val_loss", "val_accuracy")
        )
        total = f"/{self.total_epochs}" if self.total_epochs else ""
        self.print_fn(
            f"epoch {epoch + 1}{total} {self._notation} "
            f"({self._numbers['params']:,} params) - {metrics} - {seconds:.1f}s"
        )
        logs.update(self._numbers, epoch_seconds=round(seconds, 3))


class HistoryFile(keras.callbacks.Callback):
    """Writes the whole run's history as CSV, resumed epochs included.

    Rewrites `path` atomically from `backup.history` (a
    `kg.callbacks.BackupAndRestore` earlier in the callback list) each time
    a checkpoint is written: one row per completed epoch, never one lost or
    repeated across a resume, unlike `keras.callbacks.CSVLogger`.

    Args:
        path: str. The CSV file.
        backup: the run's `BackupAndRestore`.
    """

    def __init__(self, path, backup):
        super().__init__()
        self.path = path
        self.backup = backup

    def on_epoch_begin(self, epoch, logs=None):
        self._write()

    def on_train_end(self, logs=None):
        self._write()

    def _write(self):
        rows = self.backup.history
        if not rows:
            return
        keys = sorted({key for row in rows for key in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["epoch", *keys])
        for row in rows:
            writer.writerow([row["epoch"], *(row.get(key, "") for key in keys)])
        workdir_lib.write_text(self.path, text.getvalue())


class RunClock(keras.callbacks.Callback):
    """Puts `run_seconds` into each epoch's logs: the wall seconds of the
    run so far, the processes before a resume included (read from the
    history `backup`, a `kg.callbacks.BackupAndRestore` earlier in the
    callback list, restored; `None`: no earlier process). `seconds()` is
    the run's total."""

    def __init__(self, backup=None):
        super().__init__()
        self.backup = backup
        self._offset = 0.0
        self._begin = None

    def on_train_begin(self, logs=None):
        self._begin = time.perf_counter()
        done = self.backup.history if self.backup is not None else []
        self._offset = float(done[-1].get("run_seconds", 0.0)) if done else 0.0

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["run_seconds"] = round(self.seconds(), 3)

    def seconds(self):
        return self._offset + time.perf_counter() - self._begin
