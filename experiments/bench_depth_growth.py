"""What one depth growth costs inside training: into a reserve against a
rebuild.

Grows a basic ResNet (`--start`, `--widths`, 28x28x1 inputs, 10 classes,
batch 128, SGD with momentum) by one block per event in round robin over
its stages, `--events` times, and times each `grow` and the train step
after it against steady train steps (before the growths and at the grown
net); once with the blocks built ahead (`GrowableModel.reserve_depth`, to
`--capacity` blocks a stage: growing switches them on) and once without
(every growth rebuilds the body and retraces, as AutoGrow did before).
The issue-32 targets: a growth within capacity costs at most one training
step, and the reserve costs steady training at most 5%.

    python -m experiments.bench_depth_growth      # about 5 minutes, one core
"""

import os

import keras
import numpy as np
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir
from experiments.runs.bench import growth_cost

flags.DEFINE_string("start", "Basic3ResNet-1-1-1", "The net that grows.")
flags.DEFINE_list("widths", ["16", "32", "64"], "Channels of the three stages.")
flags.DEFINE_integer("capacity", 4, "Blocks a stage the reserve holds.")
flags.DEFINE_integer("events", 6, "Growth events per arm (round robin).")
flags.DEFINE_integer("steady_steps", 20, "Steady train steps timed per phase.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_string("out", "out/bench_depth_growth", "Where result.json goes.")
FLAGS = flags.FLAGS


class _RoundRobin:
    """The next spec: one block more in the next stage, in turn."""

    def __init__(self):
        self.stage = 0

    def __call__(self, spec):
        deeper = spec.with_block_added(self.stage)
        self.stage = (self.stage + 1) % spec.depth_stages
        return deeper


def _arm(batch, reserve):
    keras.utils.set_random_seed(0)
    widths = [int(w) for w in FLAGS.widths]
    spec = kg.specs.parse(FLAGS.start, (28, 28, 1), 10, widths=widths)
    model = kg.GrowableModel(spec)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    if reserve:
        model.reserve_depth([FLAGS.capacity] * spec.depth_stages)
    return growth_cost.time_growths(
        model,
        batch,
        _RoundRobin(),
        FLAGS.events,
        FLAGS.steady_steps,
        initializer="zero",
        seed=0,
    )


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    batch = (
        rng.random((FLAGS.batch_size, 28, 28, 1), dtype=np.float32),
        rng.integers(0, 10, FLAGS.batch_size),
    )
    result = {"reserve": _arm(batch, True), "rebuild": _arm(batch, False)}
    reserve, rebuild = result["reserve"], result["rebuild"]
    result["steady_throughput_reserve_vs_exact"] = (
        rebuild["step_after_ms"] / reserve["step_after_ms"]
    )
    print(
        f"{FLAGS.start} ({','.join(FLAGS.widths)}), one block per growth, "
        f"{FLAGS.events} growths to {reserve['final']}, capacity "
        f"{FLAGS.capacity} a stage, batch {FLAGS.batch_size}:"
    )
    growth_cost.print_table({"reserve": reserve, "rebuild": rebuild})
    print(
        f"At {reserve['final']}: a step with the reserve "
        f"{reserve['step_after_ms']:.1f} ms, without "
        f"{rebuild['step_after_ms']:.1f} ms: throughput "
        f"{result['steady_throughput_reserve_vs_exact']:.3f}x the exact net's."
    )
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, "result.json"), result)


if __name__ == "__main__":
    app.run(main)
