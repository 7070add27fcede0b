"""Firefly's paired study: every width-growth method from one checkpoint.

Per seed, the seed net trains to the epoch before the first growth
(`experiments.runs.branching`); every arm loads that checkpoint and trains
on the same batches, so the arms of a seed differ only in how (and
whether) they grow. The fixed nets a user would train instead (the net
Firefly found, the full-width net) train from scratch for the same epochs
on the same batches.
"""

import dataclasses
import statistics

import keras

import keras_grow as kg
from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import firefly as firefly_runs
from experiments.runs import stats
from experiments.runs import training
from experiments.runs.branching_report import MEANINGFUL_POINTS
from experiments.runs.study import mean_std
from keras_grow import growth_events
from keras_grow.callbacks.width_growth import Proposal

# Branched from the seed checkpoint, in this order (random_new_counts
# follows Firefly's per-round, per-layer counts, so it comes after it).
BRANCHES = ("firefly", "random_new", "random_new_counts", "random_split", "no_growth")
# Trained from scratch on the same batches for the same epochs.
SCRATCH = ("found_net_scratch", "full_width_scratch")
ARMS = BRANCHES + SCRATCH
REFERENCE = "firefly"
# Firefly with one setting changed, branched like the others (`--arms`):
# new units' BN statistics measured after each round (Part A 7), the
# authors' periods (x0.1 at 1/2 and 3/4, fresh optimizer; Part A 8), and
# one gate value for splits and new units (before Part A 6).
VARIANTS = {
    "firefly_calibrated": {"calibrate_new_units": 4},
    "firefly_authors_periods": {"period_schedule": "step", "after_growth": "fresh"},
    "firefly_one_gate": {"split_epsilon": "epsilon"},
}
# Other ways to add units (issue 18), branched like the others: GradMax and
# TINY in closed form, GradMax at full scale, TINY adding only its
# significant units.
METHOD_ARMS = ("gradmax", "gradmax_scale_1", "tiny", "tiny_significant")
EXTRA_ARMS = tuple(VARIANTS) + METHOD_ARMS


@dataclasses.dataclass(frozen=True)
class PairedConfig(firefly_runs.FireflyConfig):
    """A `FireflyConfig` (the arms' common settings) and the full-width net."""

    full_width: str = "MLP-64-64"


PRESETS = {
    # MLP 8-8 grown 4 times by 30% on 12,000 Fashion-MNIST images; about
    # 3 minutes a seed on 2 cores.
    "mlp": PairedConfig(
        dataset="fashion_mnist",
        take=12000,
        augment=False,
        initial="MLP-8-8",
        full_width="MLP-64-64",
        batch_size=128,
        learning_rate=0.05,
        weight_decay=0.0,
        epochs=24,
        grow_every=4,
        max_rounds=4,
        delta_steps=30,
        score_batches=4,
        export=False,
    ),
    # VGG11 4 channels wide, 3 rounds on 10,000 images.
    "vgg": PairedConfig(
        dataset="fashion_mnist",
        take=10000,
        augment=False,
        initial="VGG11-4",
        full_width="VGG11-16",
        batch_size=128,
        learning_rate=0.05,
        weight_decay=5e-4,
        epochs=12,
        grow_every=3,
        max_rounds=3,
        delta_steps=30,
        score_batches=4,
        export=False,
    ),
}


def resolve(preset, **overrides):
    return training.resolve_preset(PRESETS, preset, overrides)


class RandomNewAtCounts(kg.callbacks.RandomNew):
    """RandomNew that adds, round by round, as many units to each layer as
    another run did (`counts[r]`: `{width index: units}`), so that only how
    the units are made differs."""

    method = "random_new_counts"

    def __init__(self, counts, **kwargs):
        super().__init__(**kwargs)
        self.counts = [{int(k): int(v) for k, v in c.items()} for c in counts]

    def _taken(self):
        """`{width index: units}` of this round (none after the last)."""
        return self.counts[self.rounds] if self.rounds < len(self.counts) else {}

    def _propose(self, model, rng):
        taken = self._taken()
        return Proposal([w for w, n in sorted(taken.items()) for _ in range(n)], {})

    def eta(self, spec):
        return sum(self._taken().values())


def round_counts(growth_log):
    """Per grow event, `{width index: units added}`."""
    counts = []
    for event in growth_events.growths(growth_events.read(growth_log)):
        before, after = event.details["widths_before"], event.details["widths_after"]
        counts.append(
            {i: a - b for i, (b, a) in enumerate(zip(before, after)) if a != b}
        )
    return counts


def variant_config(config, arm):
    """The config of a Firefly `VARIANTS` arm."""
    changes = {
        k: getattr(config, v) if isinstance(v, str) and hasattr(config, v) else v
        for k, v in VARIANTS[arm].items()
    }
    return dataclasses.replace(config, method="firefly", **changes)


