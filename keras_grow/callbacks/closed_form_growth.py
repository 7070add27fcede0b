"""`GradMax` and `TINY`: new units in closed form, on Firefly's schedule.

Both measure, on a few training batches, how the loss would respond to a
new unit in every growable layer (`keras_grow.descent.new_units`), rank
the best units of every layer by their worth, and add the best eta (or,
with `unit_count="significant"`, every unit whose gain passes a t-test on
held-out batches) in one round, function-preserving at insertion.

References:
    Evci et al., "GradMax: Growing Neural Networks using Gradient
    Information", ICLR 2022.
    Verbockhaven et al., "Growing Tiny Networks: Spotting Expressivity
    Bottlenecks and Fixing Them Optimally", TMLR 2024.
"""

import time

import numpy as np

from keras_grow import transfer
from keras_grow.callbacks import arguments
from keras_grow.callbacks import width_growth
from keras_grow.callbacks.train_batches import TrainBatches
from keras_grow.descent import new_units
from keras_grow.descent import scoring
from keras_grow.descent import selection
from keras_grow.transfer.weights import read_weights
from keras_grow.transfer.weights import weight_shapes
from keras_grow.transfer.width import unit_norms

UNIT_COUNTS = ("eta", "significant")


class _ClosedFormGrowth(TrainBatches, width_growth.SlotGrowth):
    """Base of `GradMax` and `TINY` (see the module docstring).

    Args:
        train_data: `tf.data.Dataset` of (images, labels) or (images,
            labels, sample weights) batches, or a tuple `(x, y)` or `(x, y,
            sample_weight)` of arrays: where the gradients are measured,
            the examples weighted as `fit` weighs them.
        epsilon: float. Scale of the zero side (fan-out, or fan-in for
            GradMax's `zero_side="fan_in"`) relative to the layer's mean
            unit norm. `0` (default) keeps the function exactly.
        scale: float. Norm of the live side relative to the layer's mean
            unit norm (the GradMax authors' `scale` with `mean_norm`).
            Defaults to `1.0` for TINY and `0.1` for GradMax (see
            `GradMax`).
        score_batches: int. Batches the measurement averages over.
            Defaults to `4`.
        unit_count: str. `"eta"` (default): the best eta units across
            layers, eta = `growth_ratio` x units. `"significant"`: every
            unit (up to a layer's current width) whose gain is positive
            at 95% in a one-sided t-test; directions are fitted on the
            even scoring batches and tested on the odd ones, so
            `score_batches` must be at least 4. A round with no
            significant unit grows nothing and is logged as
            `"growth_skipped"`.
        **kwargs: see `keras_grow.callbacks.WidthGrowth` (`grow_every`,
            `growth_ratio`, `max_params`, `max_rounds`, `seed`, ...).
    """

    def __init__(
        self,
        train_data,
        epsilon=0.0,
        scale=1.0,
        score_batches=4,
        unit_count="eta",
        **kwargs,
    ):
        given, train_data = train_data, arguments.as_dataset(train_data, "train_data")
        super().__init__(calibration_data=train_data, **kwargs)
        arguments.check_non_negative(epsilon, "epsilon")
        arguments.check_fraction(scale, "scale", upper=float("inf"))
        arguments.check_int(score_batches, "score_batches", 1)
        arguments.check_choice(unit_count, "unit_count", UNIT_COUNTS)
        if unit_count == "significant" and score_batches < 4:
            raise ValueError(
                "unit_count='significant' fits directions on half the scoring "
                "batches and tests them on the other half: `score_batches` must "
                f"be at least 4; received {score_batches}."
            )
        self._init_batches(train_data, given)
        self.epsilon = float(epsilon)
        self.scale = float(scale)
        self.score_batches = score_batches
        self.unit_count = unit_count
        self._measure = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # One measuring function for the run: traced again only where a
        # growth rebuilt the body (`new_units.Measure`); its loss is this
        # compile's.
        self._measure = None

    def _check_spec(self, spec):
        super()._check_spec(spec)
        shapes = weight_shapes(self.model.body)
        groups, skipped = new_units.closed_form_groups(spec, shapes)
        if not groups:
            raise ValueError(
                f"{type(self).__name__} adds units to layers with one producer; "
                f"{spec.notation} has none ({skipped})."
            )

    # --- proposal: measure, fit, rank ------------------------------------

    def _propose(self, model, rng):
        start = time.perf_counter()
        shapes = weight_shapes(model.body)
        groups, skipped = new_units.closed_form_groups(model.spec, shapes)
        if self._measure is None:
            self._measure = new_units.Measure(scoring.loss_function(model))
        stats = self._measure(model, groups, self.data, self.score_batches)
        fit, test = range(self.score_batches), None
        if self.unit_count == "significant":
            fit = range(0, self.score_batches, 2)
            test = range(1, self.score_batches, 2)
        units, slots, tested = {}, [], {}
        eta = self.eta(model.spec)
        for s in stats:
            cap = eta if test is None else s.group.width(shapes)
            found = new_units.directions(s, self.method, cap, batches=fit)
            if test is not None:
                keep = np.flatnonzero(new_units.significant(s, found, test))
                tested[s.group.name] = [len(keep), len(found.values)]
                found = new_units.UnitDirections(
                    found.fan_in[keep], found.fan_out[keep], found.values[keep]
                )
            units[s.group.name] = (s, found)
            slots += [(v, s.group.width_index) for v in found.values]
        slots.sort(key=lambda slot: -slot[0])
        info = {
            "seconds_measure": time.perf_counter() - start,
            "measure_traces": self._measure.traces,
            "unit_count": self.unit_count,
            "unit_values": {
                name: [float(v) for v in f.values] for name, (_, f) in units.items()
            },
        }
        if tested:
            info["significant_of_tested"] = tested
        if skipped:
            info["skipped_groups"] = skipped
        if not slots:
            info["reason"] = (
                "no unit passed the significance test"
                if tested
                else "no new unit changes the loss (zero gradient correlation)"
            )
        return width_growth.Proposal([w for _, w in slots], info, neighbourhood=units)

    def _count(self, spec, proposal):
        if self.unit_count == "significant":
            return len(proposal.order)
        return super()._count(spec, proposal)

    def _group_plan(self, spec, group, k, rng):
        return selection.GroupPlan(group.name, group.width_index, new=tuple(range(k)))

    # --- realisation ------------------------------------------------------

    def _realise(self, model, proposal, plan, rng):
        weights = read_weights(model.body)
        shapes = weight_shapes(model.body)
        # A group without its own directions (several producers), or with
        # fewer found than its width entry takes (groups can share an
        # entry), gets the rest after these: zero-fan-out He-normal units.
        counts = {}
        for group_plan in plan.groups:
            _, found = proposal.neighbourhood.get(group_plan.group, (None, None))
            if found is not None and len(found.values):
                counts[group_plan.group] = min(len(group_plan.new), len(found.values))
        grows = {
            proposal.neighbourhood[name][0].group.producers[0]: k
            for name, k in counts.items()
        }
        morphisms = []
        # Later groups first: a group's producer then still has the fan-in
        # its directions were measured with, and an earlier group's fan-out
        # gets zeros towards the later groups' new units (`grows`).
        for group_plan in reversed(plan.groups):
            if group_plan.group in counts:
                stats, found = proposal.neighbourhood[group_plan.group]
                morphisms.append(
                    self._morphism(
                        stats, found, counts[group_plan.group], weights, shapes, grows
                    )
                )
        new_spec = model.spec.with_widths(plan.widths_after)
        return plan, {"new_spec": new_spec, "morphisms": morphisms}

    def _sides(self):
        """(fan-in scale, fan-out scale): the live side at `scale`, the
        zero side at `epsilon`."""
        return self.scale, self.epsilon

    def _morphism(self, stats, found, k, weights, shapes, grows):
        group = stats.group
        producer = group.producers[0]
        kernel = weights[producer]["kernel"]
        fan_in_norm = unit_norms(kernel, -1).mean()
        width = kernel.shape[-1]
        out_norms = np.sqrt(
            sum(
                unit_norms(new_units.reader_view(r, weights[c]["kernel"], width), -2)
                ** 2
                for r, c in new_units.readers(group)
            )
        )
        in_scale, out_scale = self._sides()
        incoming = {
            producer: np.moveaxis(
                found.fan_in[:k].reshape((k,) + stats.fan_in_shape), 0, -1
            )
            * fan_in_norm
            * in_scale
        }
        incoming.update(new_units.passthrough_kernels(shapes, group, k))
        outgoing, start = {}, 0
        fan_out = found.fan_out[:k]
        fan_out = fan_out / np.maximum(
            np.linalg.norm(fan_out, axis=1, keepdims=True), 1e-30
        )
        for _, consumer in new_units.readers(group):
            shape = stats.fan_out_shapes[consumer]
            size = int(np.prod(shape))
            block = fan_out[:, start : start + size].reshape((k,) + shape)
            block = np.moveaxis(block, 0, -2) * out_norms.mean()
            pad = [(0, 0)] * (block.ndim - 1) + [(0, grows.get(consumer, 0))]
            outgoing[consumer] = np.pad(block, pad)
            start += size
        return transfer.AddUnits(
            group.name, k, incoming=incoming, outgoing=outgoing, epsilon=out_scale
        )


