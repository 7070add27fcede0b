"""What progressive training does, as data: when it grows, into which
spec, and how each grown block and unit starts.

`ProgressivePlan` is made once at `fit` start from the model's spec, the
target and the training budget (epochs, or steps); it prints, compares and round-trips
through JSON, so a resumed run follows the plan the first run made.

References:
    Du et al., "Stacking Your Transformers: A Closer Look at Model Growth
    for Efficient LLM Pre-Training" (G_stack), NeurIPS 2024.
    Saunshi et al., "On the Inductive Bias of Stacking Towards Improving
    Reasoning" (MIDAS), NeurIPS 2024.
    Wang et al., "LEMON: Lossless model expansion", ICLR 2024.
"""

import dataclasses

import numpy as np

from keras_grow import specs
from keras_grow.specs import progression
from keras_grow.specs.base import round_half_up

# How blocks a stage gains start (see `block_sources`).
DEPTH_OPERATORS = ("identity", "stack", "interleave", "middle")
# How units a layer gains start: "duplicate" splits existing units (the
# function kept up to the symmetry-breaking noise), "fresh" adds new ones
# with zero (or `epsilon`-scaled) outgoing weights.
WIDTH_OPERATORS = ("duplicate", "fresh")
# What a plan's growth points count: fit's epochs or its optimizer steps.
UNITS = ("epoch", "step")


@dataclasses.dataclass(frozen=True)
class ProgressivePlan:
    """The growths of a progressive run.

    Args:
        start: the spec training starts from.
        target: the spec it ends in.
        at: tuple of int. The 0-based epoch (or step) at whose start each
            growth happens, increasing.
        specs: tuple of specs. The net after each growth; the last is
            `target`.
        unit: str. What `at` counts: `"epoch"` (default) or `"step"`
            (fit's steps over the whole run, from 0).
    """

    start: object
    target: object
    at: tuple
    specs: tuple
    unit: str = "epoch"

    def __post_init__(self):
        if len(self.at) != len(self.specs):
            raise ValueError(f"A plan needs one {self.unit} per grown spec.")
        if self.specs and self.specs[-1] != self.target:
            raise ValueError("A plan's last spec must be its target.")
        if self.unit not in UNITS:
            raise ValueError(f"`unit` must be one of {UNITS}; received {self.unit!r}.")

    def spec_before(self, index):
        """The spec growth `index` starts from."""
        return self.start if index == 0 else self.specs[index - 1]

    def spec_at(self, point):
        """The spec the plan trains at `point` (a 0-based epoch or step)."""
        grown = [s for e, s in zip(self.at, self.specs) if e <= point]
        return grown[-1] if grown else self.start

    def growth_steps(self, steps_per_epoch):
        """tuple of int. The optimizer steps at which the growths happen
        (e.g. `WarmupStableDecay(rewarmup_at=...)`)."""
        if self.unit == "step":
            return self.at
        return tuple(e * steps_per_epoch for e in self.at)

    def to_dict(self):
        return {
            "start": self.start.to_dict(),
            "target": self.target.to_dict(),
            "at": list(self.at),
            "unit": self.unit,
            "specs": [s.to_dict() for s in self.specs],
        }

    @classmethod
    def from_dict(cls, config):
        # Plans saved before steps were a unit list their epochs.
        at = config["at"] if "at" in config else config["epochs"]
        return cls(
            start=specs.from_dict(config["start"]),
            target=specs.from_dict(config["target"]),
            at=tuple(at),
            specs=tuple(specs.from_dict(s) for s in config["specs"]),
            unit=config.get("unit", "epoch"),
        )

    def __str__(self):
        lines = [f"Progressive plan: {self.start.notation} -> {self.target.notation}"]
        for index, (point, spec) in enumerate(zip(self.at, self.specs)):
            lines.append(
                f"  {self.unit.capitalize()} {point + 1}: "
                f"{self.spec_before(index).notation} -> {spec.notation}"
            )
        return "\n".join(lines)


