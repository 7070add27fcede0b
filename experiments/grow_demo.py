"""The main job: grow a small Basic3ResNet on the embedded Fashion-MNIST.

Starts from Basic3ResNet-1-1-1 (8/16/32 channels), adds one zero-initialised
block to stages 1, 2, 3 in turn every `--every` epochs, then reports the
found net's test accuracy, saves it and exports it for TF Serving:

    python -m experiments.grow_demo --workdir out/demo
"""

import os
import time

import keras
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "out/demo", "Where results are written.")
flags.DEFINE_string("dataset", "fashion_mnist_sample", "keras_grow.data name.")
flags.DEFINE_string("initial", "Basic3ResNet-1-1-1", "Starting spec notation.")
flags.DEFINE_list("widths", ["8", "16", "32"], "Stage widths.")
flags.DEFINE_integer("epochs", 8, "Training epochs in all.")
flags.DEFINE_integer("every", 2, "Epochs between growths.")
flags.DEFINE_integer("growths", 3, "Number of growths (round robin).")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 0.05, "SGD learning rate (momentum 0.9).")
flags.DEFINE_integer("seed", 0, "Seed for weights, data order, augmentation.")
flags.DEFINE_integer("take", None, "Use only this many training examples.")


def main(argv):
    del argv
    config = {
        "dataset": FLAGS.dataset,
        "initial": FLAGS.initial,
        "widths": [int(w) for w in FLAGS.widths],
        "epochs": FLAGS.epochs,
        "every": FLAGS.every,
        "growths": FLAGS.growths,
        "batch_size": FLAGS.batch_size,
        "learning_rate": FLAGS.learning_rate,
        "seed": FLAGS.seed,
        "take": FLAGS.take,
    }
    workdir = workdir_lib.prepare(FLAGS.workdir, config)
    keras.utils.set_random_seed(FLAGS.seed)
    info = kg.data.info(FLAGS.dataset)
    spec = kg.specs.parse(
        FLAGS.initial,
        info.input_shape,
        info.num_classes,
        widths=config["widths"],
        input_mean=info.mean,
        input_std=info.std,
    )

    def load(split):
        take = FLAGS.take if split == "train" else None
        return kg.data.load(
            FLAGS.dataset, split, FLAGS.batch_size, seed=FLAGS.seed, take=take
        )

    model = kg.GrowableModel(spec)
    model.compile(
        optimizer=keras.optimizers.SGD(FLAGS.learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    grow = kg.callbacks.ScheduledGrowth.round_robin(
        num_stages=len(spec.depths),
        every=FLAGS.every,
        growths=FLAGS.growths,
        seed=FLAGS.seed,
    )
    history_csv = keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv"))
    start = time.perf_counter()
    model.fit(
        load("train"),
        validation_data=load("validation"),
        epochs=FLAGS.epochs,
        callbacks=[grow, history_csv],
        verbose=2,
        shuffle=False,
    )  # the tf.data pipeline shuffles
    _, test_accuracy = model.evaluate(load("test"), verbose=0)
    seconds = time.perf_counter() - start
    workdir_lib.write_json(os.path.join(workdir, "growth_log.json"), model.growth_log)
    workdir_lib.write_json(
        os.path.join(workdir, "found_spec.json"), model.spec.to_dict()
    )
    model.save(os.path.join(workdir, "model.keras"))
    export = model.export_serving(os.path.join(workdir, "serving"), overwrite=True)
    params = model.body.count_params()
    print(f"found net: {model.spec.notation} ({params:,} parameters)")
    print(f"test accuracy: {test_accuracy:.4f} on {info.num_test} images")
    print(f"wall time: {seconds:.0f}s; saved {workdir}/model.keras")
    print(f"serving export: {export}")


if __name__ == "__main__":
    app.run(main)
