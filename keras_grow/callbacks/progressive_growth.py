"""`ProgressiveGrowth`: start small, grow into the model you want."""

import functools

import keras
import numpy as np

from keras_grow import build
from keras_grow import specs
from keras_grow import transfer
from keras_grow.callbacks import progressive_plan as plans
from keras_grow.callbacks.arguments import GivenArguments
from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_fraction
from keras_grow.callbacks.arguments import check_non_negative
from keras_grow.callbacks.growth_guard import ON_FAILURE
from keras_grow.callbacks.growth_guard import attempt_growth
from keras_grow.callbacks.retrace_report import RetraceReport
from keras_grow.callbacks.scheduled_growth import require_growable
from keras_grow.specs import progression
from keras_grow.transfer.weights import weight_shapes


class ProgressiveGrowth(GivenArguments, keras.callbacks.Callback):
    """Grows the model into `target` in stages while it trains.

    Progressive training: the model starts as a smaller net and grows into
    the one the user wants, so that the early epochs cost less. At `fit`
    start a `ProgressivePlan` is made (printed, logged as a
    `progressive_plan` event, and kept across a resume): the fewest
    growths in which no stage's number of blocks and no width grows by
    more than `growth_factor`, spread evenly over the first
    `reach_target_at` of the epochs, so the target trains for the rest.
    With `unit="step"` the growths fall between steps instead (a run of
    few long epochs), at the first step at or after each planned one.

    How what is new starts:

    - `depth="identity"` (default): new blocks compute the identity
      (residual blocks' last BN zeroed; a plain layer a Dirac kernel and a
      pass-through BN). Function-preserving.
    - `depth="stack"` (G_stack), `"interleave"` or `"middle"` (MIDAS): new
      blocks copy the weights of the stage's trained blocks (see
      `progressive_plan.block_sources`); a block whose layers differ in
      shape from every candidate (a stage's strided first block) starts as
      the identity instead. Not function-preserving.
    - `width="duplicate"` (default): existing units are split into two
      halves of their outgoing weights (HyperCloning/Net2Net), the
      incoming weights perturbed by `noise` times their norm to break the
      symmetry: the function is kept up to that noise (exactly at
      `noise=0`, but then the copies never differ).
    - `width="fresh"`: new units with He-normal incoming and
      `epsilon`-scaled He-normal outgoing weights (zero at `epsilon=0`:
      function-preserving).

    The optimizer's state is carried (`GrowableModel.grow`): the step count
    (so a learning-rate schedule goes on where it was), and each surviving
    weight's slots; new weights, duplicated units' included, start with
    zero slots (momentum, Adam moments), as a fresh unit does.

    Args:
        target: a spec of the model's kind, at least as deep and wide in
            every stage and layer (e.g. `start.scaled(width=2, depth=2)`;
            a `from_keras` graph grows in width only).
        growth_factor: float > 1. The most a block count or a width grows
            by in one growth. Defaults to `2.0`.
        reach_target_at: float in (0, 1]. The fraction of `fit`'s epochs
            by which the target is reached. Defaults to `0.5`.
        at: sequence of int or `None`. The 0-based epochs (steps) of the
            growths instead (one per growth of the plan, increasing).
        unit: str. `"epoch"` (default) or `"step"`: whether the growths
            happen at epoch starts or between steps (fit's steps over the
            whole run, from 0; fit needs a known number of steps per
            epoch).
        depth: str. One of `progressive_plan.DEPTH_OPERATORS`.
        width: str. One of `progressive_plan.WIDTH_OPERATORS`.
        noise: float >= 0. The duplicates' symmetry-breaking perturbation,
            relative to each unit's incoming weights. Defaults to `0.01`.
        epsilon: float >= 0. Fresh units' outgoing scale. Defaults to `0`.
        seed: int or `None`. Seeds each growth's random draws.
        verbose: int. 1 prints the plan and a line per growth.
        on_failure: str. `"raise"` (default) or `"rollback"` (see
            `keras_grow.callbacks.ScheduledGrowth`).

    Example:

    >>> import keras_grow as kg
    >>> target = kg.specs.parse("Basic3ResNet-2-2-2", (28, 28, 1), 10,
    ...                         widths=(16, 32, 64))
    >>> model = kg.GrowableModel(target.scaled(width=0.5, depth=0.5))
    >>> grow = kg.callbacks.ProgressiveGrowth(target)
    >>> # model.fit(train, epochs=10, callbacks=[grow])
    """

    def __init__(
        self,
        target,
        *,
        growth_factor=2.0,
        reach_target_at=0.5,
        at=None,
        unit="epoch",
        depth="identity",
        width="duplicate",
        noise=0.01,
        epsilon=0.0,
        seed=None,
        verbose=1,
        on_failure="raise",
    ):
        super().__init__()
        if not isinstance(target, specs.NetSpec):
            raise TypeError(
                f"`target` must be a keras_grow spec (e.g. "
                f"model.spec.scaled(width=2, depth=2)); received {target!r}."
            )
        progression.check_growth_factor(growth_factor)
        check_fraction(reach_target_at, "reach_target_at")
        check_choice(depth, "depth", plans.DEPTH_OPERATORS)
        check_choice(width, "width", plans.WIDTH_OPERATORS)
        check_choice(unit, "unit", plans.UNITS)
        check_non_negative(noise, "noise")
        check_non_negative(epsilon, "epsilon")
        check_choice(on_failure, "on_failure", ON_FAILURE)
        self.target = target
        self.growth_factor = float(growth_factor)
        self.reach_target_at = float(reach_target_at)
        self.at = None if at is None else tuple(at)
        self.unit = unit
        self.depth, self.width = depth, width
        self.noise, self.epsilon = float(noise), float(epsilon)
        self.seed, self.verbose, self.on_failure = seed, verbose, on_failure
        self.plan = None
        self._epoch, self._done = 0, 0
        self._retraces = RetraceReport(type(self).__name__)

    # --- the plan ----------------------------------------------------------

    def on_train_begin(self, logs=None):
        require_growable(self.model, type(self).__name__)
        spec = self.model.spec
        if self.plan is not None and self._follows(self.plan, spec):
            # A resumed run: the plan the first run made, its growths so far.
            self._done = (
                self.plan.specs.index(spec) + 1 if spec in self.plan.specs else 0
            )
            return
        params = self.params or {}
        self.plan = self.make_plan(spec, params.get("epochs"), params.get("steps"))
        self._done = 0
        for index, new_spec in enumerate(self.plan.specs):
            before = self.plan.spec_before(index)
            copies = self._copies(before, new_spec)
            transfer.check_initializer(before, new_spec, "identity", copies)
        self.model.record_event("progressive_plan", self.plan.to_dict())
        if self.verbose:
            print(self.plan)

    def make_plan(self, spec, epochs, steps_per_epoch=None):
        """The `ProgressivePlan` this callback follows from `spec` in
        `fit(epochs=epochs)` with `steps_per_epoch` steps an epoch (needed
        for `unit="step"`): what `fit` will make, e.g. to set a schedule's
        `rewarmup_at` from `plan.growth_steps(steps_per_epoch)` first."""
        if not epochs:
            raise ValueError(
                "ProgressiveGrowth plans its growths over fit's epochs; call "
                "fit with epochs=N."
            )
        total = epochs
        if self.unit == "step":
            if not steps_per_epoch:
                raise ValueError(
                    "ProgressiveGrowth(unit='step') plans over fit's steps, "
                    "but fit does not know how many an epoch has (a dataset "
                    "of unknown length): pass steps_per_epoch to fit."
                )
            total = epochs * steps_per_epoch
        return plans.make_plan(
            spec,
            self.target,
            total,
            self.growth_factor,
            self.reach_target_at,
            self.at,
            self.unit,
        )

    def _follows(self, plan, spec):
        return plan.target == self.target and spec in (plan.start, *plan.specs)

    def get_state(self):
        """The plan, for `keras_grow.callbacks.BackupAndRestore`."""
        return {"plan": None if self.plan is None else self.plan.to_dict()}

    def set_state(self, state):
        plan = state.get("plan")
        self.plan = None if plan is None else plans.ProgressivePlan.from_dict(plan)

    # --- growing -----------------------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.plan is not None and self.plan.unit == "epoch":
            self._grow_due(epoch, f"Epoch {epoch + 1}")

    def on_train_batch_begin(self, batch, logs=None):
        if self.plan is None or self.plan.unit != "step":
            return
        step = self._epoch * self.params["steps"] + batch
        self._grow_due(step, f"Step {step + 1} (epoch {self._epoch + 1})")

    def _grow_due(self, point, where):
        """Makes the growths planned at or before `point` that the model
        has not had (a step that runs several batches at once, with
        `steps_per_execution`, may pass a planned step). `_done` counts
        the plan's growths made, so a step with none due compares one
        number."""
        while self._done < len(self.plan.at) and self.plan.at[self._done] <= point:
            index, at = self._done, self.plan.at[self._done]
            self._done += 1
            expected, spec = self.plan.spec_before(index), self.model.spec
            if spec != expected:
                raise ValueError(
                    f"ProgressiveGrowth's plan grows {expected.notation} at "
                    f"{self.plan.unit} index {at}, but the model is "
                    f"{spec.notation}: another callback changed it. Let one "
                    f"callback grow the model."
                )
            attempt_growth(
                self,
                functools.partial(self._grow, at, index, self.plan.specs[index], where),
                f"stage {index + 1} of the plan ({where})",
            )

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._retraces.print_line(self.model, epoch)

    def _grow(self, at, index, new_spec, where):
        """Growth `index` of the plan, planned at `at`, made at `where`."""
        old_spec = self.model.spec
        seed = None if self.seed is None else self.seed + at
        rng = np.random.default_rng(seed)
        morphisms = self._morphisms(old_spec, new_spec, rng)
        copies = self._copies(old_spec, new_spec)
        event = self.model.grow(
            new_spec,
            initializer="identity",
            morphisms=morphisms,
            block_copies=copies,
            seed=seed,
            info={
                "epoch": self._epoch,
                **({"step": at} if self.plan.unit == "step" else {}),
                "callback": type(self).__name__,
                "stage": index + 1,
                "depth_operator": self.depth,
                "width_operator": self.width,
            },
        )
        if self.verbose:
            print(
                f"{where}: grew {event['from']} -> {event['to']} "
                f"({event['params_before']:,} -> {event['params_after']:,} "
                f"parameters, stage {index + 1} of {len(self.plan.specs)})"
            )

    def _morphisms(self, old_spec, new_spec, rng):
        """The width morphisms of the old unit groups that widen."""
        shapes = weight_shapes(self.model.body)
        new_groups = {g.name: g for g in build.unit_groups(new_spec)}
        morphisms = []
        for group in build.unit_groups(old_spec):
            new = new_groups.get(group.name)
            if group.width_index is None or new is None or new.width_index is None:
                continue
            old_width = group.width(shapes)
            ratio = (
                new_spec.widths[new.width_index] / old_spec.widths[group.width_index]
            )
            new_width = round(old_width * ratio)
            if new_width <= old_width:
                continue
            if self.width == "fresh":
                morphisms.append(
                    transfer.AddUnits(
                        group.name, new_width - old_width, epsilon=self.epsilon
                    )
                )
                continue
            for units in plans.split_units(rng, old_width, new_width):
                morphisms.append(
                    transfer.SplitUnits(group.name, units, noise=self.noise)
                )
        return morphisms

    def _copies(self, old_spec, new_spec):
        """`{block: (old blocks it may copy, in order)}` the depth operator
        asks for; the transfer copies the first whose layers agree."""
        if self.depth == "identity":
            return {}
        old_names = {b.name for b in build.blocks(old_spec)}
        new_blocks = build.blocks(new_spec)
        copies = {}
        for stage in sorted({b.stage for b in new_blocks if b.stage is not None}):
            names = [b.name for b in new_blocks if b.stage == stage]
            count = sum(name in old_names for name in names)
            sources = plans.block_sources(self.depth, count, len(names))
            for position, source in enumerate(sources):
                if source is None or source == position:
                    continue
                # An old block keeps its own weights when its source does
                # not fit; a new one tries the old blocks after it.
                order = [source] if position < count else range(source, source + count)
                copies[names[position]] = tuple(names[i % count] for i in order)
        return copies
