"""The main job: AutoGrow finds the depth of a small ResNet on the embedded
Fashion-MNIST sample, fine-tunes it, reports it, saves and exports it.

Starts from Basic3ResNet-1-1-1 (8/16/32 channels). Every `--growth_period`
epochs AutoGrow stops the stage it grew last if validation accuracy's
running best rose by less than `--min_delta` over `--patience` epochs, and
adds a block to the next stage still growing; once every stage has
stopped it fine-tunes `--fine_tune_epochs` epochs and ends the run:

    python -m experiments.grow_demo --workdir out/demo
"""

import os
import time

import keras
from absl import app
from absl import flags
from absl import logging

import keras_grow as kg
from experiments.runs import workdir as workdir_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "out/demo", "Where results are written.")
flags.DEFINE_string("dataset", "fashion_mnist_sample", "keras_grow.data name.")
flags.DEFINE_string("initial", "Basic3ResNet-1-1-1", "Starting spec notation.")
flags.DEFINE_list("widths", ["8", "16", "32"], "Stage widths.")
flags.DEFINE_integer("max_epochs", 20, "At most this many epochs in all.")
flags.DEFINE_integer("growth_period", 1, "AutoGrow's K: epochs between growths.")
flags.DEFINE_integer("patience", 2, "AutoGrow's J: the stopping window.")
flags.DEFINE_float("min_delta", 0.01, "AutoGrow's tau, in accuracy units.")
flags.DEFINE_string("initializer", "zero", "AutoGrow's initializer.")
# Stage 1 runs at full resolution: its blocks cost 4x a stage-2 block.
flags.DEFINE_list("max_depths", ["2", "3", "3"], "Most blocks per stage.")
flags.DEFINE_integer("fine_tune_epochs", 3, "Epochs of fine-tuning at the end.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 0.05, "SGD learning rate (momentum 0.9).")
flags.DEFINE_integer("seed", 0, "Seed for weights, data order, augmentation.")
flags.DEFINE_integer("take", None, "Use only this many training examples.")
# Off: in a run this short on 5,400 images augmentation costs more accuracy
# than it saves from overfitting (README, "The main job").
flags.DEFINE_bool("augment", False, "Pad-crop and flip the training images.")


def _config():
    names = (
        "dataset initial widths max_epochs growth_period patience min_delta "
        "initializer max_depths fine_tune_epochs batch_size learning_rate seed take "
        "augment"
    ).split()
    config = {name: FLAGS[name].value for name in names}
    for name in ("widths", "max_depths"):
        config[name] = [int(w) for w in config[name]]
    return config


def _load(split):
    training = split == "train"
    return kg.data.load(
        FLAGS.dataset,
        split,
        FLAGS.batch_size,
        seed=FLAGS.seed,
        take=FLAGS.take if training else None,
        augment=FLAGS.augment and training,
    )


def _model(info, config):
    spec = kg.specs.parse(
        FLAGS.initial,
        info.input_shape,
        info.num_classes,
        widths=config["widths"],
        input_mean=info.mean,
        input_std=info.std,
    )
    model = kg.GrowableModel(spec)
    model.compile(
        optimizer=keras.optimizers.SGD(FLAGS.learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _save(model, workdir):
    """Writes the growth log, the found spec, the `.keras` model and the
    TF Serving export; returns the export's path."""
    workdir_lib.write_json(os.path.join(workdir, "growth_log.json"), model.growth_log)
    workdir_lib.write_json(
        os.path.join(workdir, "found_spec.json"), model.spec.to_dict()
    )
    model.save(os.path.join(workdir, "model.keras"))
    return model.export_serving(os.path.join(workdir, "serving"), overwrite=True)


def _times(count):
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # no INFO lines from the export
    config = _config()
    workdir = workdir_lib.prepare(FLAGS.workdir, config)
    keras.utils.set_random_seed(FLAGS.seed)
    info = kg.data.info(FLAGS.dataset)
    model = _model(info, config)
    autogrow = kg.callbacks.AutoGrow(
        growth_period=FLAGS.growth_period,
        patience=FLAGS.patience,
        min_delta=FLAGS.min_delta,
        initializer=FLAGS.initializer,
        max_depths=config["max_depths"],
        fine_tune_epochs=FLAGS.fine_tune_epochs,
        seed=FLAGS.seed,
    )
    history_csv = keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv"))
    start = time.perf_counter()
    model.fit(
        _load("train"),
        validation_data=_load("validation"),
        epochs=FLAGS.max_epochs,  # AutoGrow ends the run after fine-tuning
        callbacks=[autogrow, history_csv],
        verbose=2,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    _, test_accuracy = model.evaluate(_load("test"), verbose=0)
    seconds = time.perf_counter() - start
    export = _save(model, workdir)
    params = model.count_params()
    print(f"found net: {model.spec.notation} ({params:,} parameters)")
    print(f"test accuracy: {test_accuracy:.4f} on {info.num_test} images")
    print(f"wall time: {seconds:.0f}s; saved {workdir}/model.keras")
    traces = model.trace_counts
    reserved = model.reserve is not None
    print(
        f"Keras traced the train step {_times(traces['train'])} and the test "
        f"step {_times(traces['test'])} (once at the start; "
        + (
            "growths switched on blocks built ahead, so traced nothing)"
            if reserved
            else "then after each growth)"
        )
    )
    print(f"serving export: {export}")


if __name__ == "__main__":
    app.run(main)
