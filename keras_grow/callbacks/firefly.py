"""`Firefly`: grow width (and depth) by steepest descent in architecture.

Reference:
    Wu, Liu, Stone, Liu, "Firefly Neural Architecture Descent: a General
    Approach for Growing Neural Networks", NeurIPS 2020.
"""

import dataclasses
import math
import time

import keras
import numpy as np

from keras_grow import descent
from keras_grow.callbacks import arguments
from keras_grow.callbacks import width_growth
from keras_grow.callbacks.presets import FromPreset
from keras_grow.callbacks.train_batches import TrainBatches
from keras_grow.descent import depth as depth_lib
from keras_grow.descent import scoring
from keras_grow.descent import selection
from keras_grow.transfer.weights import weight_shapes


class Firefly(FromPreset, TrainBatches, width_growth.WidthGrowth):
    """Grows the net into the best net of its neighbourhood, every few epochs.

    A round (at the end of every `grow_every`-th epoch):

    1. Builds the over-grown neighbourhood: every unit of every growable
       layer split into `w +/- e * delta`, plus `candidates_per_layer` new
       units with outgoing weights `e * v` (see
       `keras_grow.descent.WidthNeighbourhood`).
    2. Step one: `delta_steps` steps of `delta_optimizer` on the
       directions with every gate at its step, each direction kept within
       its norm ball (a split's delta within its unit's norm, a new unit's
       weights within the layer's median unit norm), on batches of
       `train_data`.
    3. Step two: scores each candidate by the integrated gradient of the
       loss along its gate, `score_samples` points on `[0, step]`, over
       `score_batches` batches, BN in inference mode. A new unit's step is
       `epsilon`, a split's `split_epsilon` (`sqrt(epsilon)`): both change
       the function by O(epsilon), so their scores compete on one scale
       (`keras_grow.descent.gate_ends`).
    4. Keeps the eta = `growth_ratio` x units best (most negative)
       candidates globally across layers, switched on at their steps: split
       children get `w +/- split_epsilon * delta`, new units their
       optimised incoming and `epsilon`-scaled outgoing weights (in every
       layer, depthwise kernels included). The model's optimizer state is carried
       over (or zeroed: `after_growth="fresh"`); the learning rate follows
       `period_schedule` (constant by default).

    With `grow_depth=True` a round also scores one new layer per stage in
    the epsilon-neighbourhood of the identity and adds the best
    `new_layers_per_round` with a negative score (a separate budget; see
    `keras_grow.descent.DepthNeighbourhood`).

    Args:
        train_data: `tf.data.Dataset` of (images, labels) or (images,
            labels, sample weights) batches, or a tuple `(x, y)` or `(x, y,
            sample_weight)` of arrays (batched by 32, as `fit`), to optimise
            and score on (the training data, not the validation data), the
            examples weighted as `fit` weighs them.
        **kwargs: `WidthGrowth`'s arguments (`grow_every`, `growth_ratio`,
            `max_params`, `max_rounds`, `seed`, `log_dir`, `verbose`,
            `on_failure`, `calibrate_new_units`, `period_schedule`,
            `after_growth`; new units' statistics are measured on
            `train_data`). Firefly's own arguments are keyword-only.
        candidates_per_layer: int or `None`. New-unit candidates per layer
            (m'). `None`: the round's eta, so that every unit of a round
            may go to one layer (the authors' code keeps a fixed pool of
            70 per layer, about its eta on VGG19-16).
        epsilon: float in (0, 1]. A new unit's step: gate value of step
            one, end of the scoring path and the value a chosen new unit
            gets. Relative to a unit's own weights. Defaults to `0.1`.
        split_epsilon: float in (0, 1] or `None`. A split's step. `None`:
            `sqrt(epsilon)`, the same function change as a new unit's.
        delta_steps: int. Step-one steps (batches). Defaults to `30`.
        delta_learning_rate: float. Step one's rate. Defaults to `0.01`.
        delta_optimizer: str. Step one's optimiser: `"adam"` (default) or
            `"rmsprop"` (the authors': momentum 0.1, rho 0.9, rate 1e-3,
            one epoch of batches).
        score_samples: int. n, points of the integral. `1` is the reference
            code's endpoint gradient. Defaults to `4`.
        score_batches: int. Batches the scores average over. Defaults to `4`.
            (30 and 4 selected as well as 150 and 16 in the Fashion-MNIST
            study, at a fraction of the cost: docs/benchmarks.md.)
        split: bool. Whether units may split. Defaults to `True`.
        new_units: bool. Whether new units may be added. Defaults to `True`.
        grow_depth: bool. Whether rounds also add layers. Defaults to
            `False`.
        new_layers_per_round: int. Depth budget per round. Defaults to `1`.
        jit_compile: bool. Compile the steps with XLA. Defaults to `False`:
            on CPU XLA made them slower (see docs/benchmarks.md).

    Example:

    >>> import keras, keras_grow as kg
    >>> train = kg.data.load("fashion_mnist_sample", "train", 64, take=256)
    >>> firefly = kg.callbacks.Firefly(train, grow_every=2, max_rounds=1)
    >>> firefly.growth_ratio
    0.3
    """

    method = "firefly"

    def __init__(
        self,
        train_data,
        *,
        candidates_per_layer=None,
        epsilon=0.1,
        split_epsilon=None,
        delta_steps=30,
        delta_learning_rate=0.01,
        delta_optimizer="adam",
        score_samples=4,
        score_batches=4,
        split=True,
        new_units=True,
        grow_depth=False,
        new_layers_per_round=1,
        jit_compile=False,
        **kwargs,
    ):
        given, train_data = train_data, arguments.as_dataset(train_data, "train_data")
        super().__init__(calibration_data=train_data, **kwargs)
        arguments.check_int(
            candidates_per_layer, "candidates_per_layer", 1, allow_none=True
        )
        arguments.check_fraction(epsilon, "epsilon")
        if split_epsilon is not None:
            arguments.check_fraction(split_epsilon, "split_epsilon")
        arguments.check_choice(
            delta_optimizer, "delta_optimizer", scoring.STEP_ONE_OPTIMIZERS
        )
        arguments.check_int(delta_steps, "delta_steps", 0)
        arguments.check_fraction(delta_learning_rate, "delta_learning_rate")
        arguments.check_int(score_samples, "score_samples", 1)
        arguments.check_int(score_batches, "score_batches", 1)
        arguments.check_int(new_layers_per_round, "new_layers_per_round", 1)
        if not (split or new_units):
            raise ValueError(
                "Firefly needs split=True or new_units=True (or both); both are False."
            )
        self._init_batches(train_data, given)
        self.candidates_per_layer = candidates_per_layer
        self.epsilon = float(epsilon)
        self.split_epsilon = (
            math.sqrt(self.epsilon) if split_epsilon is None else float(split_epsilon)
        )
        self.delta_optimizer = delta_optimizer
        self.delta_steps = delta_steps
        self.delta_learning_rate = float(delta_learning_rate)
        self.score_samples = score_samples
        self.score_batches = score_batches
        self.split = bool(split)
        self.new_units = bool(new_units)
        self.grow_depth = bool(grow_depth)
        self.new_layers_per_round = new_layers_per_round
        self.jit_compile = bool(jit_compile)
        self._width_rounds = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._width_rounds = None  # one per fit: its loss is this compile's

    def _rounds(self, model):
        """The width rounds of this fit: one traced step for every round
        while the net grows in place (`descent.WidthRounds`)."""
        if self._width_rounds is None:
            self._width_rounds = descent.WidthRounds(
                scoring.loss_function(model),
                epsilon=self.epsilon,
                split_epsilon=self.split_epsilon,
                **self._step_arguments(),
            )
        return self._width_rounds

    def _step_arguments(self):
        """`DescentSteps`' arguments but the neighbourhood, loss and ends."""
        return dict(
            learning_rate=self.delta_learning_rate,
            optimizer=self.delta_optimizer,
            score_points=self.score_samples,
            jit_compile=self.jit_compile,
        )

    def _check_spec(self, spec):
        super()._check_spec(spec)
        groups, skipped = descent.kernel_groups(spec, weight_shapes(self.model.body))
        if not groups:
            raise ValueError(
                f"{self.method} measures units that kernels write and read; "
                f"{spec.notation} has none it can grow ({skipped})."
            )
        if self.grow_depth:
            descent.check_depth_growable(spec)

    def _new_unit_candidates(self, spec):
        if not self.new_units:
            return 0
        if self.candidates_per_layer is not None:
            return self.candidates_per_layer
        return self.eta(spec)

    def _descend(self, steps):
        """Runs step one and step two of `steps` (`DescentSteps`); returns
        (scores, timing info)."""
        neighbourhood = steps.neighbourhood
        progress = self._progress(neighbourhood)
        start = time.perf_counter()
        losses = steps.optimise(self.data, self.delta_steps, progress)
        optimised = time.perf_counter()
        # The same scores, hence the same decision, on every worker.
        scores = scoring.mean_over_replicas(
            self.model.distribute_strategy,
            steps.scores(self.data, self.score_batches, progress),
        )
        info = {
            "seconds_optimise": optimised - start,
            "seconds_score": time.perf_counter() - optimised,
            "overgrown_loss_first": losses[0] if losses else None,
            "overgrown_loss_last": losses[-1] if losses else None,
        }
        return scores, info

    def _progress(self, neighbourhood):
        """A Keras progress bar over step one and scoring (`verbose=1`), as
        the `on_step` of `DescentSteps`; `None` when quiet. Under
        `fit(verbose=2)` (a line per epoch, no bars) only the round's line."""
        if not self.verbose:
            return None
        what = (
            "depth"
            if isinstance(neighbourhood, depth_lib.DepthNeighbourhood)
            else "width"
        )
        print(
            f"{self.method} round {self.rounds + 1} ({what}): "
            f"{len(neighbourhood.candidates)} candidates, {self.delta_steps} "
            f"step-one steps, {self.score_batches} scoring batches"
        )
        if (self.params or {}).get("verbose") == 2:
            return None
        bar = keras.utils.Progbar(self.delta_steps + self.score_batches)
        return lambda: bar.add(1)

    def _propose(self, model, rng):
        spec = model.spec
        start = time.perf_counter()
        steps = self._rounds(model).start(
            model.body,
            spec,
            split=self.split,
            new_units=self._new_unit_candidates(spec),
            seed=int(rng.integers(2**31)),
        )
        neighbourhood = steps.neighbourhood
        built = time.perf_counter() - start
        scores, info = self._descend(steps)
        order, ranked = selection.slot_order(neighbourhood.candidates, scores)
        if neighbourhood.skipped:
            info["skipped_groups"] = dict(neighbourhood.skipped)
        info.update(
            seconds_build=built,
            descent_traces=self._rounds(model).traces,
            candidates=len(neighbourhood.candidates),
            new_unit_candidates=neighbourhood.new_units,
            epsilon=self.epsilon,
            split_epsilon=self.split_epsilon,
            score_min=float(np.min(scores)),
            score_negative=int(np.sum(scores < 0)),
        )
        depth, new_blocks = None, ()
        if self.grow_depth:
            depth, new_blocks = self._propose_depth(model, rng, info)
        return width_growth.Proposal(
            order,
            info,
            candidates=neighbourhood.candidates,
            ranked=ranked,
            scores=scores,
            neighbourhood=neighbourhood,
            new_blocks=new_blocks,
            depth=depth,
        )

    def _propose_depth(self, model, rng, info):
        """Scores one new layer per stage: (the depth neighbourhood, the
        stages with a negative score, best first, within the budget)."""
        neighbourhood = depth_lib.DepthNeighbourhood(
            model.body, model.spec, seed=int(rng.integers(2**31))
        )
        steps = scoring.DescentSteps(
            neighbourhood,
            scoring.loss_function(model),
            epsilon=self.epsilon,
            **self._step_arguments(),
        )
        scores, timing = self._descend(steps)
        info["depth_scores"] = [float(s) for s in scores]
        info["seconds_depth"] = timing["seconds_optimise"] + timing["seconds_score"]
        ranked = [s for s in np.argsort(scores, kind="stable") if scores[s] < 0]
        return neighbourhood, tuple(int(s) for s in ranked[: self.new_layers_per_round])

    def _realise(self, model, proposal, plan, rng):
        """The chosen candidates switched on at `epsilon`, then the planned
        new layers at the grown widths, if they fit `max_params`."""
        ends = descent.gate_ends(
            proposal.neighbourhood.candidates, self.epsilon, self.split_epsilon
        )
        new_spec, values = descent.realise(proposal.neighbourhood, plan.chosen, ends)
        if plan.new_blocks:
            deep, layer_values = proposal.depth.realise_layers(
                list(plan.new_blocks),
                new_spec,
                self.epsilon,
                seed=int(rng.integers(2**31)),
            )
            merged = {**values, **layer_values}  # every layer of `deep`
            params = sum(
                np.size(a) for layer in merged.values() for a in layer.values()
            )
            if self.max_params is None or params <= self.max_params:
                new_spec, values = deep, merged
            else:
                plan = dataclasses.replace(plan, new_blocks=())
        # `values` sets every new layer; the initialiser only fills in.
        grow_kwargs = {"new_spec": new_spec, "values": values, "initializer": "default"}
        return plan, grow_kwargs

    def _after_growth(self, model, added):
        """New plain layers' BN is calibrated to pass its input through."""
        to_calibrate = [
            (b.convs[0], b.last_norm)
            for b in added
            if not b.residual and b.last_norm is not None
        ]
        depth_lib.calibrate_pass_through(model, to_calibrate, self.data)
