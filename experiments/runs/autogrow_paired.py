"""AutoGrow's paired study: its settings side by side, and the fixed nets a
user would train instead.

Per seed every AutoGrow arm starts from the same initial net (the seed
checkpoint: `Basic3ResNet-1-1-1` with its initial weights) and sees the
same batches (`experiments.runs.branching`); the arms differ in one
setting each: the block initialiser (R1: gaussian >= uniform >=
zero/adam), periodic against convergent growth (R2). Beside them, a grid
of fixed depths d-d-d trained from scratch with a step schedule for
`grid_epochs` each, and the net the reference arm found, trained the same
way (R4: found net >= the same net from scratch - 0.2 points).
"""

import dataclasses
import statistics

import keras

from experiments.runs import autogrow as autogrow_runs
from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import stats
from experiments.runs import training
from experiments.runs.study import mean_std

REFERENCE = "gaussian"
# Each AutoGrow arm: the config fields it changes.
AUTOGROW_ARMS = {
    "gaussian": {"initializer": "gaussian"},
    "uniform": {"initializer": "uniform"},
    "zero": {"initializer": "zero"},
    "adam": {"initializer": "adam"},
    "convergent": {
        "initializer": "gaussian",
        "policy": "convergent",
        "growth_period": 2,
        "convergence_patience": 2,
    },
}
FOUND = "found_net_scratch"


@dataclasses.dataclass(frozen=True)
class AutoGrowPairedConfig(autogrow_runs.AutoGrowConfig):
    """An `AutoGrowConfig` (the arms' shared settings) and the fixed grid:
    `grid_depths` (d of Basic3ResNet-d-d-d), `grid_epochs` each, learning
    rate x0.1 at 1/2 and 3/4."""

    grid_depths: tuple = (1, 2, 3, 5)
    grid_epochs: int = 20


PRESETS = {
    # Stages 4/8/16 wide on 10,000 Fashion-MNIST images (3,000 held out for
    # the decisions), a growth boundary every epoch, tau = 0.5 points over
    # J = 3 epochs, at most 4 blocks per stage, 6 epochs of fine-tuning;
    # the grid d-d-d for d = 1..4, 15 epochs each. (A pilot with 8 blocks per
    # stage and 6,000 held out grew to 8-5-5 in 22 epochs and 33 minutes on
    # a shared 2-core machine: too long for 5 seeds x 9 arms.)
    "fmnist": AutoGrowPairedConfig(
        dataset="fashion_mnist",
        take=10000,
        validation_fraction=0.05,
        augment=False,
        widths=(4, 8, 16),
        learning_rate=0.05,
        growth_period=1,
        patience=3,
        min_delta=0.005,
        fine_tune_epochs=6,
        max_epochs=30,
        max_depths=(4, 4, 4),
        adam_init_max_epochs=2,
        grid_depths=(1, 2, 3, 4),
        grid_epochs=15,
        export=False,
    ),
}


def resolve(preset, **overrides):
    return training.resolve_preset(PRESETS, preset, overrides)


def arms(config):
    """Every arm name, AutoGrow's first (the found net needs the reference)."""
    grid = tuple(f"fixed_{d}" for d in config.grid_depths)
    return tuple(AUTOGROW_ARMS) + (FOUND,) + grid


def grow(config, arm, workdir):
    """An AutoGrow arm from the seed's initial net."""
    seed = branching.seed_phase(config, workdir, config.initial, 0)
    arm_config = dataclasses.replace(config, **AUTOGROW_ARMS[arm])
    keras.utils.set_random_seed(config.seed + 1)
    model = branching.load_seed(workdir, config.seed)
    autogrow = autogrow_runs.make_callback(arm_config, verbose=0)
    val, seconds = branching.fit_epochs(
        model, arm_config, 0, config.max_epochs, [autogrow]
    )
    extra = {
        "growths": sum(e["kind"] == "grow" for e in model.growth_log),
        "finished": autogrow.phase == "done",
        "seconds_seed": seed["seconds"],
    }
    return branching.result(model, config, arm, val, seconds, extra)


def _step_schedule(config):
    def rate(epoch, _):
        t = epoch / config.grid_epochs
        return config.learning_rate * 0.1 ** ((t >= 0.5) + (t >= 0.75))

    return keras.callbacks.LearningRateScheduler(rate)


def fixed(config, arm, workdir):
    """A fixed net from scratch: `fixed_<d>` or the reference's found net."""
    if arm == FOUND:
        notation = branching.read(workdir, config.seed, REFERENCE)["found"]
    else:
        d = int(arm.removeprefix("fixed_"))
        notation = f"Basic3ResNet-{d}-{d}-{d}"
    keras.utils.set_random_seed(config.seed)
    model = branching.new_model(config, notation)
    val, seconds = branching.fit_epochs(
        model, config, 0, config.grid_epochs, [_step_schedule(config)]
    )
    return branching.result(model, config, arm, val, seconds)