def _callback(config, arm, workdir):
    if arm == "random_new_counts":
        firefly = branching.read(workdir, config.seed, "firefly")
        return RandomNewAtCounts(
            firefly["round_counts"],
            epsilon=config.epsilon,
            grow_every=config.grow_every,
            max_rounds=config.max_rounds,
            seed=config.seed,
            verbose=0,
            period_schedule=config.period_schedule,
            after_growth=config.after_growth,
        )
    if arm in VARIANTS:
        method = variant_config(config, arm)
    else:
        method = dataclasses.replace(config, method=arm)
    stream = training.train_data(config, start_epoch=0)
    callback = firefly_runs.make_callback(method, stream)
    callback.verbose = 0
    return callback


def branch(config, arm, workdir):
    """One arm from the seed checkpoint to the end; its result dict."""
    first = config.grow_every - 1
    seed = branching.seed_phase(config, workdir, config.initial, first)
    keras.utils.set_random_seed(config.seed + 1)
    model = branching.load_seed(workdir, config.seed)
    callbacks = [] if arm == "no_growth" else [_callback(config, arm, workdir)]
    val, seconds = branching.fit_epochs(
        model,
        config,
        first,
        config.epochs,
        callbacks,
        backup=branching.backup_dir(workdir, config.seed, arm),
    )
    rounds = growth_events.growths(model.growth_log)
    extra = {
        "round_counts": round_counts(model.growth_log),
        "chosen_split": [e["chosen_split"] for e in rounds],
        "chosen_new": [e["chosen_new"] for e in rounds],
        "seconds_growth": round(
            sum(e.get("seconds_round", 0.0) + e["seconds"] for e in rounds), 2
        ),
        "seconds_seed": seed["seconds"],
    }
    return branching.result(
        model, config, arm, seed["val_accuracy"] + val, seconds + seed["seconds"], extra
    )


def scratch(config, arm, workdir):
    """A fixed net trained from scratch on the same batches."""
    if arm == "found_net_scratch":
        notation = branching.read(workdir, config.seed, "firefly")["found"]
    else:
        notation = config.full_width
    keras.utils.set_random_seed(config.seed)
    model = branching.new_model(config, notation)
    val, seconds = branching.fit_epochs(
        model,
        config,
        0,
        config.epochs,
        [],
        backup=branching.backup_dir(workdir, config.seed, arm),
    )
    return branching.result(model, config, arm, val, seconds)


def run_seed(config, workdir, arms=ARMS, log=print):
    """Runs every arm of one seed that has no result yet."""

    def runner(config, arm, workdir):
        return (scratch if arm in SCRATCH else branch)(config, arm, workdir)

    branching.run_arms(config, workdir, arms, runner, log)


# The baseline with exactly Firefly's widths (equal parameters) decides R5;
# the others are reported beside it.
R5_BASELINE = "random_new_counts"


def r5_verdict(results):
    """R5 (Firefly beats random growth at equal parameters): the verdict and
    the interval of Firefly's accuracy minus `R5_BASELINE`'s.

    Reproduced: the interval lies above 0. Not reproduced: it rules out an
    advantage of `MEANINGFUL_POINTS` or more. Otherwise (or with fewer than
    two seeds) inconclusive (`branching_report.verdict`).
    """
    diff = stats.paired_difference(
        [r["test_accuracy"] for r in results[REFERENCE]],
        [r["test_accuracy"] for r in results[R5_BASELINE]],
    )
    return branching_report.verdict(diff, MEANINGFUL_POINTS / 100), diff


def selected_mix(results):
    """(splits, new units) Firefly chose, summed over rounds and seeds."""
    rows = results[REFERENCE]
    return (
        sum(sum(r["chosen_split"]) for r in rows),
        sum(sum(r["chosen_new"]) for r in rows),
    )


def against_fixed_nets(results):
    """Markdown lines: Firefly against the full-width net and its found net
    trained from scratch (accuracy, parameters, wall)."""
    ff = results[REFERENCE]
    lines = []
    for arm in SCRATCH:
        rows = results[arm]
        diff = stats.paired_difference(
            [r["test_accuracy"] for r in ff], [r["test_accuracy"] for r in rows]
        )
        params = statistics.fmean(r["params"] for r in ff) / statistics.fmean(
            r["params"] for r in rows
        )
        wall = statistics.fmean(r["seconds"] for r in ff) / statistics.fmean(
            r["seconds"] for r in rows
        )
        lines.append(
            f"- Firefly − {arm}: {diff.format(100, 2)} accuracy points, "
            f"{params:.2f}x the parameters, {wall:.2f}x the wall time."
        )
    return lines


