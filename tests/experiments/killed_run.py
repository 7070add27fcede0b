"""Runs an experiment binary in this process and SIGKILLs it at a chosen point.

    python -m tests.experiments.killed_run grow:2 experiments.autogrow --preset=...

The point is `what:n`, the n-th time (from 1) the run reaches:
- `grow`: the middle of a growth step (the grown graph is built and has
  its weights, or the new blocks of the reserve are started; the model
  has not switched to them yet);
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
from keras_grow import growth
from keras_grow.growable_model import GrowableModel


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


def _kill_in_growth(call):
    """Kills the process once the `call`-th `GrowableModel.grow` has made
    its parts (by a rebuild or into the reserve), before it swaps them in;
    the reserve's own rebuild at the start of `fit` is not a growth."""
    grow, count, growing = GrowableModel.grow, 0, False

    def in_grow(self, *args, **kwargs):
        nonlocal growing
        growing = True
        try:
            return grow(self, *args, **kwargs)
        finally:
            growing = False

    def parts_maker(make):
        def wrapper(*args, **kwargs):
            nonlocal count
            result = make(*args, **kwargs)
            if growing:
                count += 1
                if count == call:
                    _kill()
            return result

        return wrapper

    GrowableModel.grow = in_grow
    growth.grown_parts = parts_maker(growth.grown_parts)
    growth.reserve_parts = parts_maker(growth.reserve_parts)


def main():
    point, module, *flags = sys.argv[1:]
    what, call = point.split(":")
    call = int(call)
    if what == "grow":
        _kill_in_growth(call)
    elif what == "save":
        _kill_on_call(checkpoints, "_write_arrays", call)
    else:
        raise ValueError(f"Unknown kill point {point!r}.")
    sys.argv = [module, *flags]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
