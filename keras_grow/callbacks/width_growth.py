"""Rounds of width growth: the schedule Firefly and its baselines share.

Every `grow_every` epochs a round grows the net by eta = `growth_ratio` x
(current units) units, globally across layers, capped by `max_params`.
A round is data passed along, not closures: the subclass proposes
(`_propose`: slots ranked best first, with its candidates and scores),
`_plan` turns the best eta slots into a `selection.WidthPlan`
(which units of which groups), and `_realise` says how the model grows to
it. The schedule, the budget, the growth log and the progress output live
here, so Firefly and the random baselines are compared on exactly the same
terms.
"""

import collections
import dataclasses
import math
import time

import keras
import numpy as np

from keras_grow import build
from keras_grow import descent
from keras_grow import transfer
from keras_grow.callbacks import periods
from keras_grow.callbacks.arguments import GivenArguments
from keras_grow.callbacks.arguments import as_dataset
from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_fraction
from keras_grow.callbacks.arguments import check_int
from keras_grow.callbacks.arguments import check_non_negative
from keras_grow.callbacks.growth_guard import ON_FAILURE
from keras_grow.callbacks.growth_guard import attempt_growth
from keras_grow.callbacks.retrace_report import RetraceReport
from keras_grow.callbacks.scalars import GrowthScalars
from keras_grow.callbacks.scheduled_growth import require_growable
from keras_grow.descent import scoring
from keras_grow.descent import selection
from keras_grow.transfer import calibration
from keras_grow.transfer import weights as weight_io
from keras_grow.transfer.width import grown_param_count


@dataclasses.dataclass(frozen=True)
class Proposal:
    """What a round found, before choosing: slots ranked best first.

    Args:
        order: list of int. Width indices, one per slot, best first.
        info: dict. Fields for the growth event (timings, score summary).
        candidates: list of `descent.Candidate` or `None` (methods that
            rank slots without candidates).
        ranked: dict or `None`. Candidates of each group, best first (see
            `selection.slot_order`).
        scores: np.ndarray or `None`. One per candidate, lower is better.
        neighbourhood: the object that realises chosen candidates (e.g.
            Firefly's `WidthNeighbourhood`), or `None`.
        new_blocks: tuple of int. Stages proposed for a new block.
        depth: the object that realises `new_blocks`, or `None`.
    """

    order: list
    info: dict
    candidates: list | None = None
    ranked: dict | None = None
    scores: np.ndarray | None = None
    neighbourhood: object = None
    new_blocks: tuple = ()
    depth: object = None


