"""A fixed spec trained from scratch with a staircase learning rate."""

import dataclasses
import os

import keras

from experiments.runs import training
from experiments.runs import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class BaselineConfig(training.RunConfig):
    """A from-scratch run: the shared fields are `training.RunConfig`'s.

    The learning rate is `learning_rate`, x0.1 at 1/2 and 3/4 of `epochs`.
    """

    spec: str = "Basic3ResNet-1-1-1"
    epochs: int = 20
    export: bool = False


def staircase(base, epochs, factor=0.1, boundaries=(0.5, 0.75)):
    """The fine-tune schedule as a function epoch -> learning rate."""

    def learning_rate(epoch, current=None):
        drops = sum(epoch / epochs >= b for b in boundaries)
        return base * factor**drops

    return learning_rate


def run(config, workdir):
    """Trains `config.spec` from scratch; writes history, result, model."""
    setup = training.start(config, workdir, config.spec)
    scheduler = keras.callbacks.LearningRateScheduler(
        staircase(config.learning_rate, config.epochs)
    )
    history, test_accuracy, seconds = training.fit_and_evaluate(
        setup, config.epochs, [scheduler]
    )
    model = setup.model
    training.save_outcome(model, workdir, config.export)
    result = {
        "spec": model.spec.notation,
        "params": model.count_params(),
        "test_accuracy": test_accuracy,
        "best_monitored_accuracy": max(history.history["val_accuracy"]),
        "epochs": config.epochs,
        "wall_seconds": round(seconds, 1),
        "seed": config.seed,
    }
    workdir_lib.write_json(os.path.join(workdir, "result.json"), result)
    return result
