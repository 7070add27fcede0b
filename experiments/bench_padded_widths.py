"""What padded width capacity would cost a training step.

Growing widths without a retrace on convolutions (and without an XLA
recompile anywhere) needs variables built at a capacity above the active
widths, the inactive units held at zero: then every step computes them.
Zero units cost what real ones do, so this times the train step of each
net at its widths against the same net with every width entry scaled by
`--factors` (rounded up): the steady price of a reserve that large. The
arms take turns (`experiments.runs.bench.reserve.step_times`).

    python -m experiments.bench_padded_widths     # about 5 minutes, one core
"""

import math
import os

import keras
import numpy as np
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir
from experiments.runs.bench import reserve

flags.DEFINE_list(
    "nets",
    ["VGG11-8", "Basic3ResNet-2-2-2", "MLP-256-256"],
    "Nets at their default widths (the ResNet at --resnet_widths).",
)
flags.DEFINE_list("resnet_widths", ["16", "32", "64"], "The ResNet's stage widths.")
flags.DEFINE_list("factors", ["1.25", "1.5", "2"], "Capacity over the widths.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("repeats", 5, "Rounds of timing, the arms taking turns.")
flags.DEFINE_integer("steps", 6, "Train steps timed per arm and round.")
flags.DEFINE_string("out", "out/bench_padded_widths", "Where result.json goes.")
FLAGS = flags.FLAGS

# Inputs each family is timed on: VGG's five poolings need 32x32.
_INPUTS = {"VGG": (32, 32, 3), "Basic3ResNet": (28, 28, 1), "MLP": (784,)}


def _spec(notation, factor=1.0):
    shape = next(v for k, v in _INPUTS.items() if notation.startswith(k))
    kwargs = {}
    if notation.startswith("Basic3ResNet"):
        kwargs["widths"] = [int(w) for w in FLAGS.resnet_widths]
    spec = kg.specs.parse(notation, shape, 10, **kwargs)
    return spec.with_widths([math.ceil(w * factor) for w in spec.widths])


def _model(spec):
    keras.utils.set_random_seed(0)
    return reserve.compiled(kg.GrowableModel(spec))


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    factors = [float(f) for f in FLAGS.factors]
    result = {}
    for notation in FLAGS.nets:
        specs = {1.0: _spec(notation)}
        specs.update({f: _spec(notation, f) for f in factors})
        shape = specs[1.0].input_shape
        batch = (
            rng.random((FLAGS.batch_size, *shape), dtype=np.float32),
            rng.integers(0, 10, FLAGS.batch_size),
        )
        models = {f: _model(spec) for f, spec in specs.items()}
        times = reserve.step_times(models, batch, FLAGS.repeats, FLAGS.steps)
        result[notation] = {
            str(f): {
                "notation": specs[f].notation,
                "step_ms": 1000 * times[f],
                "over_exact": times[f] / times[1.0],
            }
            for f in specs
        }
        row = ", ".join(f"{f}x: {times[f] / times[1.0]:.2f}" for f in factors)
        print(f"{notation} ({1000 * times[1.0]:.1f} ms a step): {row}")
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, "result.json"), result)


if __name__ == "__main__":
    app.run(main)
