"""What reserved residual blocks cost a training step, gated three ways.

Times the train step of a basic ResNet with `--depth` blocks per stage
against the same net with `--reserve` inactive blocks after each stage
(`experiments.runs.bench.reserve`): a `GatedBlock` that `tf.cond` skips,
flat gated layers that each skip under `tf.cond`, and a multiplication
(the branch computed, scaled by 0). Then switches one reserved block per
stage on by assignment, for each gate, and counts the traces of the
train step around it. The issue-32 target: a reserve costs
steady training at most 5% (throughput >= 0.95x the exact-size net).

    python -m experiments.bench_reserved_blocks   # about 3 minutes, one core
"""

import os

import keras
import numpy as np
from absl import app
from absl import flags

from experiments.runs import workdir
from experiments.runs.bench import reserve

flags.DEFINE_integer("depth", 2, "Active blocks per stage.")
flags.DEFINE_integer("reserve", 2, "Reserved (inactive) blocks per stage.")
flags.DEFINE_list("widths", ["16", "32", "64"], "Channels of the three stages.")
flags.DEFINE_integer("image_size", 32, "Height and width of the inputs.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("repeats", 5, "Rounds of timing, the arms taking turns.")
flags.DEFINE_integer("steps", 6, "Train steps timed per arm and round.")
flags.DEFINE_string("out", "out/bench_reserved_blocks", "Where result.json goes.")
FLAGS = flags.FLAGS


def _net(reserve_blocks, gate):
    keras.utils.set_random_seed(0)
    shape = (FLAGS.image_size, FLAGS.image_size, 3)
    widths = [int(w) for w in FLAGS.widths]
    return reserve.resnet(shape, widths, FLAGS.depth, reserve_blocks, gate)


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    size = FLAGS.image_size
    batch = (
        rng.random((FLAGS.batch_size, size, size, 3), dtype=np.float32),
        rng.integers(0, 10, FLAGS.batch_size),
    )
    arms = {"exact": _net(0, "block")}
    arms.update({f"reserve, {g}": _net(FLAGS.reserve, g) for g in reserve.GATES})
    models = {name: reserve.compiled(model) for name, (model, _) in arms.items()}
    times = reserve.step_times(models, batch, FLAGS.repeats, FLAGS.steps)
    exact = times["exact"]
    switched = {}
    for gate in reserve.GATES:
        model, blocks = _net(FLAGS.reserve, gate)
        switched[gate] = reserve.activation(reserve.compiled(model), blocks, batch)
    result = {
        "config": {k: FLAGS[k].value for k in ("depth", "reserve", "widths")},
        "step_ms": {name: 1000 * t for name, t in times.items()},
        "throughput_vs_exact": {name: exact / t for name, t in times.items()},
        "activation": switched,
    }
    print(
        f"Basic ResNet {FLAGS.widths}, {FLAGS.depth} blocks a stage, "
        f"{FLAGS.reserve} reserved, batch {FLAGS.batch_size}:"
    )
    print("| arm | step (ms) | throughput vs exact |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1000 * t:.1f} | {exact / t:.3f} |")
    for gate, s in switched.items():
        print(
            f"{gate}: switching one block per stage on: train traces "
            f"{s['traces_before']} -> {s['traces_after']}, output changed "
            f"{s['output_changed']}, block trained {s['block_trained']}"
        )
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, "result.json"), result)


if __name__ == "__main__":
    app.run(main)
