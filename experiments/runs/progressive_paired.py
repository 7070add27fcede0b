"""Progressive training against the target trained from scratch, paired
by seed (issue 31; ../shared/DESIGN.md section 6).

Arms of one seed see the same epoch-seeded batches; every arm's learning
rate decays fully to 0 over its own budget (`schedule`: cosine, or
warm-up-stable-decay with its constant phase first):

- `target`: the target from scratch for the whole budget (the fair
  baseline: same compute schedule, fully decayed);
- `target_0.75`, `target_0.5`: the same at 0.75x and 0.5x of the budget;
- `progressive`: the start net grown into the target by
  `kg.callbacks.ProgressiveGrowth`, under the target's schedule;
  `progressive_fresh`: the same with fresh units instead of duplicates;
- `start`: the start net alone for the whole budget.

Each arm records, per epoch, its validation accuracy, wall seconds and
training FLOPs; the report gives the time (seconds and FLOPs) each arm
takes to reach the target's final validation accuracy less 0.2 points,
the ratio to the target's own, and test accuracy and NLL at the end, each
paired with a 95% interval, and a verdict per task.
"""

import dataclasses
import time

import keras
import numpy as np

import keras_grow as kg
from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import stats
from experiments.runs import training
from experiments.runs import transformers
from experiments.runs.study import mean_std
from keras_grow.specs.base import round_half_up

ARMS = (
    "target",
    "target_0.75",
    "target_0.5",
    "progressive",
    "progressive_fresh",
    "start",
)
# Progressive arms: the config's operators, or fresh units instead of
# duplicates (duplicates start identical to their parents and may stay so).
PROGRESSIVE = {"progressive": {}, "progressive_fresh": {"width": "fresh"}}
# The accuracy the time is measured to: the target's final, less this.
TOLERANCE = 0.002
# The goal (issue 31): the target's accuracy in at most this fraction of
# its time, with the interval of the ratio below 1.
GOAL_RATIO = 0.7


@dataclasses.dataclass(frozen=True)
class ProgressiveConfig(training.RunConfig):
    """A paired progressive study (written to config.json).

    The shared fields are `training.RunConfig`'s; `learning_rate` is the
    peak of every arm's cosine decay. `target`: the net wanted (notation,
    with `widths`), or `ViT-<width>-<heads>-<layers>` for the ViT of
    `experiments.runs.transformers` grown by blocks. The start is
    `target.scaled(start_width, start_depth)` (a ViT's start is built at
    that size and the target is the start scaled back up, so that its
    repeated layers are the copies growth makes). `epochs`: the full
    budget. `schedule`: `"cosine"` (decay to 0 over each arm's budget) or
    `"wsd"` (`kg.schedules.WarmupStableDecay`: constant, then linear to
    0 over the last fifth of each arm's budget; a progressive arm's rate
    warms up again over `rewarmup_steps` after each growth). The rest are
    `ProgressiveGrowth`'s.
    """

    target: str = "Basic3ResNet-3-3-3"
    start_width: float = 0.5
    start_depth: float = 1 / 3
    epochs: int = 15
    growth_factor: float = 2.0
    reach_target_at: float = 0.5
    depth: str = "identity"
    width: str = "duplicate"
    noise: float = 0.01
    schedule: str = "cosine"
    rewarmup_steps: int = 0
    export: bool = False


PRESETS = {
    # A CNN at a realistic width on 20,000 Fashion-MNIST images.
    "fmnist_cnn": ProgressiveConfig(
        dataset="fashion_mnist",
        take=20000,
        widths=(16, 32, 64),
        target="Basic3ResNet-3-3-3",
        epochs=15,
        learning_rate=0.1,
        augment=False,
    ),
    # An MLP on the same images.
    "fmnist_mlp": ProgressiveConfig(
        dataset="fashion_mnist",
        take=20000,
        target="MLP-512-512",
        start_width=0.25,
        start_depth=0.5,
        epochs=20,
        learning_rate=0.05,
        weight_decay=0.0,
        augment=False,
    ),
    # A ViT (7x7 patches, 16 tokens, key_dim 8) on the same images, with
    # AdamW; its layers grow by stacking copies (G_stack).
    "fmnist_vit": ProgressiveConfig(
        dataset="fashion_mnist",
        take=20000,
        target="ViT-64-8-4",
        start_width=0.5,
        start_depth=0.5,
        epochs=15,
        optimizer="adamw",
        learning_rate=1e-3,
        weight_decay=0.05,
        depth="stack",
        augment=False,
    ),
    # Seconds: the smoke tests.
    "fmnist_tiny": ProgressiveConfig(
        take=256,
        target="MLP-32-32",
        start_width=0.25,
        start_depth=0.5,
        epochs=4,
        batch_size=64,
        learning_rate=0.05,
        augment=False,
    ),
}


