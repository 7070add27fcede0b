"""What measuring new units' BN statistics after a Firefly round changes
(issue 13 Part A 7; docs/firefly.md).

Per seed: a net trains `--epochs_before` epochs; its checkpoint then grows
by one Firefly round twice, with the same seed (so the same units), with
`calibrate_new_units=0` (the authors' 0/1 start) and `=--batches`. Reports
validation accuracy and loss right before the round, right after it
(inference mode, no training step yet) and after one more epoch.

    python -m experiments.calibration_effect --seeds=0,1,2
"""

import dataclasses
import json
import os

import keras
from absl import app
from absl import flags

import keras_grow as kg
from experiments.runs import paired
from experiments.runs import stats
from experiments.runs import training
from experiments.runs import workdir as workdir_lib

flags.DEFINE_string("workdir", "out/calibration_effect", "Where results go.")
flags.DEFINE_string("initial", "VGG11-4", "The net that grows.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_integer("epochs_before", 3, "Epochs before the round.")
flags.DEFINE_integer("batches", 4, "Batches the statistics are measured on.")
FLAGS = flags.FLAGS


def _evaluate(model, monitored):
    loss, accuracy = model.evaluate(monitored, verbose=0)
    return {"val_loss": float(loss), "val_accuracy": float(accuracy)}


def one_seed(config, batches):
    _, train, monitored, _ = training.load_splits(config, 0)
    keras.utils.set_random_seed(config.seed)
    info = kg.data.info(config.dataset)
    model = training.compile_model(
        kg.GrowableModel(training.make_spec(config, info, config.initial)), config
    )
    model.fit(
        train,
        steps_per_epoch=training.steps_per_epoch(config),
        epochs=FLAGS.epochs_before,
        verbose=0,
    )
    path = os.path.join(FLAGS.workdir, f"seed{config.seed}.keras")
    model.save(path)
    result = {"before": _evaluate(model, monitored)}
    for calibrate in (0, batches):
        grown = keras.models.load_model(path)
        stream = training.train_data(config, start_epoch=0)
        firefly = kg.callbacks.Firefly(
            stream,
            grow_every=1,
            max_rounds=1,
            seed=config.seed,
            verbose=0,
            calibrate_new_units=calibrate,
        )
        firefly.set_model(grown)
        firefly.on_train_begin()
        firefly.on_epoch_end(FLAGS.epochs_before - 1, {})
        after = _evaluate(grown, monitored)
        _, more, _, _ = training.load_splits(config, FLAGS.epochs_before)
        grown.fit(
            more,
            steps_per_epoch=training.steps_per_epoch(config),
            epochs=1,
            verbose=0,
        )
        result[f"calibrate={calibrate}"] = {
            "after_round": after,
            "after_one_epoch": _evaluate(grown, monitored),
            "found": grown.spec.notation,
        }
    return result


def main(argv):
    del argv
    os.makedirs(FLAGS.workdir, exist_ok=True)
    config = dataclasses.replace(paired.PRESETS["vgg"], initial=FLAGS.initial)
    results = []
    for seed in (int(s) for s in FLAGS.seeds):
        path = os.path.join(FLAGS.workdir, f"seed{seed}.json")
        if not os.path.exists(path):
            result = one_seed(dataclasses.replace(config, seed=seed), FLAGS.batches)
            workdir_lib.write_json(path, result)
        with open(path) as handle:
            results.append(json.load(handle))
    on, off = f"calibrate={FLAGS.batches}", "calibrate=0"
    lines = [
        "| | val. acc. (%) calibrate=0 | calibrated | calibrated − 0 (pts, 95% CI) |",
        "|---|---|---|---|",
    ]
    for moment in ("after_round", "after_one_epoch"):
        a = [r[off][moment]["val_accuracy"] for r in results]
        b = [r[on][moment]["val_accuracy"] for r in results]
        lines.append(
            f"| {moment} | {100 * sum(a) / len(a):.2f} | {100 * sum(b) / len(b):.2f} "
            f"| {stats.paired_difference(b, a).format(100, 2)} |"
        )
    before = [r["before"]["val_accuracy"] for r in results]
    lines.append(f"| before the round | {100 * sum(before) / len(before):.2f} | | |")
    text = "\n".join(lines)
    workdir_lib.write_text(os.path.join(FLAGS.workdir, "report.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