class GradMax(_ClosedFormGrowth):
    """Adds the units that maximise the gradient norm of their zero side.

    Every `grow_every` epochs, on `score_batches` training batches, the
    gradient correlation `J` of every growable layer is measured
    (`keras_grow.descent.new_units`); its top singular vectors are the
    new units' directions, worth their squared singular values, and the
    best eta units across layers are added.

    Args:
        train_data, epsilon, score_batches, unit_count: see the base
            (`keras_grow.callbacks.closed_form_growth`).
        zero_side: str. `"fan_out"` (default): new units start with zero
            outgoing weights and incoming weights along the top right
            singular vectors, so the first step grows their fan-out along
            the largest gradient. `"fan_in"`: the paper's zero fan-in with
            the top left singular vectors as fan-out; the paper assumes
            `f'(0) = 1`, and behind a ReLU (TensorFlow: `relu'(0) = 0`) such
            a unit never gets a gradient, so use it with other activations
            or `epsilon > 0`.
        scale: float. The live side's norm relative to the layer's mean
            unit norm. Defaults to `0.1`: at `1.0` the new units' gradient
            is the largest there is by construction, and SGD with momentum
            overshoots on it right after a round (docs/results/firefly.md
            has the paired MLP study's numbers).
        **kwargs: see `keras_grow.callbacks.WidthGrowth`.

    Example:

    >>> import keras_grow as kg
    >>> callback = kg.callbacks.GradMax(train_ds, grow_every=5)  # doctest: +SKIP

    Reference:
        Evci et al., "GradMax: Growing Neural Networks using Gradient
        Information", ICLR 2022.
    """

    method = "gradmax"

    def __init__(self, train_data, zero_side="fan_out", scale=0.1, **kwargs):
        super().__init__(train_data, scale=scale, **kwargs)
        arguments.check_choice(zero_side, "zero_side", new_units.ZERO_SIDES)
        self.zero_side = zero_side

    def _sides(self):
        if self.zero_side == "fan_in":
            return self.epsilon, self.scale
        return self.scale, self.epsilon


class TINY(_ClosedFormGrowth):
    """Adds the units that best reduce the expected loss, in closed form.

    Every `grow_every` epochs, on `score_batches` training batches, the
    gradient correlation `J` and the input covariance `S` of every
    growable layer are measured; the SVD of `J S^-1/2` gives the rank-k
    set of new units that minimises the first-order loss plus the size of
    the functional change (`keras_grow.descent.new_units` says what is
    exact and what is left out). New units start with fan-out `epsilon`
    times their closed-form direction (`0`: function-preserving; the
    first step grows it along that direction).

    Args:
        train_data, epsilon, score_batches, unit_count: see the base
            (`keras_grow.callbacks.closed_form_growth`).
        **kwargs: see `keras_grow.callbacks.WidthGrowth`.

    Example:

    >>> import keras_grow as kg
    >>> callback = kg.callbacks.TINY(train_ds, unit_count="significant",
    ...                              score_batches=8)  # doctest: +SKIP

    Reference:
        Verbockhaven et al., "Growing Tiny Networks: Spotting Expressivity
        Bottlenecks and Fixing Them Optimally", TMLR 2024.
    """

    method = "tiny"