# The ViT task's smoke test: its settings on the embedded sample, tiny.
PRESETS["fmnist_tiny_vit"] = dataclasses.replace(
    PRESETS["fmnist_vit"],
    dataset="fashion_mnist_sample",
    take=256,
    target="ViT-16-2-2",
    epochs=4,
    batch_size=64,
)


def resolve(preset, **overrides):
    """The preset's config with `overrides` (unknown fields raise)."""
    return training.resolve_preset(PRESETS, preset, overrides)


def specs_of(config):
    """(start spec, target spec) of `config`."""
    if config.target.startswith("ViT-"):
        return _vit_specs(config)
    info = kg.data.info(config.dataset)
    target = training.make_spec(config, info, config.target)
    return target.scaled(width=config.start_width, depth=config.start_depth), target


def _vit_specs(config):
    try:
        width, heads, layers = (int(n) for n in config.target.split("-")[1:])
    except ValueError:
        raise ValueError(
            f"A ViT target reads ViT-<width>-<heads>-<layers>; received "
            f"{config.target!r}."
        ) from None
    info = kg.data.info(config.dataset)
    user = transformers.vit(
        max(1, round_half_up(width * config.start_width)),
        max(1, round_half_up(heads * config.start_width)),
        max(1, round_half_up(layers * config.start_depth)),
        num_classes=info.num_classes,
    )
    start = kg.GrowableModel.from_keras(user, depth="blocks").spec
    target = start.scaled(width=1 / config.start_width, depth=1 / config.start_depth)
    if target.depths != (layers,) or target.widths[0] != width:
        raise ValueError(
            f"{config.target} scaled by {config.start_width} (width) and "
            f"{config.start_depth} (depth) does not scale back to itself; "
            "pick factors that divide its width, heads and layers."
        )
    return start, target


def budget(config, arm):
    """Epochs of `arm`: the whole budget, or its stated fraction."""
    if arm.startswith("target_"):
        return max(1, round(config.epochs * float(arm.split("_")[1])))
    return config.epochs


# --- costs ---------------------------------------------------------------------


def forward_macs(body):
    """int. Multiply-accumulates of one example's forward pass through the
    Conv2D, DepthwiseConv2D, Dense and MultiHeadAttention layers of `body`
    (the rest is small beside them)."""
    total = 0
    for layer in body.layers:
        if not layer.weights:
            continue
        kernel = layer.weights[0].shape
        out = layer.output.shape[1:-1]  # the spatial positions, if any
        positions = int(np.prod(out)) if len(out) else 1
        if isinstance(layer, keras.layers.MultiHeadAttention):
            total += _attention_macs(layer, positions)
        elif isinstance(
            layer,
            (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense),
        ):
            total += positions * int(np.prod(kernel))
    return total


def _attention_macs(layer, positions):
    """Self-attention over `positions` tokens: the query, key, value and
    output projections, then each head's scores and weighted sum."""
    width, heads, key_dim = layer.query_dense.kernel.shape
    projections = 4 * positions * width * heads * key_dim
    return projections + 2 * positions * positions * heads * key_dim


class EpochCosts(keras.callbacks.Callback):
    """Per epoch: wall seconds (growth and validation included) and
    training FLOPs (6 x MACs per example: forward and twice that back).
    Put it first, so that a growth at an epoch's start is timed."""

    def __init__(self, examples):
        super().__init__()
        self.examples = examples
        self.seconds, self.flops = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.flops.append(6 * forward_macs(self.model.body) * self.examples)


