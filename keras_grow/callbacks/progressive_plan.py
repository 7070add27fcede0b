"""What progressive training does, as data: when it grows, into which
spec, and how each grown block and unit starts.

`ProgressivePlan` is made once at `fit` start from the model's spec, the
target and the number of epochs; it prints, compares and round-trips
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


@dataclasses.dataclass(frozen=True)
class ProgressivePlan:
    """The growths of a progressive run.

    Args:
        start: the spec training starts from.
        target: the spec it ends in.
        epochs: tuple of int. The 0-based epoch at whose start each growth
            happens, increasing.
        specs: tuple of specs. The net after each growth; the last is
            `target`.
    """

    start: object
    target: object
    epochs: tuple
    specs: tuple

    def __post_init__(self):
        if len(self.epochs) != len(self.specs):
            raise ValueError("A plan needs one epoch per grown spec.")
        if self.specs and self.specs[-1] != self.target:
            raise ValueError("A plan's last spec must be its target.")

    def spec_before(self, index):
        """The spec growth `index` starts from."""
        return self.start if index == 0 else self.specs[index - 1]

    def spec_at(self, epoch):
        """The spec the plan trains in `epoch` (0-based)."""
        grown = [s for e, s in zip(self.epochs, self.specs) if e <= epoch]
        return grown[-1] if grown else self.start

    def to_dict(self):
        return {
            "start": self.start.to_dict(),
            "target": self.target.to_dict(),
            "epochs": list(self.epochs),
            "specs": [s.to_dict() for s in self.specs],
        }

    @classmethod
    def from_dict(cls, config):
        return cls(
            start=specs.from_dict(config["start"]),
            target=specs.from_dict(config["target"]),
            epochs=tuple(config["epochs"]),
            specs=tuple(specs.from_dict(s) for s in config["specs"]),
        )

    def __str__(self):
        lines = [f"Progressive plan: {self.start.notation} -> {self.target.notation}"]
        for index, (epoch, spec) in enumerate(zip(self.epochs, self.specs)):
            lines.append(
                f"  Epoch {epoch + 1}: {self.spec_before(index).notation} -> "
                f"{spec.notation}"
            )
        return "\n".join(lines)


def growth_epochs(count, epochs, reach_target_at):
    """The 0-based epochs of `count` growths spread evenly over the first
    `reach_target_at` of `epochs`, the last at the fraction itself.

    Raises:
        ValueError: if `epochs` cannot hold `count` growths before the
            last epoch.
    """
    if count > epochs - 1:
        raise ValueError(
            f"Growing into the target takes {count} growths, each at the start "
            f"of an epoch after the first and before the last: fit(epochs="
            f"{epochs}) is too short. Train for at least {count + 1} epochs, or "
            f"raise `growth_factor`."
        )
    points = []
    for i in range(1, count + 1):
        epoch = round_half_up(reach_target_at * epochs * i / count)
        low = points[-1] + 1 if points else 1
        high = epochs - 1 - (count - i)
        points.append(min(max(epoch, low), high))
    return tuple(points)


def make_plan(start, target, epochs, growth_factor=2.0, reach_target_at=0.5, at=None):
    """The `ProgressivePlan` from `start` to `target` in `fit(epochs=...)`.

    Args:
        start, target: specs (`keras_grow.specs.progression.check_reachable`).
        epochs: int. The epochs of the run.
        growth_factor: float > 1. The most a block count or width grows by
            in one growth.
        reach_target_at: float in (0, 1]. The fraction of the epochs by
            which the target is reached.
        at: sequence of int or `None`. The 0-based epochs of the growths,
            instead of spreading them (one per growth, increasing).
    """
    grown = progression.stages(start, target, growth_factor)
    if not grown:
        raise ValueError(
            f"The model is already {target.notation}: there is nothing to grow."
        )
    if at is None:
        points = growth_epochs(len(grown), epochs, reach_target_at)
    else:
        points = tuple(int(e) for e in at)
        if len(points) != len(grown) or list(points) != sorted(set(points)):
            raise ValueError(
                f"`at` must give {len(grown)} increasing epochs, one per growth "
                f"({' -> '.join(s.notation for s in [start, *grown])}); "
                f"received {list(at)}."
            )
        if points[0] < 1 or points[-1] > epochs - 1:
            raise ValueError(
                f"`at` epochs must lie in [1, {epochs - 1}] (after the first "
                f"epoch, before the last of fit(epochs={epochs})); received "
                f"{list(at)}."
            )
    return ProgressivePlan(start, target, points, tuple(grown))


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