class WidthGrowth(GivenArguments, keras.callbacks.Callback):
    """Base of the width-growth callbacks (see module docstring).

    Args:
        grow_every: int. Epochs between rounds (a round runs at the end of
            every `grow_every`-th epoch). Defaults to `10`.
        growth_ratio: float in (0, 1]. eta = floor(ratio x units), at least
            1. Defaults to `0.3` (the paper's).
        max_params: int or `None`. No round grows the net past this many
            parameters; a round that cannot add one unit ends the growth.
        max_rounds: int or `None`. Stop after this many rounds.
        seed: int or `None`. Seeds each round (offset by the round).
        log_dir: str or `None`. TensorBoard scalars `growth/params` and
            `growth/width_{i}` per round.
        verbose: int. 1 prints one line per round. Defaults to `1`.
        on_failure: str. If a round raises: `"rollback"` (undo it, log it,
            go on; the next round tries again) or `"raise"` (undo it and
            stop with the error). Defaults to `"rollback"`.
        calibrate_new_units: int. Batches on which new units' BN moving
            statistics are measured right after a round, so that inference
            mode normalises them as training mode will. `0` (default)
            leaves them at 0/1, as the Firefly authors.
        calibration_data: `tf.data.Dataset` of (images, labels) batches,
            or a tuple `(x, y)` of arrays, those statistics are measured on
            (training data). Needed when
            `calibrate_new_units > 0` (Firefly uses its `train_data`).
        period_schedule: str. The learning rate within each growth period
            of `grow_every` epochs, times the compiled rate: `"constant"`
            (default), `"cosine"` or `"step"` (x0.1 at half the period,
            x0.01 at three quarters: the Firefly authors').
        after_growth: str. `"carry"` (default) keeps the optimizer's state
            (momentum) for the surviving weights; `"fresh"` zeroes it after
            every round, as the authors' new optimizer per period.
    """

    method = None  # the name logged with each round

    def __init__(
        self,
        grow_every=10,
        growth_ratio=0.3,
        max_params=None,
        max_rounds=None,
        seed=None,
        log_dir=None,
        verbose=1,
        on_failure="rollback",
        calibrate_new_units=0,
        calibration_data=None,
        period_schedule="constant",
        after_growth="carry",
    ):
        super().__init__()
        check_choice(period_schedule, "period_schedule", periods.PERIOD_SCHEDULES)
        check_choice(after_growth, "after_growth", periods.AFTER_GROWTH)
        check_int(grow_every, "grow_every", 1)
        check_int(calibrate_new_units, "calibrate_new_units", 0)
        if calibrate_new_units and calibration_data is None:
            raise ValueError(
                f"`calibrate_new_units={calibrate_new_units}` measures BN "
                "statistics on data: pass `calibration_data` (training batches)."
            )
        if calibration_data is not None:
            calibration_data = as_dataset(calibration_data, "calibration_data")
        check_choice(on_failure, "on_failure", ON_FAILURE)
        check_fraction(growth_ratio, "growth_ratio")
        check_int(max_params, "max_params", 1, allow_none=True)
        check_int(max_rounds, "max_rounds", 0, allow_none=True)
        check_int(seed, "seed", 0, allow_none=True)
        self.grow_every = grow_every
        self.growth_ratio = float(growth_ratio)
        self.max_params = max_params
        self.max_rounds = max_rounds
        self.seed = seed
        self.verbose = verbose
        self._retraces = RetraceReport(type(self).__name__)
        self.on_failure = on_failure
        self.calibrate_new_units = calibrate_new_units
        self.calibration_data = calibration_data
        self.period_schedule = period_schedule
        self.after_growth = after_growth
        self._lr_factor = 1.0  # the period multiplier in the rate now
        self._legacy_base_rate = None
        # Set by keras_grow.fit_checks at each fit: the Keras callback that
        # sets the learning rate every epoch instead (then this one does not).
        self.learning_rate_owner = None
        self.rounds = 0
        self.finished = False
        self._scalars = GrowthScalars(log_dir, type(self).__name__)

    # --- what subclasses provide ---------------------------------------

    def _check_spec(self, spec):
        """Raises before training if this callback cannot grow `spec`."""
        descent.growable_groups(spec)

    def _propose(self, model, rng):
        """Returns a `Proposal` for the current model."""
        raise NotImplementedError

    def _plan(self, spec, proposal, count, rng):
        """The `WidthPlan` taking the proposal's best `count` slots."""
        plan = selection.plan_from_candidates(
            self.method,
            spec,
            proposal.candidates,
            proposal.order,
            proposal.ranked,
            count,
        )
        return dataclasses.replace(plan, new_blocks=proposal.new_blocks)

    def _realise(self, model, proposal, plan, rng):
        """Returns (the plan realised, `GrowableModel.grow` keyword
        arguments: `new_spec` and `morphisms` or `values`)."""
        raise NotImplementedError

    def _after_growth(self, model, added):
        """Called once the model grew, with the `Block`s the growth added
        (e.g. to calibrate new layers)."""

    def _calibration_batches(self):
        """The iterator new units' statistics are measured on."""
        return scoring.batches(self.calibration_data)

    def _calibrate(self, model, plan):
        """Measures the BN statistics of the units `plan` added (they are
        the last ones of their groups) on `calibrate_new_units` batches."""
        if not self.calibrate_new_units:
            return
        new = {g.group: len(g.new) for g in plan.groups if g.new}
        channels = {}
        shapes = weight_io.weight_shapes(model.body)
        for group in descent.growable_groups(model.spec):
            if group.name in new:
                width = group.width(shapes)
                for norm in group.norms:
                    channels[norm] = range(width - new[group.name], width)
        calibration.set_channel_statistics(
            model.body,
            channels,
            self._calibration_batches(),
            self.calibrate_new_units,
        )

    # --- the schedule ---------------------------------------------------

    def on_train_begin(self, logs=None):
        require_growable(self.model, type(self).__name__)
        self._check_spec(self.model.spec)
        if self.period_schedule != "constant":
            periods.learning_rate_variable(self.model.optimizer, type(self).__name__)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._retraces.print_line(self.model, epoch)
        if self.finished or (epoch + 1) % self.grow_every:
            return
        if self.max_rounds is not None and self.rounds >= self.max_rounds:
            self.finished = True
            return
        attempt_growth(
            self, lambda: self._round(epoch, logs or {}), f"round {self.rounds + 1}"
        )

    def eta(self, spec):
        """int. Units one round adds: floor(ratio x units), at least 1."""
        units = sum(spec.widths[w] for w in self._width_indices(spec))
        return max(1, math.floor(self.growth_ratio * units))

    @staticmethod
    def _width_indices(spec):
        return sorted({g.width_index for g in descent.growable_groups(spec)})

    def _fits_budget(self, model):
        """A test `{width_index: units added} -> bool` against `max_params`."""
        groups = descent.growable_groups(model.spec)
        shapes = weight_io.weight_shapes(model.body)

        def fits(taken):
            added = {g.name: taken.get(g.width_index, 0) for g in groups}
            return grown_param_count(shapes, groups, added) <= self.max_params

        return fits

    def _affordable(self, fits, order, count):
        """The largest count <= `count` whose grown net `fits`."""
        while count > 0 and not fits(collections.Counter(order[:count])):
            count -= 1
        return count

    def _end_growth(self, epoch):
        self.finished = True
        self.model.record_event(
            "growth_end",
            {"epoch": epoch, "reason": "max_params", "max_params": self.max_params},
        )
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.method}: parameter budget reached.")

    def _round(self, epoch, logs):
        model = self.model
        fits = None if self.max_params is None else self._fits_budget(model)
        if fits is not None and not any(
            fits({w: 1}) for w in self._width_indices(model.spec)
        ):
            # No single unit fits: end now, before a costly proposal.
            self._end_growth(epoch)
            return
        start = time.perf_counter()
        seed = None if self.seed is None else self.seed + self.rounds
        rng = np.random.default_rng(seed)
        proposal = self._propose(model, rng)
        if not proposal.order:
            self._skip_round(epoch, proposal)
            return
        eta = self._count(model.spec, proposal)
        count = eta if fits is None else self._affordable(fits, proposal.order, eta)
        if count == 0:
            self._end_growth(epoch)
            return
        spec_before = model.spec
        plan = self._plan(spec_before, proposal, count, rng)
        plan, grow_kwargs = self._realise(model, proposal, plan, rng)
        info = self._event_info(epoch, logs, eta, proposal, plan)
        added = build.new_blocks(spec_before, grow_kwargs["new_spec"])
        if proposal.depth is not None:
            info["new_layers"] = [b.name for b in added]
        info["seconds_round"] = time.perf_counter() - start
        event = model.grow(seed=seed, **grow_kwargs, info=info)
        self._after_growth(model, added)
        self._calibrate(model, plan)
        if self.after_growth == "fresh":
            periods.reset_optimizer_state(model.optimizer)
        self.rounds += 1
        self._scalars.write(epoch, self._growth_scalars)
        if self.verbose:
            layers = f", +{len(added)} layers ({', '.join(b.name for b in added)})"
            print(
                f"Epoch {epoch + 1}: {self.method} round {self.rounds}: "
                f"+{plan.units_added} units{layers if added else ''}, "
                f"{event['params_before']:,} -> "
                f"{event['params_after']:,} parameters, widths "
                f"{info['widths_after']} ({info['seconds_round']:.1f}s)"
            )

    def _count(self, spec, proposal):
        """int. How many of the proposal's slots a round takes (before
        the budget): eta, or fewer if the proposal has fewer."""
        return min(self.eta(spec), len(proposal.order))

    def _skip_round(self, epoch, proposal):
        """A round whose proposal has no slot: logged, nothing grows."""
        self.rounds += 1
        self.model.record_event(
            "growth_skipped",
            {
                "epoch": epoch,
                "round": self.rounds,
                "method": self.method,
                **proposal.info,
            },
        )
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: {self.method} round {self.rounds}: no unit "
                f"worth adding ({proposal.info.get('reason', 'empty proposal')})."
            )

    def _event_info(self, epoch, logs, eta, proposal, plan):
        """The growth event's fields: the round, its plan, the proposal's."""
        info = {
            "epoch": epoch,
            "round": self.rounds + 1,
            "method": self.method,
            "callback": type(self).__name__,
            "eta": eta,
            "units_added": plan.units_added,
            "widths_before": list(plan.widths_before),
            "widths_after": list(plan.widths_after),
            "monitored": {k: float(v) for k, v in logs.items()},
            **proposal.info,
            **plan.log(),
        }
        if proposal.scores is not None:
            info["chosen_score_sum"] = float(np.sum(proposal.scores[list(plan.chosen)]))
        return info

    def _growth_scalars(self):
        widths = {f"width_{i}": w for i, w in enumerate(self.model.spec.widths)}
        return {"params": self.model.count_params(), **widths}

    @property
    def sets_learning_rate(self):
        """bool. Whether a period schedule sets the learning rate."""
        return self.period_schedule != "constant"

    def on_epoch_begin(self, epoch, logs=None):
        if not self.sets_learning_rate or self.learning_rate_owner:
            return
        optimizer = self.model.optimizer
        if self._legacy_base_rate is not None:
            rate = periods.learning_rate_variable(optimizer, self.method)
            self._lr_factor = float(rate.numpy()) / self._legacy_base_rate
            self._legacy_base_rate = None
        factor = periods.period_factor(self.period_schedule, epoch, self.grow_every)
        self._lr_factor = periods.apply_factor(
            optimizer, self.method, factor, self._lr_factor
        )

    def get_state(self):
        """dict. The round counter, whether growth ended, the period
        schedule's multiplier in the learning rate (for resuming)."""
        return {
            "rounds": self.rounds,
            "finished": self.finished,
            "lr_factor": self._lr_factor,
        }

    def set_state(self, state):
        self.rounds = int(state["rounds"])
        self.finished = bool(state["finished"])
        self._lr_factor = float(state.get("lr_factor", 1.0))
        # A state saved before the multiplier was kept has the base rate.
        if "lr_factor" not in state:
            self._legacy_base_rate = state.get("base_learning_rate")