# --- one arm -----------------------------------------------------------------


def run_arm(config, arm, workdir):
    """Trains `arm` of `config.seed` from its own seeded start."""
    start_spec, target_spec = specs_of(config)
    epochs = budget(config, arm)
    steps = training.steps_per_epoch(config)
    keras.utils.set_random_seed(config.seed)
    model = kg.GrowableModel(target_spec if arm.startswith("target") else start_spec)
    costs = EpochCosts(steps * config.batch_size)
    callbacks, growth_steps = [costs], ()
    if arm in PROGRESSIVE:
        grows = dataclasses.replace(config, **PROGRESSIVE[arm])
        arguments = training.arguments_for(
            kg.callbacks.ProgressiveGrowth, grows, exclude=("target",)
        )
        grow = kg.callbacks.ProgressiveGrowth(target_spec, **arguments, verbose=0)
        growth_steps = grow.make_plan(start_spec, epochs).growth_steps(steps)
        callbacks.append(grow)
    schedule = learning_rate_schedule(config, epochs * steps, growth_steps)
    training.compile_model(model, config, learning_rate=schedule)
    val, seconds = branching.fit_epochs(model, config, 0, epochs, callbacks)
    return branching.result(
        model,
        config,
        arm,
        val,
        seconds,
        {"epoch_seconds": costs.seconds, "epoch_flops": costs.flops},
    )


def learning_rate_schedule(config, total_steps, growth_steps=()):
    """An arm's rate over its `total_steps`: `config.schedule`'s, from
    `config.learning_rate` to 0, re-warmed after `growth_steps`."""
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=total_steps
        )
    if config.schedule == "wsd":
        return kg.schedules.WarmupStableDecay(
            config.learning_rate,
            total_steps,
            rewarmup_at=growth_steps if config.rewarmup_steps else (),
            rewarmup_steps=config.rewarmup_steps,
        )
    raise ValueError(f"Unknown schedule {config.schedule!r}; known: 'cosine', 'wsd'.")


def _schedule_words(config):
    """The report's sentence on the arms' learning rates."""
    if config.schedule == "cosine":
        return (
            f"every arm's rate decays by cosine from {config.learning_rate} "
            "to 0 over its own budget"
        )
    rewarm = (
        f", re-warmed over {config.rewarmup_steps} "
        f"step{'s' if config.rewarmup_steps != 1 else ''} after each growth"
        if config.rewarmup_steps
        else ""
    )
    return (
        f"every arm's rate stays at {config.learning_rate}, then falls "
        f"linearly to 0 over the last fifth of its own budget (WSD){rewarm}"
    )


def warm_up(config):
    """A few untimed steps of the start net, so that the first arm's time
    holds no more of TensorFlow's start-up than the others'."""
    start_spec, _ = specs_of(config)
    model = training.compile_model(kg.GrowableModel(start_spec), config)
    _, train, monitored, _ = training.load_splits(config)
    model.fit(train, steps_per_epoch=2, validation_data=monitored.take(1), verbose=0)


def check_arms(arms):
    """The arms to run, in `ARMS` order, `target` first (every measure is
    relative to it).

    Raises:
        ValueError: naming an unknown arm.
    """
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise ValueError(f"Unknown arms {unknown}; the arms are {list(ARMS)}.")
    return tuple(arm for arm in ARMS if arm in set(arms) | {"target"})


def run_seed(config, workdir, arms=ARMS, log=print):
    """Runs the arms of `config.seed` not run yet, after a `warm_up`."""
    if any(branching.read(workdir, config.seed, arm) is None for arm in arms):
        warm_up(config)
    branching.run_arms(config, workdir, arms, run_arm, log)


# --- the report ----------------------------------------------------------------


def time_to_reach(row, threshold):
    """(wall seconds, FLOPs) until the first epoch whose validation
    accuracy reaches `threshold`, or `None` if none does."""
    for epoch, accuracy in enumerate(row["val_accuracy"]):
        if accuracy >= threshold:
            return (
                sum(row["epoch_seconds"][: epoch + 1]),
                sum(row["epoch_flops"][: epoch + 1]),
            )
    return None


