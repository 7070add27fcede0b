"""A round's measure with its traced function kept across rounds against
traced anew each round: GradMax's and TINY's (`new_units.Measure`,
`--method=closed_form`) or Firefly's descent (`descent.WidthRounds`,
`--method=firefly`).

An MLP (`--notation`, 784 inputs, 10 classes) grows both layers by
`--units` units a round, in place, `--rounds` times. Each round measures
its groups on `--batches` batches of 128 random images twice: kept from
round to round, and new (traced anew, as every round did before). A
Firefly round also takes `--delta_steps` step-one steps, and offers
`--units` new units per layer as candidates beside the splits.

    python -m experiments.bench_measure_traces      # about a minute
    python -m experiments.bench_measure_traces --method=firefly
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir
from keras_grow import descent
from keras_grow.descent import new_units
from keras_grow.transfer.weights import weight_shapes

flags.DEFINE_enum("method", "closed_form", ["closed_form", "firefly"], "Whose measure.")
flags.DEFINE_string("notation", "MLP-256-256", "The MLP that grows.")
flags.DEFINE_integer("rounds", 4, "Rounds measured.")
flags.DEFINE_integer("units", 8, "Units each layer gains a round.")
flags.DEFINE_integer("batches", 4, "Batches a measure averages over.")
flags.DEFINE_integer("delta_steps", 10, "Firefly's step-one steps a round.")
flags.DEFINE_string("out", "out/bench_measure_traces", "Where <method>.json goes.")
FLAGS = flags.FLAGS


def _seconds(model, measure, batches):
    groups, _ = new_units.closed_form_groups(model.spec, weight_shapes(model.body))
    start = time.perf_counter()
    measure(model, groups, iter(batches), len(batches))
    return time.perf_counter() - start


def _firefly_rounds(model):
    return descent.WidthRounds(
        model.loss,
        epsilon=0.1,
        split_epsilon=0.1**0.5,
        learning_rate=0.01,
        optimizer="adam",
        score_points=4,
        jit_compile=False,
    )


def _firefly_seconds(model, rounds, batches):
    start = time.perf_counter()
    steps = rounds.start(
        model.body, model.spec, split=True, new_units=FLAGS.units, seed=0
    )
    data = iter(batches * (FLAGS.delta_steps // len(batches) + 2))
    steps.optimise(data, FLAGS.delta_steps)
    steps.scores(iter(batches), len(batches))
    return time.perf_counter() - start


# Per method: (what keeps the traced function, one round's seconds with it).
METHODS = {
    "closed_form": (lambda model: new_units.Measure(model.loss), _seconds),
    "firefly": (_firefly_rounds, _firefly_seconds),
}


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    model = kg.GrowableModel(kg.specs.parse(FLAGS.notation, (784,), 10))
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    batches = [
        (
            tf.constant(rng.random((128, 784), dtype=np.float32)),
            tf.constant(rng.integers(0, 10, 128)),
        )
        for _ in range(FLAGS.batches)
    ]
    model.train_on_batch(*batches[0])
    make, seconds = METHODS[FLAGS.method]
    kept = make(model)
    rows = []
    for round_ in range(1, FLAGS.rounds + 1):
        anew = seconds(model, make(model), batches)
        reused = seconds(model, kept, batches)
        rows.append(
            {
                "method": FLAGS.method,
                "round": round_,
                "net": model.spec.notation,
                "traced_anew_s": round(anew, 3),
                "kept_s": round(reused, 3),
                "kept_traces": kept.traces,
            }
        )
        print(
            f"round {round_}, {model.spec.notation}: traced anew {anew:.2f} s, "
            f"kept {reused:.2f} s ({kept.traces} trace so far)"
        )
        widths = [w + FLAGS.units for w in model.spec.widths]
        if not model.grow(model.spec.with_widths(widths))["in_place"]:
            raise RuntimeError(f"{model.spec.notation} did not grow in place.")
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir.write_json(os.path.join(FLAGS.out, f"{FLAGS.method}.json"), rows)


if __name__ == "__main__":
    app.run(main)
