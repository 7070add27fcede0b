"""Choosing which candidates grow: exactly eta, globally across layers.

A *slot* is one unit more for one width entry of the spec. For VGG,
MobileNetV1 and MLP every width entry has one unit group, so a slot is a
candidate. A staged net's stage width is shared by several groups (the
residual stream and each block's inner layers); one slot there adds a unit
to each of them, and its score is the sum of the groups' next-best
candidate scores.
"""

import collections

import numpy as np


def slot_order(candidates, scores):
    """Ranks every slot, best (most negative) first.

    Args:
        candidates: sequence of `Candidate`.
        scores: array of floats, one per candidate (lower is better).

    Returns:
        (order, ranked): `order` is a list of width indices, the slots best
        first; `ranked` maps each group to its candidate indices sorted best
        first (ties broken by candidate index).
    """
    scores = np.asarray(scores, np.float64)
    if scores.shape != (len(candidates),):
        raise ValueError(
            f"Expected {len(candidates)} scores, one per candidate; received "
            f"shape {scores.shape}."
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("Candidate scores must be finite; got NaN or inf.")
    by_group = collections.defaultdict(list)
    groups_of_width = collections.defaultdict(list)
    for index, c in enumerate(candidates):
        if c.group not in by_group:
            groups_of_width[c.width_index].append(c.group)
        by_group[c.group].append(index)
    ranked = {
        g: sorted(indices, key=lambda i: (scores[i], i))
        for g, indices in by_group.items()
    }
    slots = []
    for width_index, groups in groups_of_width.items():
        count = min(len(ranked[g]) for g in groups)
        for j in range(count):
            total = sum(scores[ranked[g][j]] for g in groups)
            slots.append((total, width_index, j))
    # Slot scores of one width entry never decrease with j, so taking the
    # best slots overall takes a prefix of every entry's slots.
    slots.sort()
    return [width_index for _, width_index, _ in slots], ranked


def choose(candidates, order, ranked, count):
    """The candidate indices of the best `count` slots.

    Args:
        candidates: sequence of `Candidate`.
        order, ranked: from `slot_order`.
        count: int. Number of slots, 0 <= count <= len(order).

    Returns:
        (chosen candidate indices, `{width_index: slots taken}`).
    """
    if not 0 <= count <= len(order):
        raise ValueError(
            f"Can choose between 0 and {len(order)} slots; received {count}."
        )
    taken = collections.Counter(order[:count])
    chosen = []
    for indices in ranked.values():
        width_index = candidates[indices[0]].width_index
        chosen += indices[: taken.get(width_index, 0)]
    return sorted(chosen), dict(taken)
