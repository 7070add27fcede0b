"""What one width growth costs inside training: in place against a rebuild.

Grows MLP-256-256 (784 inputs, 10 classes, batch 128, SGD with momentum)
by one unit per event, `--events` times, and times each `grow` and the
train step after it, against steady train steps; then does the same with
growth in place switched off (every growth rebuilds and retraces, as all
growth did before it). The issue-32 target: a growth within capacity costs
at most one training step.

    python -m experiments.bench_width_growth             # about a minute
    python -m experiments.bench_width_growth --notation=MLP-1024-1024
"""

import contextlib
import os

import keras
import numpy as np
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir
from experiments.runs.bench import growth_cost
from keras_grow import in_place

flags.DEFINE_string("notation", "MLP-256-256", "The MLP that grows.")
flags.DEFINE_integer("events", 10, "Growth events per arm.")
flags.DEFINE_integer("steady_steps", 50, "Steady train steps timed per arm.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_string("out", "out/bench_width_growth", "Where result.json goes.")
FLAGS = flags.FLAGS


@contextlib.contextmanager
def _rebuilding():
    """Every growth rebuilds the body and retraces (the path before growth
    in place, and still the path of every growth it cannot take)."""
    plan = in_place.plan
    in_place.plan = lambda model, body: None
    try:
        yield
    finally:
        in_place.plan = plan


def _wider(spec):
    widths = list(spec.widths)
    widths[0] += 1
    return spec.with_widths(widths)


def _arm(batch):
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(kg.specs.parse(FLAGS.notation, (784,), 10))
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return growth_cost.time_growths(
        model, batch, _wider, FLAGS.events, FLAGS.steady_steps
    )


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    batch = (
        rng.random((FLAGS.batch_size, 784), dtype=np.float32),
        rng.integers(0, 10, FLAGS.batch_size),
    )
    result = {"in place": _arm(batch)}
    with _rebuilding():
        result["rebuild"] = _arm(batch)
    print(
        f"{FLAGS.notation}, one unit per growth, {FLAGS.events} growths, "
        f"batch {FLAGS.batch_size}:"
    )
    growth_cost.print_table(result)
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, "result.json"), result)


if __name__ == "__main__":
    app.run(main)
