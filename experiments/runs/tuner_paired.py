"""What a Keras user does instead of growing to find a size: KerasTuner's
Hyperband over the same sizes, at the wall time growth took (issue 33).

Per seed, Hyperband searches `config.initial`'s stage depths (`search=
"depth"`: each stage 1 to its cap in `max_depths`, AutoGrow's space) or
its widths (`"width"`: each entry from the initial width to `max_widths`',
in `width_step`s, the span Firefly grows over) on the same data as the
growth study, with the same optimizer settings, and stops creating trials
once the seed's wall budget is spent: by default the wall time the growth
arm took on that seed (`budget_from`). The best model Hyperband trained is
then tested on the whole test set, and paired with the growth arm's
per-seed results.

KerasTuner is an optional extra (`pip install 'keras-grow[tuner]'`).
"""

import dataclasses
import json
import os
import statistics
import time

import keras

import keras_grow as kg
from experiments.runs import autogrow as autogrow_runs
from experiments.runs import branching
from experiments.runs import stats
from experiments.runs import training
from experiments.runs import workdir as workdir_lib
from experiments.runs.study import mean_std

ARM = "hyperband"


@dataclasses.dataclass(frozen=True)
class TunerConfig(autogrow_runs.AutoGrowConfig):
    """An `AutoGrowConfig` (data, net family, optimizer, `max_depths`) and
    Hyperband's settings: `search` ("depth" or "width"), `max_widths` and
    `width_step` (the width space), `tuner_max_epochs` (its `max_epochs`:
    the most a trial trains), `tuner_factor`; `tuner_step_schedule`
    (trials follow the fixed nets' step schedule over `tuner_max_epochs`:
    a trial Hyperband stops early stops before the rate falls);
    `budget_seconds` (per seed, used when no `budget_from` results give
    one)."""

    search: str = "depth"
    max_widths: tuple | None = None
    width_step: int = 8
    tuner_max_epochs: int = 16
    tuner_factor: int = 3
    tuner_step_schedule: bool = False
    budget_seconds: float = 600.0


PRESETS = {
    # AutoGrow's paired study (docs/results/autogrow.md): Basic3ResNet with
    # stages 4/8/16, 10,000 Fashion-MNIST images, depths 1 to 4 per stage,
    # trials of at most 16 epochs (AutoGrow's reference trained 16).
    "fmnist_depth": TunerConfig(
        dataset="fashion_mnist",
        take=10000,
        validation_fraction=0.05,
        widths=(4, 8, 16),
        learning_rate=0.05,
        max_depths=(4, 4, 4),
        augment=False,
        tuner_max_epochs=16,
        tuner_step_schedule=True,  # AutoGrow's and the grid's nets decay too
    ),
    # Firefly's MLP study (docs/results/firefly.md): MLP-8-8 on 12,000
    # images, widths 8 to 64 (the full-width arm's) per layer, trials of at
    # most 24 epochs (Firefly's run).
    "fmnist_mlp_width": TunerConfig(
        dataset="fashion_mnist",
        take=12000,
        initial="MLP-8-8",
        search="width",
        max_widths=(64, 64),
        width_step=8,
        learning_rate=0.05,
        weight_decay=0.0,
        augment=False,
        tuner_max_epochs=24,
    ),
    # Seconds: the smoke test.
    "fmnist_tiny": TunerConfig(
        take=256,
        batch_size=64,
        widths=(2, 4, 4),
        learning_rate=0.05,
        max_depths=(2, 1, 1),
        augment=False,
        tuner_max_epochs=2,
        budget_seconds=3600.0,
    ),
}


def resolve(preset, **overrides):
    """The preset's config with `overrides` (unknown fields raise)."""
    return training.resolve_preset(PRESETS, preset, overrides)


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise ImportError(
            "The KerasTuner comparison needs KerasTuner: pip install "
            "'keras-grow[tuner]' (or keras-tuner)."
        ) from None
    return keras_tuner


SEARCHES = ("depth", "width")


