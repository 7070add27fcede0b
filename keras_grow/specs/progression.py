"""The specs between a start and a target: progressive training's stages.

Each dimension (a stage's number of blocks, a block's width) grows
geometrically from the start's value to the target's, so that every growth
multiplies it by at most `growth_factor` and the last stage is the target
exactly. A block a stage gains starts from the width of the stage's last
block in the start.
"""

import math

from keras_grow.specs.base import round_half_up


def _between(start, end, fraction):
    """int. The geometric point `fraction` of the way from `start` to
    `end`, rounded half up and kept within [start, end]."""
    value = round_half_up(start * (end / start) ** fraction)
    return min(end, max(start, value))


def _by_blocks(spec):
    """Whether `spec` is a user graph grown by repeating its blocks, whose
    dimensions it states itself (`GraphSpec.progress_pairs`, `towards`)."""
    return getattr(spec, "depth", None) == "blocks"


def _pairs(start, target):
    """(start value, target value) of every dimension: each stage's block
    count, then each target block's width against the start block it grows
    from (the stage's last for a block the start does not have)."""
    if _by_blocks(start):
        return start.progress_pairs(target)
    pairs = []
    for old, new in zip(start.stage_widths(), target.stage_widths()):
        pairs.append((len(old), len(new)))
        pairs += [(old[min(j, len(old) - 1)], w) for j, w in enumerate(new)]
    return pairs


def check_reachable(start, target):
    """Raises unless growth can take `start` to `target`: the same kind
    and fields but for depth and widths, as many stages, and no block count
    or width smaller than the start's.

    Raises:
        TypeError: for a target of another kind.
        ValueError: naming what differs or shrinks.
    """
    if type(target) is not type(start):
        raise TypeError(
            f"The target must be a {type(start).__name__} like the model's "
            f"spec ({start.notation}); received {target!r}."
        )
    old, new = start.stage_widths(), target.stage_widths()
    if len(old) != len(new):
        raise ValueError(
            f"{target.notation} has {len(new)} depth stages, the model's "
            f"{start.notation} {len(old)}."
        )
    shrinks = [(a, b) for a, b in _pairs(start, target) if b < a]
    if shrinks:
        raise ValueError(
            f"Growth cannot take {start.notation} to {target.notation}: a "
            f"block count or width would shrink ({shrinks[0][0]} -> "
            f"{shrinks[0][1]}). Give a target at least as deep and wide in "
            f"every stage and layer (e.g. `spec.scaled(width=2, depth=2)`)."
        )
    grown = interpolated(start, target, 1.0)
    if grown != target:
        others = sorted(
            name
            for name, value in target.to_dict().items()
            if grown.to_dict().get(name) != value
        )
        hint = ""
        if "nodes" in others:
            hint = (
                " A model read with from_keras names its layers as Keras did "
                "(a model built again gets dense_5 for dense_2): derive the "
                "target from the model's own spec, e.g. "
                "`model.spec.scaled(width=2)` or `model.spec.with_widths(...)`."
            )
        raise ValueError(
            f"Growth changes depth and widths only; {target.notation} differs "
            f"from {start.notation} in other fields too: {others}.{hint}"
        )


def interpolated(start, target, fraction):
    """The spec `fraction` (0 to 1) of the way from `start` to `target`,
    geometrically in every block count and width."""
    if _by_blocks(start):
        return start.towards(target, lambda a, b: _between(a, b, fraction))
    stages = []
    for old, new in zip(start.stage_widths(), target.stage_widths()):
        count = _between(len(old), len(new), fraction)
        stages.append(
            [
                _between(old[min(j, len(old) - 1)], new[j], fraction)
                for j in range(count)
            ]
        )
    return start.with_stage_widths(stages)


def check_growth_factor(growth_factor):
    """Raises a ValueError unless `growth_factor` is a number > 1."""
    if (
        isinstance(growth_factor, bool)
        or not isinstance(growth_factor, (int, float))
        or not growth_factor > 1
    ):
        raise ValueError(
            f"`growth_factor` must be a number > 1; received {growth_factor!r}."
        )


def growth_count(start, target, growth_factor):
    """int. The fewest growths that take `start` to `target` with no
    dimension growing by more than `growth_factor` in one (0 if equal)."""
    ratio = max(b / a for a, b in _pairs(start, target))
    if ratio <= 1:
        return 0
    return max(1, math.ceil(math.log(ratio) / math.log(growth_factor) - 1e-9))


def stages(start, target, growth_factor=2.0):
    """list of specs: the net after each growth, the last `target`.

    Args:
        start: the spec training starts from.
        target: the spec to end in (`check_reachable`).
        growth_factor: float > 1. The most any block count or width grows
            by in one growth. Defaults to `2.0`, the factor the
            progressive-training literature finds most reliable.
    """
    check_growth_factor(growth_factor)
    check_reachable(start, target)
    count = growth_count(start, target, growth_factor)
    return [interpolated(start, target, (i + 1) / count) for i in range(count)]
