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
import json
import os
import statistics
import time

import keras
import numpy as np
from absl import app
from absl import flags

import keras_grow as kg
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


def _arm(batch):
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(kg.specs.parse(FLAGS.notation, (784,), 10))
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = batch
    for _ in range(5):
        model.train_on_batch(x, y)
    steady = []
    for _ in range(FLAGS.steady_steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        steady.append(time.perf_counter() - start)
    grows, first_steps, parts = [], [], []
    for _ in range(FLAGS.events):
        widths = list(model.spec.widths)
        widths[0] += 1
        start = time.perf_counter()
        event = model.grow(model.spec.with_widths(widths))
        grown = time.perf_counter()
        model.train_on_batch(x, y)
        grows.append(grown - start)
        parts.append(event["timing"])
        first_steps.append(time.perf_counter() - grown)
    step = statistics.median(steady)
    cost = [g + f - step for g, f in zip(grows, first_steps)]
    return {
        "in_place": event["in_place"],
        "step_ms": 1000 * step,
        "grow_ms": 1000 * statistics.median(grows),
        "first_step_ms": 1000 * statistics.median(first_steps),
        "growth_cost_in_steps": statistics.median(cost) / step,
        # Inside `grow`: the grown body built, filled, the optimizer carried.
        **{
            f"{part}_ms": 1000 * statistics.median(t[part] for t in parts)
            for part in ("build", "transfer", "optimizer")
        },
        "traces": model.trace_counts,
        "final": model.spec.notation,
    }


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
    print(
        "| arm | step (ms) | grow (ms): build + transfer + optimizer | "
        "step after (ms) | growth cost in steps | traces |"
    )
    print("|---|---|---|---|---|---|")
    for arm, r in result.items():
        print(
            f"| {arm} | {r['step_ms']:.1f} | {r['grow_ms']:.1f}: "
            f"{r['build_ms']:.1f} + {r['transfer_ms']:.1f} + "
            f"{r['optimizer_ms']:.1f} | "
            f"{r['first_step_ms']:.1f} | {r['growth_cost_in_steps']:.1f} | "
            f"{r['traces']['train']} |"
        )
    os.makedirs(FLAGS.out, exist_ok=True)
    with open(os.path.join(FLAGS.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
