"""Small helpers the experiment binaries share (work dir, JSON, seeds)."""

import json
import os

import keras


def prepare_workdir(workdir, config):
    """Creates `workdir` and writes the resolved `config.json` into it."""
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), config)
    return workdir


def write_json(path, value):
    """Writes `value` as indented JSON, atomically (write, then rename)."""
    staging = f"{path}.tmp"
    with open(staging, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(staging, path)


def sgd(learning_rate, momentum=0.9):
    return keras.optimizers.SGD(learning_rate, momentum=momentum)


def classification_compile_args(optimizer, jit_compile=False):
    """The loss and metrics every experiment compiles with."""
    return dict(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