class SlotGrowth(WidthGrowth):
    """Width growth without candidates: the proposal ranks slots (width
    indices), and each group gets what `_group_plan(spec, group, k, rng)`
    makes of its k taken slots."""

    def _plan(self, spec, proposal, count, rng):
        taken = collections.Counter(proposal.order[:count])
        groups = tuple(
            self._group_plan(spec, g, taken[g.width_index], rng)
            for g in descent.growable_groups(spec)
            if taken[g.width_index]
        )
        widths = selection.widths_after(spec, taken)
        return selection.WidthPlan(self.method, tuple(spec.widths), widths, groups)


class _RandomWidthGrowth(SlotGrowth):
    """Random slots, uniformly over the units of every growable layer."""

    def _propose(self, model, rng):
        spec = model.spec
        slots = [w for w in self._width_indices(spec) for _ in range(spec.widths[w])]
        return Proposal([int(w) for w in rng.permutation(slots)], {})

    def _realise(self, model, proposal, plan, rng):
        morphisms = [self._morphism(g) for g in plan.groups]
        new_spec = model.spec.with_widths(plan.widths_after)
        return plan, {"new_spec": new_spec, "morphisms": morphisms}


class RandomSplit(_RandomWidthGrowth):
    """Baseline: split randomly chosen units (Net2Net-style), same schedule.

    Each round picks eta existing units uniformly at random across layers
    and splits each into two copies `w +/- delta` with halved outgoing
    weights, `delta` a random direction `noise` times the unit's norm.

    Args:
        noise: float. Relative size of the symmetry-breaking delta.
            Defaults to `0.01`.
        **kwargs: see `WidthGrowth` (`grow_every`, `growth_ratio`, ...).
    """

    method = "random_split"

    def __init__(self, noise=0.01, **kwargs):
        super().__init__(**kwargs)
        check_non_negative(noise, "noise")
        self.noise = float(noise)

    def _group_plan(self, spec, group, k, rng):
        units = rng.choice(spec.widths[group.width_index], k, replace=False)
        return selection.GroupPlan(
            group.name, group.width_index, split=tuple(int(u) for u in units)
        )

    def _morphism(self, group_plan):
        return transfer.SplitUnits(group_plan.group, group_plan.split, noise=self.noise)


class RandomNew(_RandomWidthGrowth):
    """Baseline: add randomly initialised units, same schedule.

    Each round adds eta new units, spread uniformly at random across
    layers, with He-normal incoming weights and He-normal outgoing weights
    scaled by `epsilon`.

    Args:
        epsilon: float. Scale of the new units' outgoing weights. Defaults
            to `0.1` (Firefly's default step).
        **kwargs: see `WidthGrowth`.
    """

    method = "random_new"

    def __init__(self, epsilon=0.1, **kwargs):
        super().__init__(**kwargs)
        check_non_negative(epsilon, "epsilon")
        self.epsilon = float(epsilon)

    def _group_plan(self, spec, group, k, rng):
        return selection.GroupPlan(group.name, group.width_index, new=tuple(range(k)))

    def _morphism(self, group_plan):
        return transfer.AddUnits(
            group_plan.group, len(group_plan.new), epsilon=self.epsilon
        )
