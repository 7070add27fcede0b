"""Pieces every run shares: data splits, spec, compile, saving the outcome."""

import contextlib
import dataclasses
import inspect
import os
import time

import keras

import keras_grow as kg
from experiments.runs import workdir as workdir_lib
from experiments.runs.progress import EpochLine
from experiments.runs.progress import HistoryFile


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The fields every run shares (written to config.json).

    Data: `dataset`, `take` (training examples; `None` for all) and
    `subset` ("first", or "random": a subset drawn with the run's seed),
    `validation_fraction`, `decide_on` ("validation", or "test" as the
    AutoGrow authors), `augment` and `augmentation` (a `kg.data`
    augmentation name), `batch_size`. Net: `widths` (stage or
    layer widths; `None` for the family's). Optimiser: `optimizer` ("sgd":
    SGD with `momentum`, `weight_decay` as L2 terms, PyTorch-style;
    "adamw": AdamW with decoupled `weight_decay`), `learning_rate`.
    Run: `seed`, `jit_compile`,
    `export` (a serving export of the final model).
    """

    dataset: str = "fashion_mnist_sample"
    take: int | None = None
    subset: str = "first"
    validation_fraction: float = 0.1
    decide_on: str = "validation"
    augment: bool = True
    augmentation: str = "crop_flip"
    batch_size: int = 128
    widths: tuple | None = None
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    jit_compile: bool = False
    export: bool = True


def resolve_preset(presets, preset, overrides):
    """`presets[preset]` with `overrides` applied (unknown names raise)."""
    if preset not in presets:
        raise ValueError(f"Unknown preset {preset!r}; known: {sorted(presets)}.")
    config = presets[preset]
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown config fields {unknown}; known: {sorted(fields)}.")
    return dataclasses.replace(config, **overrides)


def arguments_for(callback_class, config, exclude=()):
    """`{name: value}` of the fields of `config` that `callback_class`
    takes as arguments (its own and, through `**kwargs`, its bases'), but
    `exclude`: a config field named as a callback argument is that
    argument, so neither side restates the other."""
    names = set()
    for cls in callback_class.__mro__:
        if "__init__" in vars(cls):
            names.update(inspect.signature(cls.__init__).parameters)
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name in names and field.name not in exclude
    }


def _load(config, split, **kwargs):
    return kg.data.load(
        config.dataset,
        split,
        config.batch_size,
        seed=config.seed,
        validation_fraction=config.validation_fraction,
        **kwargs,
    )


def _train_split(config):
    return "train+validation" if config.decide_on == "test" else "train"


def train_data(config, start_epoch=None):
    """The run's training batches.

    With `start_epoch`, the epoch-seeded stream from that epoch on (what
    `fit` trains on, so that a resumed run sees the batches an
    uninterrupted one would; see `kg.data.load`); without, one finite,
    reshuffled epoch per iteration (for AdamInit's short trainings).
    """
    return _load(
        config,
        _train_split(config),
        take=config.take,
        subset=config.subset,
        augment=config.augmentation if config.augment else False,
        start_epoch=start_epoch,
    )


def steps_per_epoch(config):
    return kg.data.num_batches(
        config.dataset,
        _train_split(config),
        config.batch_size,
        seed=config.seed,
        validation_fraction=config.validation_fraction,
        take=config.take,
        subset=config.subset,
    )


def load_splits(config, start_epoch=0):
    """(info, train, monitor_split, test) datasets for a run config.

    `train` is the epoch-seeded stream from `start_epoch`. The monitored
    split is the held-out validation split by default; `config.decide_on
    == "test"` monitors the test split, as the AutoGrow authors did (for
    reproducing their numbers only).
    """
    info = kg.data.info(config.dataset)
    train = train_data(config, start_epoch)
    monitored = _load(config, "test" if config.decide_on == "test" else "validation")
    test = _load(config, "test")
    return info, train, monitored, test


def spec_for(info, notation, **kwargs):
    """The spec `notation` for a data set's shape, classes and statistics
    (`info`, a `kg.data.DatasetInfo`); `kwargs` go to `kg.specs.parse`."""
    return kg.specs.parse(
        notation,
        info.input_shape,
        info.num_classes,
        input_mean=info.mean,
        input_std=info.std,
        **kwargs,
    )


def paper_settings(preset, config_class):
    """The fields of `config_class` a library preset
    (`kg.callbacks.presets`) sets: its callback arguments and its fit
    settings (`epochs` as `max_epochs` where the config caps fit so)."""
    preset = kg.callbacks.presets.get(preset)
    fields = {f.name for f in dataclasses.fields(config_class)}
    fit = dict(preset.fit)
    if "epochs" not in fields and "max_epochs" in fields:
        fit["max_epochs"] = fit.pop("epochs")
    settings = {**preset.arguments, **fit}
    return {k: v for k, v in settings.items() if k in fields}


def make_spec(config, info, notation):
    extra = {"widths": tuple(config.widths)} if config.widths else {}
    # AdamW decays the weights itself; SGD's decay is the spec's L2 terms.
    decay = config.weight_decay if config.optimizer == "sgd" else 0.0
    return spec_for(info, notation, weight_decay=decay, **extra)


OPTIMIZERS = ("sgd", "adamw")


def make_optimizer(config, learning_rate=None):
    """The config's optimizer at `learning_rate` (a rate or a schedule;
    the config's rate by default)."""
    rate = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    raise ValueError(
        f"`optimizer` must be one of {OPTIMIZERS}; received {config.optimizer!r}."
    )


def step_schedule(learning_rate, epochs):
    """A callback setting the rate 10x lower at half and again at three
    quarters of `epochs` (a fixed net's schedule in the studies)."""

    def rate(epoch, _):
        t = epoch / epochs
        return learning_rate * 0.1 ** ((t >= 0.5) + (t >= 0.75))

    return keras.callbacks.LearningRateScheduler(rate)


def compile_model(model, config, learning_rate=None):
    model.compile(
        optimizer=make_optimizer(config, learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )
    return model


def check_decide_on(value):
    if value not in ("validation", "test"):
        raise ValueError(
            f"`decide_on` must be 'validation' or 'test'; received {value!r}."
        )


def save_outcome(model, workdir, export):
    """Writes growth_log.json, found_spec.json, model.keras, serving/."""
    workdir_lib.write_json(os.path.join(workdir, "growth_log.json"), model.growth_log)
    workdir_lib.write_json(
        os.path.join(workdir, "found_spec.json"),
        {"notation": model.spec.notation, "spec": model.spec.to_dict()},
    )
    model.save(os.path.join(workdir, "model.keras"))
    if export:
        model.export_serving(os.path.join(workdir, "serving"), overwrite=True)


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """A compiled model and its data, ready to fit (or to resume: `train`
    starts at `start_epoch`, the epochs the work dir's checkpoint has)."""

    model: kg.GrowableModel
    train: object
    monitored: object
    test: object
    workdir: str
    steps_per_epoch: int
    start_epoch: int
    backup_dir: str

    @property
    def history_path(self):
        return os.path.join(self.workdir, "history.csv")


def backup_dir(workdir):
    """Where a run in `workdir` keeps its checkpoints."""
    return os.path.join(workdir, "backup")


def worker_workdir(workdir, strategy=None):
    """Where this process writes its results: `workdir` itself, or, on a
    worker other than the chief under several workers, its own
    `workdir/.worker<index>` (the workers hold the same model; only the
    chief's copy is the run's)."""
    if strategy is None or kg.multi_worker.is_chief(strategy):
        return workdir
    return os.path.join(workdir, f".worker{strategy.cluster_resolver.task_id}")


def start(config, workdir, notation, strategy=None):
    """Validates, writes config.json, seeds, loads data, builds and compiles.

    A work dir with checkpoints (a run that was interrupted) is resumed:
    its config must be the same, and the training data starts at the
    epoch the newest good checkpoint completed (`fit_and_evaluate`
    restores the rest).

    With a `strategy`, the model is built and compiled in its scope; under
    `MultiWorkerMirroredStrategy` every worker reads the chief's
    checkpoints in `workdir/backup` (shared storage) and writes its other
    files into `worker_workdir(workdir, strategy)`.
    """
    check_decide_on(config.decide_on)
    backup = backup_dir(workdir)
    start_epoch = kg.callbacks.BackupAndRestore.epochs_done(backup)
    own_dir = worker_workdir(workdir, strategy)
    if start_epoch:
        workdir_lib.check_config(workdir, config)
    workdir_lib.prepare(own_dir, config)
    keras.utils.set_random_seed(config.seed)
    info, train, monitored, test = load_splits(config, start_epoch)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = kg.GrowableModel(make_spec(config, info, notation))
        compile_model(model, config)
    return RunSetup(
        model,
        train,
        monitored,
        test,
        own_dir,
        steps_per_epoch=steps_per_epoch(config),
        start_epoch=start_epoch,
        backup_dir=backup,
    )


def fit_and_evaluate(setup, epochs, callbacks):
    """Fits with checkpoints, a progress line and history.csv, then
    evaluates on test.

    Every epoch is checkpointed into the work dir (`BackupAndRestore`,
    with the state of every callback that has `get_state`): a run killed
    at any point resumes when it is started again with the same work dir.

    Returns:
        (keras History of the whole run, test accuracy, wall seconds of
        this process's fit + evaluate).
    """
    backup = kg.callbacks.BackupAndRestore(
        setup.backup_dir,
        [c for c in callbacks if hasattr(c, "get_state")],
        delete_checkpoint=False,
    )
    all_callbacks = [
        backup,
        EpochLine(epochs),
        HistoryFile(setup.history_path, backup),
        *callbacks,
    ]
    begin = time.perf_counter()
    history = setup.model.fit(
        setup.train,
        steps_per_epoch=setup.steps_per_epoch,
        validation_data=setup.monitored,
        epochs=epochs,
        callbacks=all_callbacks,
        verbose=0,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    _, test_accuracy = setup.model.evaluate(setup.test, verbose=0)
    return history, float(test_accuracy), time.perf_counter() - begin