def run_seed(config, workdir, log=print):
    """Runs every arm of `config.seed` that has no result yet."""

    def runner(config, arm, workdir):
        return (grow if arm in AUTOGROW_ARMS else fixed)(config, arm, workdir)

    branching.run_arms(config, workdir, arms(config), runner, log)


def _accuracy(rows):
    return [r["test_accuracy"] for r in rows]


def claims(results):
    """`{claim: (verdict, text)}` for R1, R2 and R4 (accuracy points)."""
    meaningful = branching_report.MEANINGFUL_POINTS / 100
    out = {}
    r1 = {
        f"{a} − {b}": stats.paired_difference(
            _accuracy(results[a]), _accuracy(results[b])
        )
        for a, b in (("gaussian", "uniform"), ("uniform", "zero"), ("uniform", "adam"))
    }
    verdicts = {branching_report.verdict(i, meaningful) for i in r1.values()}
    out["R1 gaussian >= uniform >= zero/adam"] = (
        _combine(verdicts),
        "; ".join(f"{k}: {i.format(100, 2)}" for k, i in r1.items()),
    )
    depth = stats.paired_difference(
        [sum(r["depths"]) for r in results["gaussian"]],
        [sum(r["depths"]) for r in results["convergent"]],
    )
    accuracy = stats.paired_difference(
        _accuracy(results["gaussian"]), _accuracy(results["convergent"])
    )
    out["R2 small K grows deeper and more accurate than convergent"] = (
        _combine(
            {
                branching_report.verdict(accuracy, meaningful),
                branching_report.verdict(depth, 1.0),  # at least a block
            }
        ),
        f"blocks periodic − convergent: {depth.format(1, 1)}; "
        f"accuracy: {accuracy.format(100, 2)}",
    )
    # R4: found >= scratch - 0.2 points, i.e. found - scratch + 0.2 > 0.
    found = stats.paired_difference(
        [a + 0.002 for a in _accuracy(results[REFERENCE])], _accuracy(results[FOUND])
    )
    out["R4 found net >= the same net from scratch − 0.2"] = (
        branching_report.verdict(found, meaningful),
        f"found − scratch + 0.2: {found.format(100, 2)}",
    )
    return out


def _combine(verdicts):
    """All parts reproduced: reproduced; any not reproduced: not reproduced."""
    if verdicts == {"reproduced"}:
        return "reproduced"
    if "not reproduced" in verdicts:
        return "not reproduced"
    return "inconclusive"


def grid_lines(results, config):
    """AutoGrow against the grid: best fixed net, and cost."""
    grid = [f"fixed_{d}" for d in config.grid_depths]
    best = max(grid, key=lambda a: statistics.fmean(_accuracy(results[a])))
    diff = stats.paired_difference(
        _accuracy(results[REFERENCE]), _accuracy(results[best])
    )
    grid_cost = sum(statistics.fmean(r["seconds"] for r in results[a]) for a in grid)
    ours = statistics.fmean(r["seconds"] for r in results[REFERENCE])
    return [
        f"- The grid's best net is {best} ({config.grid_epochs} epochs); "
        f"AutoGrow ({REFERENCE}) − it: {diff.format(100, 2)} accuracy points.",
        f"- AutoGrow's wall time is {ours / grid_cost:.2f}x the whole grid's "
        f"({ours:.0f} s against {grid_cost:.0f} s).",
    ]


def report(results, seeds, config, command):
    """The Markdown section for docs/results/autogrow.md."""
    epochs = [r["epochs"] for r in results[REFERENCE]]
    lines = [
        f"Seeds {', '.join(str(s) for s in seeds)} (n = {len(seeds)}); "
        f"{config.initial} with stages {config.widths}, {config.take} training "
        f"images of {config.dataset}, the whole test set; K = "
        f"{config.growth_period}, J = {config.patience}, tau = "
        f"{100 * config.min_delta:g} points, {config.fine_tune_epochs} fine-tune "
        f"epochs; AutoGrow ran {mean_std(epochs, digits=1)} epochs.",
        "",
        branching_report.arm_table(results, REFERENCE),
        "",
    ]
    for claim, (verdict, text) in claims(results).items():
        lines.append(f"- **{claim}: {verdict}** ({text}; 95% CI).")
    lines += grid_lines(results, config)
    lines += ["", f"```sh\n{command}\n```"]
    return "\n".join(lines)
