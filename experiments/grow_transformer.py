"""Grows a transformer written in plain Keras inside `fit`, saves and
exports it: a small ViT on the embedded Fashion-MNIST sample, or a text
classifier on synthetic token sequences.

The user model goes through `GrowableModel.from_keras`; `--growth` picks
how it grows:

- `progressive`: `ProgressiveGrowth` doubles it (residual stream, heads,
  feed-forward widths) into `--target_scale` times its widths, by
  duplicating units (the stream's layer norms see the same statistics);
- `stack`: two more encoder layers, at a third and two thirds of the
  epochs, each starting as a copy of the layer before it (G_stack);
- `tiny` / `gradmax` / `firefly`: new feed-forward units where the
  method's measure says they help (the heads and the stream are skipped
  with the reason in the growth log); Firefly also scores a new encoder
  layer per round and adds it where its score is negative.

    python -m experiments.grow_transformer --task=vit --workdir out/vit
    python -m experiments.grow_transformer --task=text --growth=tiny
"""

import os
import time

import keras
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

import keras_grow as kg
from experiments.runs import workdir as workdir_lib
from experiments.runs.transformers import synthetic_text
from experiments.runs.transformers import text_classifier
from experiments.runs.transformers import vit

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "vit", ["vit", "text"], "Which model and data.")
flags.DEFINE_enum(
    "growth",
    "progressive",
    ["progressive", "stack", "tiny", "gradmax", "firefly"],
    "How the model grows inside fit.",
)
flags.DEFINE_string("workdir", "out/transformer", "Where results are written.")
flags.DEFINE_integer("width", 16, "Residual-stream width at the start.")
flags.DEFINE_integer("heads", 2, "Attention heads per layer at the start.")
flags.DEFINE_integer("layers", 2, "Encoder layers.")
flags.DEFINE_float(
    "target_scale", 2.0, "progressive: the target's widths / the start's."
)
flags.DEFINE_integer("epochs", 12, "Epochs.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 2e-3, "AdamW's peak learning rate.")
flags.DEFINE_integer("seed", 0, "Seed for weights, data and growth.")
flags.DEFINE_integer("take", None, "vit: use only this many training images.")


def _data():
    """(train, validation, test) datasets of the task."""
    if FLAGS.task == "vit":
        return tuple(
            kg.data.load(
                "fashion_mnist_sample",
                split,
                FLAGS.batch_size,
                seed=FLAGS.seed,
                take=FLAGS.take if split == "train" else None,
            )
            for split in ("train", "validation", "test")
        )
    splits = []
    for offset, count in ((0, 4000), (1, 500), (2, 1000)):
        x, y = synthetic_text(count, FLAGS.seed * 3 + offset)
        data = tf.data.Dataset.from_tensor_slices((x, y))
        if offset == 0:
            data = data.shuffle(count, seed=FLAGS.seed)
        splits.append(data.batch(FLAGS.batch_size))
    return tuple(splits)


def _growth(model, train):
    """The growth callback `--growth` names."""
    if FLAGS.growth == "progressive":
        target = model.spec.scaled(width=FLAGS.target_scale)
        return kg.callbacks.ProgressiveGrowth(target, seed=FLAGS.seed)
    if FLAGS.growth == "stack":
        at = sorted({max(1, FLAGS.epochs // 3), max(1, 2 * FLAGS.epochs // 3)})
        return kg.callbacks.ScheduledGrowth(
            {epoch: lambda s: s.with_block_added(0) for epoch in at},
            copy_blocks=True,
            seed=FLAGS.seed,
        )
    if FLAGS.growth == "firefly":
        return kg.callbacks.Firefly(
            train,
            grow_every=3,
            grow_depth=bool(model.spec.depth_stages),
            seed=FLAGS.seed,
        )
    cls = {"tiny": kg.callbacks.TINY, "gradmax": kg.callbacks.GradMax}[FLAGS.growth]
    return cls(train, grow_every=3, seed=FLAGS.seed)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = {
        name: FLAGS[name].value
        for name in (
            "task growth width heads layers target_scale epochs batch_size "
            "learning_rate seed take"
        ).split()
    }
    workdir = workdir_lib.prepare(FLAGS.workdir, config)
    keras.utils.set_random_seed(FLAGS.seed)
    make = vit if FLAGS.task == "vit" else text_classifier
    model = kg.GrowableModel.from_keras(
        make(FLAGS.width, FLAGS.heads, FLAGS.layers), depth="blocks"
    )
    print("\n".join(model.spec.growth_report()))
    model.compile(
        optimizer=keras.optimizers.AdamW(FLAGS.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train, validation, test = _data()
    start = time.perf_counter()
    model.fit(
        train,
        validation_data=validation,
        epochs=FLAGS.epochs,
        callbacks=[
            _growth(model, train),
            keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv")),
        ],
        verbose=2,
    )
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(test, verbose=0)
    workdir_lib.write_json(os.path.join(workdir, "growth_log.json"), model.growth_log)
    model.save(os.path.join(workdir, "model.keras"))
    export = model.export_serving(os.path.join(workdir, "serving"), overwrite=True)
    print(f"grown net: {model.spec.notation} ({model.count_params():,} parameters)")
    print(f"test accuracy: {accuracy:.4f}; wall time {seconds:.0f}s")
    print(f"saved {workdir}/model.keras; serving export: {export}")


if __name__ == "__main__":
    app.run(main)
