"""An AutoGrow run: a config (with named presets) and `run`."""

import dataclasses
import os

import keras_grow as kg
from experiments.runs import plots
from experiments.runs import training
from experiments.runs import workdir as workdir_lib
from keras_grow import growth_events
from keras_grow.callbacks.scalars import tensorboard_available


@dataclasses.dataclass(frozen=True)
class AutoGrowConfig(training.RunConfig):
    """Everything an AutoGrow run depends on (written to config.json).

    The shared fields are `training.RunConfig`'s (the learning rate stays
    constant while growing). Net: `initial` (notation). AutoGrow: the
    callback's arguments. `max_epochs` caps fit; AutoGrow normally ends
    the run earlier.
    """

    initial: str = "Basic3ResNet-1-1-1"
    growth_period: int = 3
    policy: str = "periodic"
    patience: int = 30
    min_delta: float = 0.0005
    initializer: str = "gaussian"
    initializer_scale: float = 1.0
    max_depths: tuple | None = None
    fine_tune_epochs: int = 40
    fine_tune_lr_boundaries: tuple = (0.5, 0.75)
    adam_init_max_epochs: int = 10
    convergence_patience: int | None = None
    on_stop: str = "keep"
    max_epochs: int = 500


# The authors decide on the test split; the preset's data says held-out.
_PAPER = dict(
    training.paper_settings("p_autogrow_cifar", AutoGrowConfig), decide_on="test"
)
# The authors run plain nets at a tenth of the rate.
_PAPER_PLAIN = dict(_PAPER, learning_rate=0.01)

# Named configurations. The paper's need a GPU and the data; the fmnist_*
# ones finish in minutes on 2 CPU cores.
PRESETS = {
    "cifar10_basic3resnet": AutoGrowConfig(
        dataset="cifar10", initial="Basic3ResNet-1-1-1", **_PAPER
    ),
    "cifar10_plain3net": AutoGrowConfig(
        dataset="cifar10", initial="Plain3Net-1-1-1", **_PAPER_PLAIN
    ),
    "cifar100_basic3resnet": AutoGrowConfig(
        dataset="cifar100", initial="Basic3ResNet-1-1-1", **_PAPER
    ),
    "cifar100_plain3net": AutoGrowConfig(
        dataset="cifar100", initial="Plain3Net-1-1-1", **_PAPER_PLAIN
    ),
    "imagenet_basic4resnet": AutoGrowConfig(
        dataset="imagenet2012",
        initial="Basic4ResNet-1-1-1-1",
        learning_rate=0.1,
        batch_size=256,
        growth_period=3,
        patience=30,
        min_delta=0.0005,
        fine_tune_epochs=90,
        # The authors' ImageNet recipe: weight decay 1e-4, fine-tune drops
        # at 1/3 and 2/3, random resized crops and flips.
        weight_decay=1e-4,
        fine_tune_lr_boundaries=(1 / 3, 2 / 3),
        augmentation="resized_crop_flip",
        max_epochs=1000,
        decide_on="test",
    ),
    # Fashion-MNIST sample (5400 train / 600 validation), narrow stages.
    "fmnist_small": AutoGrowConfig(
        widths=(8, 16, 32),
        learning_rate=0.05,
        growth_period=1,
        patience=3,
        min_delta=0.005,
        fine_tune_epochs=6,
        max_epochs=60,
    ),
    # The reproduction study on real data (docs/results/autogrow.md): 2000
    # training images of the sample, stages 4/8/16 wide, tau = 2 points and
    # AdamInit capped at 2 epochs, so that ~25 runs fit in an hour on 2 cores
    # (at tau = 1 point zero-init grew to Basic3ResNet-8-5-8 in 6.5 minutes).
    "fmnist_repro": AutoGrowConfig(
        take=2000,
        widths=(4, 8, 16),
        learning_rate=0.05,
        growth_period=1,
        patience=3,
        min_delta=0.02,
        fine_tune_epochs=6,
        max_epochs=60,
        adam_init_max_epochs=2,
    ),
    # A few seconds: the smoke test.
    "fmnist_tiny": AutoGrowConfig(
        take=256,
        widths=(4, 8, 8),
        batch_size=64,
        learning_rate=0.05,
        growth_period=1,
        patience=1,
        min_delta=0.5,
        fine_tune_epochs=2,
        max_epochs=12,
        max_depths=(2, 2, 2),
    ),
}


def resolve(preset, **overrides):
    """The preset's config with `overrides` (unknown fields raise)."""
    return training.resolve_preset(PRESETS, preset, overrides)


def make_callback(config, log_dir=None, verbose=1):
    """The `AutoGrow` callback `config` describes (its fields named as
    AutoGrow's arguments are those arguments)."""
    return kg.callbacks.AutoGrow(
        **training.arguments_for(kg.callbacks.AutoGrow, config),
        # AdamInit trains on finite, reshuffled epochs of the training data.
        adam_init_data=training.train_data(config)
        if config.initializer == "adam"
        else None,
        log_dir=log_dir,
        verbose=verbose,
    )


def run(config, workdir, strategy=None):
    """Runs AutoGrow on `config`; writes everything into `workdir`.

    Writes config.json, history.csv (with the architecture per epoch),
    growth_log.json, found_spec.json, autogrow.png, model.keras, serving/
    and result.json.

    Returns:
        dict. The result: found notation, parameters, test accuracy, best
        monitored accuracy, epochs, wall time.
    """
    setup = training.start(config, workdir, config.initial, strategy)
    workdir = setup.workdir  # this worker's own, under several workers
    model = setup.model
    log_dir = os.path.join(workdir, "tensorboard") if tensorboard_available() else None
    autogrow = make_callback(config, log_dir)
    history, test_accuracy, seconds = training.fit_and_evaluate(
        setup, config.max_epochs, [autogrow]
    )
    training.save_outcome(model, workdir, config.export)
    plots.plot_autogrow(
        plots.read_history(setup.history_path),
        model.growth_log,
        os.path.join(workdir, "autogrow.png"),
        title=f"{config.initial} -> {model.spec.notation}",
    )
    result = {
        "found": model.spec.notation,
        "depths": list(model.spec.depths),
        "params": model.count_params(),
        "test_accuracy": test_accuracy,
        "best_monitored_accuracy": max(history.history["val_accuracy"]),
        "epochs": len(history.history["loss"]),
        "finished": autogrow.phase == "done",
        "growths": len(growth_events.growths(model.growth_log)),
        "wall_seconds": round(seconds, 1),
        "seed": config.seed,
    }
    workdir_lib.write_json(os.path.join(workdir, "result.json"), result)
    return result
