"""How often XLA compiles over a growing run with `jit_compile=True`.

Each arm runs in its own process with XLA dumping every module it compiles
(`XLA_FLAGS=--xla_dump_to=...`): one module per compilation, counted by a
callback during training and during validation. Arms:

- `reserve`: AutoGrow grows Basic3ResNet-1-1-1 one block an epoch into
  blocks built ahead (`reserve=True`, the default): no shape changes.
- `rebuild`: the same run with `reserve=False`: every growth builds a new
  body, so Keras traces, and XLA compiles, its steps again.
- `width`: MLP-64-64 gains a unit each epoch in place
  (`keras_grow.in_place`): the traced steps are kept, but their variables
  change shape, so XLA compiles them again (a recompile, no retrace).

A Keras step function compiles once for each distinct shape it runs with,
a last partial batch included: `--take` is a multiple of `--batch_size`, so
training has one batch shape; validation's 600 images end in a partial
batch. The issue-32 target: at most one compilation per reserve change.

    python -m experiments.bench_xla_compiles     # about 5 minutes, one core
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import keras
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir

flags.DEFINE_list("arms", None, "Which arms run (all by default).")
flags.DEFINE_string("arm", None, "Runs this one arm here (set by the parent).")
flags.DEFINE_string("dump_dir", None, "The XLA dump directory (set by the parent).")
flags.DEFINE_integer("epochs", 5, "Epochs per arm; a growth after each but the last.")
flags.DEFINE_integer("take", 1024, "Training images (a multiple of the batch size).")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_list("widths", ["4", "8", "16"], "Stage widths of the ResNet arms.")
flags.DEFINE_string("out", "out/bench_xla_compiles", "Where result.json goes.")
FLAGS = flags.FLAGS

ARMS = ("reserve", "rebuild", "width")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compiled_modules(dump_dir):
    """How many modules XLA compiled so far: it dumps one
    `*.before_optimizations.txt` per compilation."""
    return len(glob.glob(os.path.join(dump_dir, "*.before_optimizations.txt")))


class CompileCounter(keras.callbacks.Callback):
    """Counts XLA's compilations in training and in validation, per epoch
    (`epochs`: the net and both counts).

    Args:
        dump_dir: str. Where this process's XLA dumps its modules.
    """

    def __init__(self, dump_dir):
        super().__init__()
        self.dump_dir = dump_dir
        self.epochs = []
        self._test = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._test = compiled_modules(self.dump_dir), 0

    def on_test_begin(self, logs=None):
        self._test_start = compiled_modules(self.dump_dir)

    def on_test_end(self, logs=None):
        self._test += compiled_modules(self.dump_dir) - self._test_start

    def on_epoch_end(self, epoch, logs=None):
        total = compiled_modules(self.dump_dir) - self._start
        self.epochs.append(
            {
                "notation": self.model.spec.notation,
                "train": total - self._test,
                "test": self._test,
            }
        )


def _data(batch_size, take):
    def load(split):
        return kg.data.load(
            "fashion_mnist_sample",
            split,
            batch_size,
            seed=0,
            take=take if split == "train" else None,
            augment=False,
        )

    return load("train"), load("validation")


def _resnet_run(reserve, epochs, widths):
    info = kg.data.info("fashion_mnist_sample")
    spec = kg.specs.parse(
        "Basic3ResNet-1-1-1", info.input_shape, info.num_classes, widths=widths
    )
    model = kg.GrowableModel(spec)
    autogrow = kg.callbacks.AutoGrow(
        growth_period=1,
        patience=epochs,  # no stage stops: one growth an epoch
        initializer="zero",
        max_depths=[epochs] * 3,
        fine_tune_epochs=0,
        reserve=reserve,
        seed=0,
    )
    return model, [autogrow]


def _mlp_run():
    info = kg.data.info("fashion_mnist_sample")
    model = kg.GrowableModel(
        kg.specs.parse("MLP-64-64", info.input_shape, info.num_classes)
    )

    def wider(epoch, logs):
        widths = list(model.spec.widths)
        widths[0] += 1
        model.grow(model.spec.with_widths(widths))

    return model, [keras.callbacks.LambdaCallback(on_epoch_end=wider)]


def run_arm(arm, dump_dir, epochs, take, batch_size, widths):
    """Trains one arm with `jit_compile=True` and counts its compilations
    (in a process whose `XLA_FLAGS` dump into `dump_dir`).

    Returns:
        dict: per-epoch compilations, growth events (in place or not),
        Keras' trace counts, wall seconds.
    """
    keras.utils.set_random_seed(0)
    if arm == "width":
        model, callbacks = _mlp_run()
    else:
        model, callbacks = _resnet_run(arm == "reserve", epochs, widths)
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    counter = CompileCounter(dump_dir)
    train, validation = _data(batch_size, take)
    start = time.perf_counter()
    # The counter runs after the growth callbacks: an epoch's count holds
    # what the epoch compiled, a growth's compilations fall into the next.
    model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        callbacks=[*callbacks, counter],
        verbose=0,
        shuffle=False,
    )
    growths = [e for e in model.growth_log if e["kind"] == "grow"]
    return {
        "arm": arm,
        "epochs": counter.epochs,
        "growths": len(growths),
        "in_place": sum(bool(e["in_place"]) for e in growths),
        "compiles_train": sum(e["train"] for e in counter.epochs),
        "compiles_test": sum(e["test"] for e in counter.epochs),
        "traces": model.trace_counts,
        "final": model.spec.notation,
        "seconds": round(time.perf_counter() - start, 1),
    }


def run_in_child(arm, epochs, take, batch_size, widths):
    """`run_arm` in a fresh Python process with XLA dumping its modules
    (the flag is read when TensorFlow starts)."""
    with tempfile.TemporaryDirectory() as scratch:
        dump_dir = os.path.join(scratch, "xla")
        result_path = os.path.join(scratch, "result.json")
        env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={dump_dir}")
        command = [
            sys.executable,
            "-m",
            "experiments.bench_xla_compiles",
            f"--arm={arm}",
            f"--dump_dir={dump_dir}",
            f"--epochs={epochs}",
            f"--take={take}",
            f"--batch_size={batch_size}",
            f"--widths={','.join(str(w) for w in widths)}",
            f"--out={result_path}",
        ]
        subprocess.run(command, env=env, check=True, cwd=_REPO)
        with open(result_path) as handle:
            return json.load(handle)


def _print(results):
    print(
        "| arm | growths (in place) | final | train compiles | validation "
        "compiles | traces (train, test) | wall (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results.values():
        traces = r["traces"]
        print(
            f"| {r['arm']} | {r['growths']} ({r['in_place']}) | {r['final']} | "
            f"{r['compiles_train']} | {r['compiles_test']} | "
            f"{traces['train']}, {traces['test']} | {r['seconds']} |"
        )


def main(argv):
    del argv
    widths = [int(w) for w in FLAGS.widths]
    if FLAGS.take % FLAGS.batch_size:
        raise ValueError(
            f"--take ({FLAGS.take}) must be a multiple of --batch_size "
            f"({FLAGS.batch_size}): a partial batch compiles once more."
        )
    if FLAGS.arm is not None:  # the child
        result = run_arm(
            FLAGS.arm,
            FLAGS.dump_dir,
            FLAGS.epochs,
            FLAGS.take,
            FLAGS.batch_size,
            widths,
        )
        with open(FLAGS.out, "w") as handle:
            json.dump(result, handle)
        return
    chosen = FLAGS.arms or ARMS
    unknown = sorted(set(chosen) - set(ARMS))
    if unknown:
        raise ValueError(f"Unknown arms {unknown}; known: {list(ARMS)}.")
    results = {
        arm: run_in_child(arm, FLAGS.epochs, FLAGS.take, FLAGS.batch_size, widths)
        for arm in chosen
    }
    _print(results)
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, "result.json"), results)


if __name__ == "__main__":
    app.run(main)