def reach_table(results):
    """Markdown: per arm, the time to the target's final validation
    accuracy less 0.2 points, and its ratio to the target's own."""
    reference = results["target"]
    thresholds = [ref["val_accuracy"][-1] - TOLERANCE for ref in reference]
    own = [time_to_reach(ref, t) for ref, t in zip(reference, thresholds)]
    lines = [
        "| arm | reached (seeds) | wall (s) | FLOPs (1e12) | wall / target's "
        "(95% CI) | FLOPs / target's (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    ratios = {}
    for arm, rows in results.items():
        times = [time_to_reach(r, t) for r, t in zip(rows, thresholds)]
        pairs = [(t, o) for t, o in zip(times, own) if t is not None]
        if not pairs:
            lines.append(f"| {arm} | 0 of {len(rows)} | | | | |")
            continue
        wall = stats.interval([t[0] / o[0] for t, o in pairs])
        flops = stats.interval([t[1] / o[1] for t, o in pairs])
        ratios[arm] = (wall, flops, len(pairs), len(rows))
        lines.append(
            f"| {arm} | {len(pairs)} of {len(rows)} | "
            f"{mean_std([t[0] for t, _ in pairs], digits=0)} | "
            f"{mean_std([t[1] / 1e12 for t, _ in pairs], digits=2)} | "
            f"{_ratio(wall)} | {_ratio(flops)} |"
        )
    return "\n".join(lines), ratios


def _ratio(interval):
    if interval.n < 2:
        return f"{interval.mean:.2f} (n = 1)"
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def verdict(ratios, results, arm="progressive"):
    """One sentence: does progressive growth (`arm`) reach the target's
    accuracy in at most 0.7x its time, surely below 1x, and end within 0.2
    points of it at equal budget?"""
    rows, reference = results[arm], results["target"]
    accuracy = stats.paired_difference(
        [r["test_accuracy"] for r in rows], [r["test_accuracy"] for r in reference]
    )
    end = f"test accuracy at equal budget {accuracy.format(100, 2)} points"
    if arm not in ratios:
        return f"Never reached the target's accuracy; {end}."
    wall, _, reached, seeds = ratios[arm]
    sooner = reached == seeds and wall.n >= 2 and wall.high < 1.0
    level = accuracy.n >= 2 and accuracy.low > -TOLERANCE
    if reached < seeds:
        head = (
            f"Not shown to pay: it reached the target's accuracy in {reached} of "
            f"{seeds} seeds only"
        )
    elif sooner and wall.mean <= GOAL_RATIO and level:
        head = "Pays: the target's accuracy sooner"
    elif sooner:
        head = "Sooner, but short of the goal (0.7x and level at the end)"
    else:
        head = "Not shown to pay: no sooner than the target from scratch"
    return f"{head}: wall ratio {_ratio(wall)} in {reached} of {seeds} seeds; {end}."


def report(results, seeds, config, command):
    """The Markdown report of finished seeds."""
    start, target = specs_of(config)
    reach, ratios = reach_table(results)
    budgets = ", ".join(f"{arm} {budget(config, arm)}" for arm in results)
    return "\n".join(
        [
            f"# Progressive training: {start.notation} -> {target.notation}",
            "",
            f"Rerun: `{command}`",
            "",
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); "
            f"{config.dataset}, {config.take or 'all'} training images; epochs per "
            f"arm: {budgets}; {_schedule_words(config)}. Growth: "
            f"factor {config.growth_factor}, target reached at "
            f"{config.reach_target_at:.0%} of the epochs, depth `{config.depth}`, "
            f"width `{config.width}`.",
            "",
            "## Time to the target's accuracy",
            "",
            f"Until the first epoch whose validation accuracy is at least the "
            f"target's final less {100 * TOLERANCE:.1f} points (same seed).",
            "",
            reach,
            "",
            "## At the end",
            "",
            branching_report.arm_table(results, "target"),
            "",
            "## Verdict",
            "",
            *[
                f"- `{arm}`: {verdict(ratios, results, arm)}"
                for arm in PROGRESSIVE
                if arm in results
            ],
        ]
    )
