"""Choosing which candidates grow: exactly eta, globally across layers.

A *slot* is one unit more for one width entry of the spec. For VGG,
MobileNetV1 and MLP every width entry has one unit group, so a slot is a
candidate. A staged net's stage width is shared by several groups (the
residual stream and each block's inner layers); one slot there adds a unit
to each of them, and its score is the sum of the groups' next-best
candidate scores.
"""

import collections
import dataclasses

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


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """What one unit group gets in a width-growth round.

    Args:
        group: str. The `UnitGroup`'s name.
        width_index: int. The spec width entry the group follows.
        split: tuple of int. Units that split (a child each), in order.
        new: tuple of int. New units added: their candidate numbers for
            Firefly, `0..k-1` for methods without candidates.
    """

    group: str
    width_index: int
    split: tuple = ()
    new: tuple = ()


@dataclasses.dataclass(frozen=True)
class WidthPlan:
    """What a width-growth round decided, before anything is built.

    Data only: it can be printed, logged and tested alone; the growth
    callbacks realise it on the model (`WidthGrowth._realise`).

    Args:
        method: str. The callback's method name (`"firefly"`, ...).
        widths_before, widths_after: tuples of int. The spec's widths.
        groups: tuple of `GroupPlan`, the groups that grow.
        chosen: tuple of int. Indices of the chosen candidates into the
            proposal's candidates (empty for methods without candidates).
        new_blocks: tuple of int. Stages that get a new block (Firefly's
            depth growth), best first.
    """

    method: str
    widths_before: tuple
    widths_after: tuple
    groups: tuple
    chosen: tuple = ()
    new_blocks: tuple = ()

    @property
    def units_added(self):
        """int. Width slots added (a staged stage's slot widens every group
        that follows its width entry)."""
        return sum(self.widths_after) - sum(self.widths_before)

    def log(self):
        """dict. JSON fields for the growth event."""
        return {
            "plan": {
                g.group: {"split": list(g.split), "new": len(g.new)}
                for g in self.groups
            },
            "chosen_split": sum(len(g.split) for g in self.groups),
            "chosen_new": sum(len(g.new) for g in self.groups),
            "new_block_stages": list(self.new_blocks),
        }

    def __str__(self):
        parts = []
        for g in self.groups:
            what = [f"split {list(g.split)}"] if g.split else []
            what += [f"+{len(g.new)} new"] if g.new else []
            parts.append(f"{g.group}: {', '.join(what)}")
        if self.new_blocks:
            parts.append(f"new blocks in stages {list(self.new_blocks)}")
        return (
            f"{self.method}: widths {list(self.widths_before)} -> "
            f"{list(self.widths_after)} ({'; '.join(parts) or 'nothing'})"
        )


def plan_from_candidates(method, spec, candidates, order, ranked, count):
    """The plan that takes the best `count` slots (see `choose`).

    Args:
        method: str. Logged with the plan.
        spec: the current spec.
        candidates, order, ranked: from the neighbourhood and `slot_order`.
        count: int. Slots to take.

    Returns:
        `WidthPlan`.
    """
    chosen, taken = choose(candidates, order, ranked, count)
    split, new = collections.defaultdict(list), collections.defaultdict(list)
    width_of = {}
    for index in chosen:
        c = candidates[index]
        (split if c.kind == "split" else new)[c.group].append(c.unit)
        width_of[c.group] = c.width_index
    groups = tuple(
        GroupPlan(g, width_of[g], tuple(split[g]), tuple(new[g]))
        for g in dict.fromkeys(candidates[i].group for i in chosen)
    )
    return WidthPlan(
        method,
        tuple(spec.widths),
        widths_after(spec, taken),
        groups,
        chosen=tuple(chosen),
    )


def widths_after(spec, taken):
    """tuple. `spec.widths` with `{width_index: slots taken}` added."""
    widths = list(spec.widths)
    for width_index, k in taken.items():
        widths[width_index] += k
    return tuple(widths)