def initial_spec(config):
    return training.make_spec(config, kg.data.info(config.dataset), config.initial)


def space(config):
    """`{hyperparameter: (low, high, step)}` of the search, each a stage
    depth or a width entry of `config.initial`."""
    if config.search == "depth":
        if not config.max_depths:
            raise ValueError("The depth search needs `max_depths` (each stage's cap).")
        return {f"depth{s}": (1, cap, 1) for s, cap in enumerate(config.max_depths)}
    if config.search == "width":
        widths = initial_spec(config).widths
        if not config.max_widths or len(config.max_widths) != len(widths):
            raise ValueError(
                f"The width search needs `max_widths`, one per width entry of "
                f"{config.initial} ({len(widths)})."
            )
        return {
            f"width{i}": (low, high, config.width_step)
            for i, (low, high) in enumerate(zip(widths, config.max_widths))
        }
    raise ValueError(f"`search` must be one of {SEARCHES}; received {config.search!r}.")


def spec_for(config, values):
    """`config.initial` at the searched depths or widths `values`
    (`{hyperparameter: value}`)."""
    chosen = [values[name] for name in space(config)]
    start = initial_spec(config)
    if config.search == "depth":
        return start.with_depths(chosen)
    return start.with_widths(chosen)


def _budgeted_classes(keras_tuner):
    class BudgetedHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
        """Hyperband that creates no trial once `budget_seconds` have
        passed since its first (KerasTuner has no wall budget of its own:
        keras-team/keras-tuner#249)."""

        def __init__(self, budget_seconds, **kwargs):
            super().__init__(**kwargs)
            self.budget_seconds = budget_seconds
            self.started = None

        def populate_space(self, trial_id):
            if self.started is None:
                self.started = time.perf_counter()
            if time.perf_counter() - self.started >= self.budget_seconds:
                return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED}
            return super().populate_space(trial_id)

    class BudgetedHyperband(keras_tuner.Hyperband):
        """`keras_tuner.Hyperband` on the budgeted oracle: each trial
        trains its bracket's epochs (`tuner/epochs`), continuing from the
        weights of the trial it follows (`tuner/trial_id`). The plain
        `keras_tuner.Tuner` does neither: its trials train `fit`'s default
        single epoch, from scratch."""

        def __init__(self, oracle, **kwargs):
            # Hyperband's own __init__ makes an unbudgeted oracle.
            keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)

    return BudgetedHyperbandOracle, BudgetedHyperband


def search(config, budget_seconds, directory):
    """Runs Hyperband for `config.seed` within `budget_seconds`.

    Returns:
        (the best model, its searched values, the epochs it trained,
        trials run, search seconds).

    Raises:
        ValueError: if the budget ran out before any trial finished.
    """
    keras_tuner = _keras_tuner()
    ranges = space(config)

    def build(hp):
        values = {
            name: hp.Int(name, low, high, step=step)
            for name, (low, high, step) in ranges.items()
        }
        model = kg.GrowableModel(spec_for(config, values))
        return training.compile_model(model, config)

    oracle_class, tuner_class = _budgeted_classes(keras_tuner)
    oracle = oracle_class(
        budget_seconds,
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_epochs=config.tuner_max_epochs,
        factor=config.tuner_factor,
        hyperband_iterations=1000,  # the budget ends the search
        seed=config.seed,
    )
    tuner = tuner_class(
        oracle=oracle,
        hypermodel=build,
        directory=directory,
        project_name=f"seed{config.seed}",
        overwrite=True,
    )
    keras.utils.set_random_seed(config.seed)
    _, train, monitored, _ = training.load_splits(config)
    begin = time.perf_counter()
    schedule = training.step_schedule(config.learning_rate, config.tuner_max_epochs)
    tuner.search(
        train,
        steps_per_epoch=training.steps_per_epoch(config),
        validation_data=monitored,
        callbacks=[schedule] if config.tuner_step_schedule else [],
        verbose=0,
    )
    seconds = time.perf_counter() - begin
    finished = [
        t for t in oracle.trials.values() if t.status == "COMPLETED" and t.score
    ]
    if not finished:
        raise ValueError(
            f"No Hyperband trial finished within {budget_seconds:.0f} s; "
            "raise the budget."
        )
    (best,) = tuner.get_best_models(1)
    values = tuner.get_best_hyperparameters(1)[0].values
    searched = [values[name] for name in ranges]
    return best, searched, values["tuner/epochs"], len(finished), seconds


