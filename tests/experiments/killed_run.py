"""Runs an experiment binary in this process and SIGKILLs it at a chosen point.

    python -m tests.experiments.killed_run grow:2 experiments.autogrow --preset=...

The point is `what:n`, the n-th time (from 1) the run reaches:
- `grow`: the middle of a growth step (the grown graph is built and has
  its weights, the model has not switched to it yet);
- `save`: the middle of writing a checkpoint (its arrays are on disk, its
  description is not, nothing is renamed yet);
- `epoch`: the second training batch of an epoch.
The kill is a real SIGKILL: no handler, no cleanup, as after an OOM kill or
a lost machine.
"""

import os
import runpy
import signal
import sys

import keras

from keras_grow import checkpoints
from keras_grow import transfer


def _kill():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(owner, name, call, after=True):
    original = getattr(owner, name)
    count = 0

    def wrapper(*args, **kwargs):
        nonlocal count
        count += 1
        if count == call and not after:
            _kill()
        result = original(*args, **kwargs)
        if count == call and after:
            _kill()
        return result

    setattr(owner, name, wrapper)


class _KillAtBatch(keras.callbacks.Callback):
    def __init__(self, epoch_count):
        super().__init__()
        self.epoch_count, self.epochs = epoch_count, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs += 1

    def on_train_batch_begin(self, batch, logs=None):
        if self.epochs == self.epoch_count and batch == 1:
            _kill()


def _kill_at_epoch(call):
    fit = keras.Model.fit

    def wrapper(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or []) + [_KillAtBatch(call)]
        return fit(self, *args, callbacks=callbacks, **kwargs)

    keras.Model.fit = wrapper


def main():
    point, module, *flags = sys.argv[1:]
    what, call = point.split(":")
    call = int(call)
    if what == "grow":
        _kill_on_call(transfer, "transfer_weights", call)
    elif what == "save":
        _kill_on_call(checkpoints, "_write_arrays", call)
    elif what == "epoch":
        _kill_at_epoch(call)
    else:
        raise ValueError(f"Unknown kill point {point!r}.")
    sys.argv = [module, *flags]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
