"""Runs an experiment binary in this process and SIGKILLs it at a chosen point.

    python -m tests.experiments.killed_run grow:2 experiments.autogrow --preset=...

The point is `what:n`, the n-th time (from 1) the run reaches:
- `grow`: the middle of a growth step (the grown graph is built and has
  its weights, the model has not switched to it yet);
- `save`: the middle of writing a checkpoint (its arrays are on disk, its
  description is not, nothing is renamed yet).

The kill is a real SIGKILL: no handler, no cleanup, as after an OOM kill or
a lost machine.
"""

import os
import runpy
import signal
import sys

from keras_grow import checkpoints
from keras_grow import transfer


def _kill():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(owner, name, call):
    """Kills the process right after the `call`-th call of `owner.name`."""
    original = getattr(owner, name)
    count = 0

    def wrapper(*args, **kwargs):
        nonlocal count
        count += 1
        result = original(*args, **kwargs)
        if count == call:
            _kill()
        return result

    setattr(owner, name, wrapper)


def main():
    point, module, *flags = sys.argv[1:]
    what, call = point.split(":")
    call = int(call)
    if what == "grow":
        _kill_on_call(transfer, "transfer_weights", call)
    elif what == "save":
        _kill_on_call(checkpoints, "_write_arrays", call)
    else:
        raise ValueError(f"Unknown kill point {point!r}.")
    sys.argv = [module, *flags]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