# How close to the full-width net counts as reaching it (accuracy points).
REACH_POINTS = 0.5


def reach(rows, targets):
    """Per seed, `(epochs, seconds)` until an arm's validation accuracy
    first reaches that seed's target, or `None` where it never does. The
    seconds are the arm's wall time pro rata to the epochs."""
    out = []
    for row, target in zip(rows, targets):
        curve = row["val_accuracy"]
        first = next((i for i, v in enumerate(curve) if v >= target), None)
        out.append(
            None
            if first is None
            else (first + 1, row["seconds"] * (first + 1) / len(curve))
        )
    return out


def reaching_full_width(results):
    """Markdown lines: per arm, in how many seeds, after how many epochs and
    seconds, and with how many parameters its validation accuracy reached
    the full-width net's final one minus `REACH_POINTS`."""
    full = results["full_width_scratch"]
    targets = [r["val_accuracy"][-1] - REACH_POINTS / 100 for r in full]
    lines = [
        f"- Reaching the full-width net's final validation accuracy − "
        f"{REACH_POINTS} points (per seed):"
    ]
    for arm in (REFERENCE, R5_BASELINE, "found_net_scratch", "full_width_scratch"):
        reached = [x for x in reach(results[arm], targets) if x is not None]
        params = statistics.fmean(r["params"] for r in results[arm])
        if not reached:
            lines.append(
                f"  {arm}: never, in {len(targets)} seeds ({params:,.0f} params)."
            )
            continue
        lines.append(
            f"  {arm}: {len(reached)} of {len(targets)} seeds, after "
            f"{statistics.fmean(e for e, _ in reached):.1f} epochs and "
            f"{statistics.fmean(t for _, t in reached):.0f} s on average "
            f"({params:,.0f} params)."
        )
    return lines


def collect(workdir, seeds, extra_arms=()):
    """`(results, seeds, extras)` for `report`.

    `results` has every arm over the seeds that finished them all. When
    the extra arms ran on fewer seeds than the arms did (they are often
    left out of later seeds to save time), `results` holds `ARMS` over
    their seeds and `extras` is `(results, seeds)` of the reference and
    the extra arms over the seeds that ran every extra; else `extras` is
    `None`.
    """
    core, core_seeds = branching_report.collect(workdir, seeds, ARMS)
    if not extra_arms:
        return core, core_seeds, None
    every, every_seeds = branching_report.collect(
        workdir, seeds, ARMS + tuple(extra_arms)
    )
    if every_seeds == core_seeds:
        return every, every_seeds, None
    extras = branching_report.collect(workdir, seeds, (REFERENCE, *extra_arms))
    return core, core_seeds, extras


def extras_table(extras):
    """Markdown lines: the extra arms against Firefly on their own seeds."""
    results, seeds = extras
    if not seeds:
        return ["No seed has every extra arm yet: no table for them.", ""]
    return [
        f"Firefly variants and other methods on the seeds that ran them "
        f"({', '.join(str(s) for s in seeds)}; n = {len(seeds)}), paired "
        f"with Firefly on the same seeds:",
        "",
        branching_report.arm_table(results, REFERENCE),
        "",
    ]


def report(results, seeds, config, command, extras=None):
    """The Markdown section for docs/results (tables, verdict, command);
    `extras` as `collect` returns it."""
    r5, decided = r5_verdict(results)
    splits, new = selected_mix(results)
    growth = [r["seconds_growth"] for r in results[REFERENCE]]
    parts = [
        f"Seeds {', '.join(str(s) for s in seeds)} (n = {len(seeds)}); "
        f"{config.initial}, {config.take} training images of "
        f"{config.dataset}, the whole test set; {config.epochs} epochs, "
        f"growth every {config.grow_every} ({config.max_rounds} rounds of "
        f"{int(100 * config.growth_ratio)}%), branched at epoch "
        f"{config.grow_every - 1}.",
        "",
        branching_report.arm_table(results, REFERENCE),
        "",
        f"**R5 (Firefly > random growth at equal parameters): {r5}**: "
        f"Firefly − {R5_BASELINE} (the same widths every round, random new "
        f"units) {decided.format(100, 2)} accuracy points (95% CI; "
        f"'not reproduced' means the interval rules out an advantage of "
        f"{MEANINGFUL_POINTS} points).",
        "",
        *against_fixed_nets(results),
        *reaching_full_width(results),
        f"- Firefly chose {splits} splits and {new} new units over all rounds "
        f"and seeds; its rounds took {mean_std(growth, digits=1)} s per run.",
        "",
        *(extras_table(extras) if extras is not None else []),
        f"```sh\n{command}\n```",
    ]
    return "\n".join(parts)
