"""A Firefly run (or a random baseline's): a config with presets, and `run`."""

import dataclasses
import os

import keras_grow as kg
from experiments.runs import plots
from experiments.runs import training
from experiments.runs import workdir as workdir_lib
from keras_grow import growth_events
from keras_grow.callbacks.scalars import tensorboard_available


@dataclasses.dataclass(frozen=True)
class FireflyConfig(training.RunConfig):
    """Everything a width-growth run depends on (written to config.json).

    The shared fields are `training.RunConfig`'s; the learning rate is
    constant. Net: `initial` (notation). Growth: `method` (one of
    `METHODS`), the callbacks' arguments, `max_rounds` (0 trains the
    initial net as it is: the from-scratch reference). `epochs` is the
    whole run; rounds happen at the end of every `grow_every`-th epoch.
    """

    initial: str = "VGG19-16"
    method: str = "firefly"
    epochs: int = 30
    grow_every: int = 10
    growth_ratio: float = 0.3
    max_rounds: int | None = None
    max_params: int | None = None
    candidates_per_layer: int | None = None
    epsilon: float = 0.1
    split_epsilon: float | None = None
    delta_steps: int = 30
    delta_learning_rate: float = 0.01
    delta_optimizer: str = "adam"
    score_samples: int = 4
    score_batches: int = 4
    split: bool = True
    new_units: bool = True
    grow_depth: bool = False
    noise: float = 0.01
    calibrate_new_units: int = 0
    period_schedule: str = "constant"
    after_growth: str = "carry"


# The paper's schedule and the authors' code's step one and scoring.
_PAPER = training.paper_settings("firefly_vgg19_cifar10", FireflyConfig)

# The paper's (a GPU and the data needed); the fmnist_* ones run on 2 CPU cores.
PRESETS = {
    "cifar10_vgg19": FireflyConfig(dataset="cifar10", initial="VGG19-16", **_PAPER),
    "cifar100_mobilenet": FireflyConfig(
        dataset="cifar100", initial="MobileNetV1-32", **_PAPER
    ),
    # The Fashion-MNIST sample, VGG11 4 wide, 4 rounds of 30%: a few minutes.
    "fmnist_small": FireflyConfig(
        initial="VGG11-4",
        take=2000,
        batch_size=64,
        learning_rate=0.05,
        epochs=18,
        grow_every=3,
        max_rounds=4,
        delta_steps=30,
        score_batches=4,
    ),
    # Seconds: the smoke test.
    "fmnist_tiny": FireflyConfig(
        initial="VGG11-2",
        take=256,
        batch_size=64,
        learning_rate=0.05,
        epochs=4,
        grow_every=1,
        max_rounds=2,
        delta_steps=3,
        score_batches=1,
        score_samples=2,
    ),
}


def resolve(preset, **overrides):
    """The preset's config with `overrides` (unknown fields raise)."""
    config = training.resolve_preset(PRESETS, preset, overrides)
    if config.method not in METHODS:
        raise ValueError(f"Unknown method {config.method!r}; known: {list(METHODS)}.")
    return config


# method -> (callback class, whether it takes the training data first,
# arguments of its own). A config field named as one of the class's
# arguments is that argument, except where a method keeps its own value:
# GradMax and TINY their epsilon (0: function-preserving) and scale
# (GradMax 0.1; gradmax_scale_1 is GradMax at the layer's mean norm);
# tiny_significant tests each unit on held-out halves of >= 8 batches.
_CALLBACKS = {
    "firefly": (kg.callbacks.Firefly, True, {}),
    "random_split": (kg.callbacks.RandomSplit, False, {}),
    "random_new": (kg.callbacks.RandomNew, False, {}),
    "gradmax": (kg.callbacks.GradMax, True, {"epsilon": None}),
    "gradmax_scale_1": (kg.callbacks.GradMax, True, {"epsilon": None, "scale": 1.0}),
    "tiny": (kg.callbacks.TINY, True, {"epsilon": None}),
    "tiny_significant": (
        kg.callbacks.TINY,
        True,
        {"epsilon": None, "unit_count": "significant"},
    ),
}
METHODS = tuple(_CALLBACKS)
TRAIN_DATA_METHODS = tuple(m for m, (_, takes, _) in _CALLBACKS.items() if takes)


def make_callback(config, train, log_dir=None):
    """The growth callback `config.method` names."""
    callback_class, takes_train_data, own = _CALLBACKS[config.method]
    arguments = training.arguments_for(callback_class, config, exclude=tuple(own))
    arguments.update({k: v for k, v in own.items() if v is not None})
    if own.get("unit_count") == "significant":
        arguments["score_batches"] = max(8, config.score_batches)
    arguments["log_dir"] = log_dir
    if takes_train_data:
        return callback_class(train, **arguments)
    if config.calibrate_new_units:
        arguments["calibration_data"] = train
    return callback_class(**arguments)


def round_points(history, growth_log):
    """One point per training period: the net's parameters, its accuracy.

    A period ends at a round (the monitored accuracy before that round's
    growth) or at the end of the run.
    """
    points = []
    ends = [e.epoch for e in growth_events.growths(growth_events.read(growth_log))]
    last = len(history.get("epoch", [])) - 1
    for epoch in ends + ([last] if last not in ends else []):
        if 0 <= epoch <= last:
            points.append(
                {
                    "epoch": epoch + 1,
                    "params": int(history["params"][epoch]),
                    "val_accuracy": history["val_accuracy"][epoch],
                }
            )
    return points


def run(config, workdir, strategy=None):
    """Runs `config`; writes everything into `workdir`.

    Writes config.json, history.csv (parameters and epoch time per epoch),
    growth_log.json, found_spec.json, firefly.png (accuracy against
    parameters, one point per round), model.keras, serving/ and
    result.json.

    Returns:
        dict. The result (see result.json).
    """
    setup = training.start(config, workdir, config.initial, strategy)
    workdir = setup.workdir  # this worker's own, under several workers
    log_dir = os.path.join(workdir, "tensorboard") if tensorboard_available() else None
    callbacks = []
    if config.max_rounds != 0:
        # Its own epoch-seeded stream from epoch 0: its position is in its
        # state, so a resumed run draws the batches an uninterrupted one did.
        stream = training.train_data(config, start_epoch=0)
        callbacks.append(make_callback(config, stream, log_dir))
    history, test_accuracy, seconds = training.fit_and_evaluate(
        setup, config.epochs, callbacks
    )
    model = setup.model
    training.save_outcome(model, workdir, config.export)
    table = plots.read_history(setup.history_path)
    points = round_points(table, model.growth_log)
    label = "from scratch" if config.max_rounds == 0 else config.method
    plots.plot_firefly(
        {label: points},
        os.path.join(workdir, "firefly.png"),
        title=f"{config.initial} -> {model.spec.notation}",
    )
    rounds = growth_events.growths(model.growth_log)
    result = {
        "method": label,
        "found": model.spec.notation,
        "widths": list(model.spec.widths),
        "params": model.count_params(),
        "test_accuracy": test_accuracy,
        "final_val_accuracy": history.history["val_accuracy"][-1],
        "points": points,
        "rounds": len(rounds),
        "round_seconds": [
            round(e.get("seconds_round", 0.0) + e["seconds"], 3) for e in rounds
        ],
        "epoch_seconds": table.get("epoch_seconds", []),
        "wall_seconds": round(seconds, 1),
        "seed": config.seed,
    }
    workdir_lib.write_json(os.path.join(workdir, "result.json"), result)
    return result
