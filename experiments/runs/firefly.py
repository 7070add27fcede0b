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


# The paper's schedule: 30% per round, 160 epochs between rounds; as the
# authors' code: step one (RMSprop, rate 1e-3) and scoring over one epoch
# of CIFAR batches each, a pool of 70 new units per layer, each period at
# rate 0.1 with x0.1 at 1/2 and 3/4 and a fresh optimizer.
_PAPER = dict(
    epochs=1600,
    grow_every=160,
    max_rounds=9,
    learning_rate=0.1,
    batch_size=128,
    candidates_per_layer=70,
    delta_steps=390,
    delta_optimizer="rmsprop",
    delta_learning_rate=1e-3,
    score_batches=390,
    period_schedule="step",
    after_growth="fresh",
)

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


def _firefly(config, train, common):
    return kg.callbacks.Firefly(
        train,
        candidates_per_layer=config.candidates_per_layer,
        epsilon=config.epsilon,
        split_epsilon=config.split_epsilon,
        delta_steps=config.delta_steps,
        delta_learning_rate=config.delta_learning_rate,
        delta_optimizer=config.delta_optimizer,
        score_samples=config.score_samples,
        score_batches=config.score_batches,
        split=config.split,
        new_units=config.new_units,
        grow_depth=config.grow_depth,
        jit_compile=config.jit_compile,
        **common,
    )


# method -> callback(config, train data, the schedule's common arguments).
# GradMax and TINY keep their own epsilon (0: function-preserving) and
# scale (GradMax 0.1; gradmax_scale_1 is GradMax at the layer's mean norm);
# tiny_significant tests each unit on held-out halves of >= 8 batches.
_CALLBACKS = {
    "firefly": _firefly,
    "random_split": lambda c, t, common: kg.callbacks.RandomSplit(
        noise=c.noise, **common
    ),
    "random_new": lambda c, t, common: kg.callbacks.RandomNew(
        epsilon=c.epsilon, **common
    ),
    "gradmax": lambda c, t, common: kg.callbacks.GradMax(
        t, score_batches=c.score_batches, **common
    ),
    "gradmax_scale_1": lambda c, t, common: kg.callbacks.GradMax(
        t, score_batches=c.score_batches, scale=1.0, **common
    ),
    "tiny": lambda c, t, common: kg.callbacks.TINY(
        t, score_batches=c.score_batches, **common
    ),
    "tiny_significant": lambda c, t, common: kg.callbacks.TINY(
        t, score_batches=max(8, c.score_batches), unit_count="significant", **common
    ),
}
METHODS = tuple(_CALLBACKS)
TRAIN_DATA_METHODS = (
    "firefly",
    "gradmax",
    "gradmax_scale_1",
    "tiny",
    "tiny_significant",
)


def make_callback(config, train, log_dir=None):
    """The growth callback `config.method` names."""
    common = dict(
        grow_every=config.grow_every,
        growth_ratio=config.growth_ratio,
        max_params=config.max_params,
        max_rounds=config.max_rounds,
        seed=config.seed,
        log_dir=log_dir,
        calibrate_new_units=config.calibrate_new_units,
        period_schedule=config.period_schedule,
        after_growth=config.after_growth,
    )
    if config.method not in TRAIN_DATA_METHODS and config.calibrate_new_units:
        common["calibration_data"] = train
    return _CALLBACKS[config.method](config, train, common)


def round_points(history, growth_log):
    """One point per training period: the net's parameters, its accuracy.

    A period ends at a round (the monitored accuracy before that round's
    growth) or at the end of the run.
    """
    points = []
    ends = [e["epoch"] for e in growth_events.growths(growth_log)]
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
        "params": model.body.count_params(),
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