def budget_for(config, budget_from, arm):
    """The seed's wall budget: `arm`'s seconds on `config.seed` in the
    report JSON `budget_from`, or `config.budget_seconds` without one."""
    if not budget_from:
        return config.budget_seconds
    for row in load_rows(budget_from, arm):
        if row["seed"] == config.seed:
            return float(row["seconds"])
    raise ValueError(f"{budget_from} has no {arm!r} result for seed {config.seed}.")


def run_seed(config, workdir, budget_from=None, budget_arm="gaussian", log=print):
    """Searches `config.seed` unless its result is saved; saves it."""
    if branching.read(workdir, config.seed, ARM) is not None:
        return
    budget = budget_for(config, budget_from, budget_arm)
    model, values, epochs, trials, seconds = search(
        config, budget, os.path.join(workdir, "tuner")
    )
    record = branching.result(model, config, ARM, [], seconds)
    record.update(budget_seconds=budget, trials=trials, searched=values)
    record.update(epochs=epochs)  # the best trial's, its bracket's epochs
    os.makedirs(
        os.path.dirname(branching.path(workdir, config.seed, ARM)), exist_ok=True
    )
    workdir_lib.write_json(branching.path(workdir, config.seed, ARM), record)
    log(
        f"seed {config.seed} {ARM}: {record['found']} after {trials} trials, "
        f"test acc {100 * record['test_accuracy']:.2f}%, {seconds:.0f}s of "
        f"{budget:.0f}s"
    )


def report(tuned, grown, arm="gaussian"):
    """Markdown: Hyperband's picks against the growth arm's results, paired
    by seed (`tuned`, `grown`: per-seed result rows, same seed order)."""
    seeds = [r["seed"] for r in tuned]
    if [r["seed"] for r in grown] != seeds:
        raise ValueError("Pair the rows by seed: the seeds differ.")
    accuracy = stats.paired_difference(
        [r["test_accuracy"] for r in tuned], [r["test_accuracy"] for r in grown]
    )
    nll = stats.paired_difference(
        [r["test_nll"] for r in tuned], [r["test_nll"] for r in grown]
    )
    wall = statistics.fmean(r["seconds"] for r in tuned) / statistics.fmean(
        r["seconds"] for r in grown
    )
    lines = [
        "| arm | found per seed | params | test acc. (%) | test NLL | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in ((ARM, tuned), (arm, grown)):
        lines.append(
            f"| {name} | {', '.join(r['found'].split('-', 1)[-1] for r in rows)} "
            f"| {mean_std([r['params'] for r in rows], digits=0)} "
            f"| {mean_std([100 * r['test_accuracy'] for r in rows])} "
            f"| {mean_std([r['test_nll'] for r in rows], digits=4)} "
            f"| {mean_std([r['seconds'] for r in rows], digits=0)} |"
        )
    lines += [
        "",
        f"Seeds {', '.join(map(str, seeds))} (n = {len(seeds)}). Hyperband − "
        f"{arm}: {accuracy.format(100, 2)} accuracy points, NLL "
        f"{nll.format(1, 4)} (95% CI); Hyperband's wall time is {wall:.2f}x "
        f"{arm}'s (its budget); trials per seed: "
        f"{', '.join(str(r['trials']) for r in tuned)}.",
    ]
    return "\n".join(lines)


def load_rows(path, arm):
    """The per-seed rows of `arm` in a report JSON, by seed."""
    with open(path) as handle:
        return sorted(json.load(handle)[arm], key=lambda r: r["seed"])