def growth_points(count, total, reach_target_at, unit="epoch"):
    """The 0-based points (epochs or steps) of `count` growths spread
    evenly over the first `reach_target_at` of `total`, the last at the
    fraction itself.

    Raises:
        ValueError: if `total` cannot hold `count` growths before the
            last epoch (step).
    """
    if count > total - 1:
        budget = f"fit(epochs={total})" if unit == "epoch" else f"{total} steps"
        raise ValueError(
            f"Growing into the target takes {count} growths, each at the start "
            f"of {unit} after the first and before the last: {budget} is too "
            f"short. Train for at least {count + 1} {unit}s, or raise "
            f"`growth_factor`."
        )
    points = []
    for i in range(1, count + 1):
        point = round_half_up(reach_target_at * total * i / count)
        low = points[-1] + 1 if points else 1
        high = total - 1 - (count - i)
        points.append(min(max(point, low), high))
    return tuple(points)


def make_plan(
    start,
    target,
    total,
    growth_factor=2.0,
    reach_target_at=0.5,
    at=None,
    unit="epoch",
):
    """The `ProgressivePlan` from `start` to `target` in a run of `total`
    epochs (or steps).

    Args:
        start, target: specs (`keras_grow.specs.progression.check_reachable`).
        total: int. The epochs (steps) of the run.
        growth_factor: float > 1. The most a block count or width grows by
            in one growth.
        reach_target_at: float in (0, 1]. The fraction of the run by which
            the target is reached.
        at: sequence of int or `None`. The 0-based epochs (steps) of the
            growths, instead of spreading them (one per growth, increasing).
        unit: str. `"epoch"` or `"step"`: what `total` and `at` count.
    """
    grown = progression.stages(start, target, growth_factor)
    if not grown:
        raise ValueError(
            f"The model is already {target.notation}: there is nothing to grow."
        )
    if at is None:
        points = growth_points(len(grown), total, reach_target_at, unit)
    else:
        points = tuple(int(e) for e in at)
        if len(points) != len(grown) or list(points) != sorted(set(points)):
            raise ValueError(
                f"`at` must give {len(grown)} increasing {unit}s, one per growth "
                f"({' -> '.join(s.notation for s in [start, *grown])}); "
                f"received {list(at)}."
            )
        if points[0] < 1 or points[-1] > total - 1:
            raise ValueError(
                f"`at` {unit}s must lie in [1, {total - 1}] (after the first "
                f"{unit}, before the last of the run's {total}); received "
                f"{list(at)}."
            )
    return ProgressivePlan(start, target, points, tuple(grown), unit)


def block_sources(operator, count, new_count):
    """Which old block each block of a stage starts as, after it grows
    from `count` to `new_count` blocks.

    Returns a list of `new_count` entries: the index of the old block a
    position copies, or `None` where it starts from the block initializer.
    New blocks are named after the old ones, at the end of the stage, so a
    position below `count` that copies another block is overwritten.

    - `"identity"`: the old blocks stay, new ones start as the identity.
    - `"stack"` (G_stack): new blocks copy the old ones in order, again
      and again: the stage's stack stacked on itself.
    - `"interleave"`: every old block is followed by its copies (position
      p copies block floor(p * count / new_count)).
    - `"middle"` (MIDAS): copies of the blocks from the middle on are
      inserted in the middle; the later blocks move up.
    """
    if operator == "identity":
        return list(range(count)) + [None] * (new_count - count)
    if operator == "stack":
        return list(range(count)) + [j % count for j in range(new_count - count)]
    if operator == "interleave":
        return [p * count // new_count for p in range(new_count)]
    if operator == "middle":
        half, extra = count // 2, new_count - count
        return [
            p
            if p < half
            else half + (p - half) % (count - half)
            if p < half + extra
            else p - extra
            for p in range(new_count)
        ]
    raise ValueError(f"Unknown depth operator {operator!r}; known: {DEPTH_OPERATORS}.")


def split_units(rng, width, new_width):
    """Which units to split, op by op, to grow a group from `width` to
    `new_width` units: each op splits distinct units of the group as it
    is then (all of them, until the last op's random few)."""
    ops = []
    while width < new_width:
        take = min(width, new_width - width)
        ops.append(tuple(int(u) for u in np.sort(rng.permutation(width)[:take])))
        width += take
    return ops
