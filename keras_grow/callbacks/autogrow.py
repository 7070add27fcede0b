"""`AutoGrow`: automatic depth discovery as a Keras callback.

Reference:
    Wen, Yan, Chen, Li. "AutoGrow: Automatic Layer Growing in Deep
    Convolutional Networks". KDD 2020. https://arxiv.org/abs/1906.02909
"""

import warnings

import keras
import numpy as np

from keras_grow import build
from keras_grow import losses
from keras_grow import specs
from keras_grow import transfer
from keras_grow.adam_init import adam_init_norm
from keras_grow.callbacks import periods
from keras_grow.callbacks.arguments import GivenArguments
from keras_grow.callbacks.arguments import as_dataset
from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_finite
from keras_grow.callbacks.arguments import check_int
from keras_grow.callbacks.arguments import check_non_negative
from keras_grow.callbacks.autogrow_rules import AutoGrowState
from keras_grow.callbacks.autogrow_rules import FineTuneSchedule
from keras_grow.callbacks.autogrow_rules import GrowthPolicy
from keras_grow.callbacks.autogrow_rules import RunningBest
from keras_grow.callbacks.autogrow_rules import StoppingRule
from keras_grow.callbacks.autogrow_rules import next_stage
from keras_grow.callbacks.growth_guard import ON_FAILURE
from keras_grow.callbacks.growth_guard import attempt_growth
from keras_grow.callbacks.presets import FromPreset
from keras_grow.callbacks.retrace_report import RetraceReport
from keras_grow.callbacks.scalars import GrowthScalars
from keras_grow.callbacks.scheduled_growth import require_growable

ON_STOP = ("keep", "remove")
# AutoGrow's initializer -> the block initializer a new *residual* block
# gets. A new plain sub-module gets "default" whatever the initializer (as
# the authors' code: its only BN zeroed would kill the signal), unless
# "identity" asks for the function-preserving plain deepening.
BLOCK_START = {
    "gaussian": "gaussian",
    "uniform": "uniform",
    "uniform_authors": "uniform_authors",
    "zero": "zero",
    "adam": "default",  # AdamInit starts from the default BN (gamma 1, beta 0)
    "identity": "identity",
    "copy": "default",  # then overwritten by the copy of the stage's last block
}
INITIALIZERS = tuple(BLOCK_START)


class AutoGrow(GivenArguments, FromPreset, keras.callbacks.Callback):
    """Grows a staged net's depth while it trains, then fine-tunes it.

    Starting from the model's spec (typically one sub-module per stage),
    every `growth_period` epochs (a *growth boundary*) AutoGrow:

    1. stops the most recently grown stage for good if the running best of
       `monitor` improved by less than `min_delta` over the last `patience`
       epochs (the stage keeps its last block unless `on_stop="remove"`);
    2. appends one new sub-module to the next stage still growing, in round
       robin, initialised by `initializer`.

    When no stage is growing any more, it fine-tunes for
    `fine_tune_epochs` (from `fine_tune_lr`, or the rate growth trained
    with, x0.1 at 1/2 and 3/4) and then sets `model.stop_training`:
    pass a generous `epochs` to `fit` and AutoGrow ends the run.

    Beside Keras' learning-rate callbacks: the fine-tune's drops multiply
    the rate, so `ReduceLROnPlateau`'s cuts (before and during the
    fine-tune) stay; `LearningRateScheduler` sets the rate every epoch, so
    it owns the rate and AutoGrow sets none (a warning at `fit` start
    says so).

    Args:
        growth_period: int. K, epochs between growth boundaries. Defaults
            to `3` (the paper's p-AutoGrow).
        policy: str. `"periodic"` (p-AutoGrow: a boundary every K epochs)
            or `"convergent"` (c-AutoGrow: a boundary only once the net has
            converged: after K epochs, and, if `convergence_patience` is
            set, once `monitor` improved by less than `min_delta` over that
            many epochs). Defaults to `"periodic"`.
        patience: int. J, the window in epochs of the stopping policy.
        min_delta: float. tau, in the units of `monitor`: `0.0005` is the
            paper's 0.05 percentage points of accuracy.
        monitor: str. The epoch log read for stopping. Defaults to
            `"val_accuracy"`. A key missing at an epoch is a warning listing
            the available keys (no stage stops on that epoch's account); a
            key no epoch has logged by the first boundary is a ValueError.
        mode: str. `"max"`, `"min"` or `"auto"` (max for accuracies).
        initializer: str. How a new residual block's last BN starts:
            `"gaussian"` (GauInit, the paper's best), `"uniform"` (UniInit,
            zero-mean, as the paper), `"uniform_authors"` (U(0, scale), as
            the authors' code), `"zero"` (function-preserving) or `"adam"`
            (the default BN, then only it is trained with Adam on
            `adam_init_data` until training accuracy is within
            `adam_init_tolerance` of the shallower net's, at most
            `adam_init_max_epochs` epochs). A new *plain* sub-module gets
            Keras' default initialisation whatever the initializer (as the
            authors' code), except `"zero"`, which promises the identity
            and is refused on plain nets at `fit` start. `"identity"` is
            function-preserving for both: ZeroInit for a residual block,
            an identity conv with a pass-through BN for a plain sub-module.
            `"copy"` starts a new block as a copy of its chain's last block
            (as G_stack stacks layers), for the repeated blocks of a user
            graph (`from_keras(model, depth="blocks")`): the one start of a
            post-norm transformer layer, whose layer norms follow its
            shortcuts so that no weights make it the identity.
        initializer_scale: float. Std of GauInit/UniInit. Defaults to `1.0`.
        max_depths: tuple of int or `None`. A stage at its maximum stops.
        fine_tune_epochs: int. N, epochs of fine-tuning after growth ends.
        fine_tune_lr: float or `None`. The fine-tune learning rate before
            the drops. Defaults to the rate growth ended with (the
            optimizer's own, as AutoGrow keeps it constant while growing,
            unless another callback changed it).
        fine_tune_lr_factor: float. Multiplier at each drop. Defaults `0.1`.
        fine_tune_lr_boundaries: tuple of float. Drop points as fractions
            of `fine_tune_epochs`. Defaults to `(0.5, 0.75)`.
        convergence_patience: int or `None`. See `policy`.
        on_stop: str. `"keep"` (the stopped stage keeps its last block) or
            `"remove"` (Algorithm 1 of the paper deletes it). Defaults to
            `"keep"`.
        adam_init_data: `tf.data.Dataset` of (x, y) or (x, y,
            sample_weight) batches, a tuple `(x, y)` or `(x, y,
            sample_weight)` of arrays (batched by 32), or `None`.
            Required by `initializer="adam"`.
        adam_init_max_epochs: int. Defaults to `10` (the paper's).
        adam_init_learning_rate: float. Defaults to `1e-3`.
        adam_init_tolerance: float. AdamInit stops once training accuracy
            is within this of the shallower net's. Defaults to `0.005` (the
            authors' 0.5 points).
        seed: int or `None`. Seeds the random initialisers (offset by the
            growth's epoch).
        log_dir: str or `None`. Writes TensorBoard scalars
            `growth/depth_stage{i}` and `growth/params` every epoch.
        verbose: int. 1 prints one line per decision. Defaults to `1`.
        on_failure: str. If growing a stage raises: `"rollback"` (undo it,
            log it, go on; the stage is tried again at the next boundary)
            or `"raise"` (undo it and stop with the error). Defaults to
            `"rollback"`.
        reserve: bool. Build the blocks of residual stages ahead of growth
            at the start of `fit` (`GrowableModel.reserve_depth`: up to
            `max_depths`, else twice each stage's depth, doubled again
            when outgrown), so that a growth switches blocks on instead of
            rebuilding the body and tracing the train step again; they
            cost no parameters and about 2% of a step while off
            (docs/no_retrace.md). Defaults to `True`.

    Example:

    >>> import keras, keras_grow as kg
    >>> spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10)
    >>> model = kg.GrowableModel(spec)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
    ...               loss=keras.losses.SparseCategoricalCrossentropy(
    ...                   from_logits=True), metrics=["accuracy"])
    >>> autogrow = kg.callbacks.AutoGrow(growth_period=3, patience=30,
    ...                                  fine_tune_epochs=40)
    >>> # model.fit(train, validation_data=val, epochs=500,
    >>> #           callbacks=[autogrow])
    """

    def __init__(
        self,
        growth_period=3,
        policy="periodic",
        patience=30,
        min_delta=0.0005,
        monitor="val_accuracy",
        mode="auto",
        initializer="gaussian",
        initializer_scale=1.0,
        max_depths=None,
        fine_tune_epochs=40,
        fine_tune_lr=None,
        fine_tune_lr_factor=0.1,
        fine_tune_lr_boundaries=(0.5, 0.75),
        convergence_patience=None,
        on_stop="keep",
        adam_init_data=None,
        adam_init_max_epochs=10,
        adam_init_learning_rate=1e-3,
        adam_init_tolerance=0.005,
        seed=None,
        log_dir=None,
        verbose=1,
        on_failure="rollback",
        reserve=True,
    ):
        super().__init__()
        # Each concept validates its own arguments.
        self.running_best = RunningBest(monitor, mode)
        self.stopping = StoppingRule(patience, min_delta)
        self.growth_policy = GrowthPolicy(
            policy, growth_period, convergence_patience, float(min_delta)
        )
        self.fine_tune = FineTuneSchedule(
            fine_tune_epochs, fine_tune_lr, fine_tune_lr_factor, fine_tune_lr_boundaries
        )
        check_choice(on_failure, "on_failure", ON_FAILURE)
        check_choice(initializer, "initializer", INITIALIZERS)
        check_choice(on_stop, "on_stop", ON_STOP)
        if max_depths is not None:
            max_depths = tuple(max_depths)
            for depth in max_depths:
                check_int(depth, "max_depths entries", 1)
        if initializer == "adam" and adam_init_data is None:
            raise ValueError(
                "initializer='adam' trains the new block's last BN on "
                "training data: pass adam_init_data=<a tf.data.Dataset of "
                "(x, y) batches, or a tuple (x, y) of arrays>."
            )
        check_int(adam_init_max_epochs, "adam_init_max_epochs", 1)
        check_non_negative(adam_init_tolerance, "adam_init_tolerance")
        self.initializer = initializer
        self.initializer_scale = initializer_scale
        self.max_depths = max_depths
        self.on_stop = on_stop
        self._adam_init_given = adam_init_data
        self.adam_init_data = (
            None
            if adam_init_data is None
            else as_dataset(adam_init_data, "adam_init_data")
        )
        if self.adam_init_data is not None:
            check_finite(self.adam_init_data, "adam_init_data", "each AdamInit epoch")
        self.adam_init_max_epochs = adam_init_max_epochs
        self.adam_init_learning_rate = adam_init_learning_rate
        self.adam_init_tolerance = float(adam_init_tolerance)
        self.seed = seed
        self.verbose = verbose
        self._retraces = RetraceReport(type(self).__name__)
        self.on_failure = on_failure
        self.reserve = bool(reserve)
        self._scalars = GrowthScalars(log_dir, "AutoGrow")
        self._state = None
        self._restored = False
        # Set by keras_grow.fit_checks at each fit: the Keras callback that
        # sets the learning rate every epoch instead (then AutoGrow does not).
        self.learning_rate_owner = None

    @property
    def sets_learning_rate(self):
        """bool. Whether AutoGrow sets the learning rate (its fine-tune)."""
        return self.fine_tune.epochs > 0

    @property
    def growth_data(self):
        """dict. The data AdamInit measures the loss on, as given, by
        argument name (`keras_grow.fit_checks.check_growth_data`)."""
        if self.initializer != "adam":
            return {}
        return {"adam_init_data": self._adam_init_given}

    # --- state -------------------------------------------------------------

    def get_state(self):
        """dict. The run state, JSON-serialisable (for resuming a run)."""
        return None if self._state is None else self._state.to_dict()

    def set_state(self, state):
        """Restores `get_state()`; the next `fit` continues from it."""
        self._state = AutoGrowState.from_dict(state)
        restored = self._state
        fine_tuned = restored.phase == "fine_tuning" and (
            restored.epoch >= restored.fine_tune_start
        )
        if fine_tuned and "lr_factor" not in state:
            # A state saved before the multiplier was kept: the rate holds
            # the multiplier of the last epoch seen.
            restored.lr_factor = self.fine_tune.multiplier(
                restored.epoch, restored.fine_tune_start
            )
        self._restored = True

    @property
    def phase(self):
        """str. `"growing"`, `"fine_tuning"` or `"done"`."""
        return None if self._state is None else self._state.phase

    @property
    def growing_stages(self):
        """list of int. Stages still growing (0-based)."""
        return list(self._state.growing) if self._state else []

    # --- hooks -------------------------------------------------------------

    def on_train_begin(self, logs=None):
        require_growable(self.model, "AutoGrow")
        spec = self.model.spec
        blocks = isinstance(spec, specs.GraphSpec) and spec.depth == "blocks"
        if not isinstance(spec, specs.StagedNetSpec) and not blocks:
            raise TypeError(
                "AutoGrow grows the depth of a staged net (Basic/Bottleneck "
                "ResNets, plain nets) or the residual blocks of a user graph "
                "(GrowableModel.from_keras(model, depth='blocks')); the "
                f"model's spec is {spec.notation} ({type(spec).__name__})."
            )
        if self.initializer == "copy" and not blocks:
            raise ValueError(
                "AutoGrow(initializer='copy') starts a new block as a copy of "
                "its chain's last one, which needs repeated blocks of one shape "
                "(a user graph read with from_keras(model, depth='blocks')); "
                f"{spec.notation}'s first block of a stage is strided and "
                "projects its shortcut, so it has no copy of its shape."
            )
        if self.initializer == "zero" and not spec.residual:
            raise ValueError(
                f"AutoGrow(initializer='zero') zeroes the last BN of a new "
                f"residual block, which makes it the identity; "
                f"{spec.notation}'s sub-modules have no shortcut, so the "
                f"paper's authors give them Keras' default initialisation "
                f"instead (pass initializer='gaussian' for that), and "
                f"initializer='identity' deepens it preserving its function."
            )
        # Whether the initializer can start a block of every stage, before
        # any epoch runs (a user graph's blocks have no BatchNormalization).
        initializer = self.block_initializer(spec)
        if self.initializer == "adam" and blocks:
            initializer = "gaussian"  # AdamInit trains the new last BN
        head = losses.model_head(self.model)
        if self.initializer == "adam" and not (head and head.classifies):
            raise ValueError(
                "AutoGrow(initializer='adam') trains a new block until the "
                "training accuracy of the shallower net, which needs a "
                "classification loss (cross-entropy); the model is compiled "
                f"with {head.loss_class if head else 'no loss'}. Pass "
                "initializer='identity' or 'zero'."
            )
        for stage in range(spec.depth_stages):
            deeper = spec.with_block_added(stage)
            copies = self._block_copies(spec, deeper)
            transfer.check_initializer(spec, deeper, initializer, copies)
        if self.max_depths is not None and len(self.max_depths) != len(spec.depths):
            raise ValueError(
                f"`max_depths` needs one entry per stage ({len(spec.depths)}); "
                f"received {self.max_depths}."
            )
        if not self._restored:
            self._state = AutoGrowState.fresh(len(spec.depths))
        self._restored = False
        if self._state.initial_lr is None:
            self._state.initial_lr = self._read_lr()
        # A model holding a reserve already (a resumed run's) keeps it.
        growing = self._state.phase == "growing"
        if self.reserve and growing and self.model.reserve is None:
            self.model.reserve_depth(self._capacity(spec))

    def _capacity(self, spec):
        """The depth of each stage's reserve: its maximum, else twice its
        depth."""
        if self.max_depths is not None:
            return [max(d, m) for d, m in zip(spec.depths, self.max_depths)]
        return [2 * d for d in spec.depths]

    def on_train_end(self, logs=None):
        # A state restored during this fit (by BackupAndRestore, before or
        # after this callback's on_train_begin) was used; the next fit
        # starts fresh unless set_state is called again.
        self._restored = False
        state = self._state
        if state is not None and state.phase != "done":
            done = state.epoch + 1 - (state.fine_tune_start or 0)
            what = (
                f"in its fine-tune ({done} of {self.fine_tune.epochs} epochs)"
                if state.phase == "fine_tuning"
                else "while growing (no fine-tune yet)"
            )
            warnings.warn(
                f"fit ended {what}: {self.model.spec.notation} is not "
                f"fine-tuned. Give fit more epochs (AutoGrow stops training "
                f"itself when it is done), or call fit again to go on.",
                UserWarning,
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        state = self._state
        if state.phase != "fine_tuning" or self.learning_rate_owner:
            return
        optimizer = self.model.optimizer
        if state.lr_factor is None:  # the fine-tune's first epoch
            if self.fine_tune.lr is not None:
                periods.learning_rate_variable(optimizer, "AutoGrow").assign(
                    self.fine_tune.lr
                )
            state.lr_factor = 1.0
        state.lr_factor = periods.apply_factor(
            optimizer,
            "AutoGrow",
            self.fine_tune.multiplier(epoch, state.fine_tune_start),
            state.lr_factor,
        )

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._retraces.print_line(self.model, epoch)
        logs = logs or {}
        state = self._state
        state.epoch = epoch
        state.values.append(self.running_best.read(logs))
        if state.phase == "growing":
            state.epochs_since_boundary += 1
            if state.epochs_since_boundary >= self.growth_policy.period:
                # A decision is due: it needs the metric at least once.
                self.running_best.check_seen(state.values, logs)
            if self.growth_policy.at_boundary(
                state.epochs_since_boundary, self.running_best, state.values
            ):
                state.epochs_since_boundary = 0
                self._boundary(epoch, logs)
        elif state.phase == "fine_tuning":
            if epoch + 1 - state.fine_tune_start >= self.fine_tune.epochs:
                self._finish(epoch)
        self._scalars.write(epoch, self._growth_scalars)

    def _growth_scalars(self):
        depths = self.model.spec.depths
        scalars = {f"depth_stage{stage + 1}": d for stage, d in enumerate(depths)}
        return {**scalars, "params": self.model.count_params()}

    # --- decisions ---------------------------------------------------------

    def improvement(self, window):
        """(improvement of the running best over `window` epochs, now, then).

        `math.inf` while fewer than `window` epochs have been seen, `None`
        when the monitored value was never available.
        """
        return self.running_best.improvement(self._state.values, window)

    def _boundary(self, epoch, logs):
        state = self._state
        stop, decided_by = self.stopping.decide(self.running_best, state.values)
        last = state.last_grown
        if stop and last is not None and last in state.growing:
            self._stop_stage(last, epoch, "no_improvement", decided_by)
        self._grow_next(epoch, logs, decided_by)
        if not state.growing:
            self._start_fine_tune(epoch)

    def _grow_next(self, epoch, logs, decided_by):
        state = self._state
        while state.growing:
            stage = next_stage(state.growing, state.next_stage)
            depth = self.model.spec.depths[stage]
            if self.max_depths is not None and depth >= self.max_depths[stage]:
                self._stop_stage(stage, epoch, "max_depth", decided_by)
                state.next_stage = stage + 1
                continue
            grown = attempt_growth(
                self,
                lambda stage=stage: self._grow_stage(stage, epoch, logs, decided_by),
                f"stage {stage + 1}",
            )
            if not grown:
                return  # the same stage is tried again at the next boundary
            state.last_grown = stage
            state.next_stage = stage + 1
            return

    def block_initializer(self, spec):
        """str. The block initializer a new sub-module of `spec` gets (see
        `BLOCK_START`)."""
        if not spec.residual and self.initializer != "identity":
            return "default"
        return BLOCK_START[self.initializer]

    def _block_copies(self, spec, deeper):
        """`{new block: the last block of its chain}` for
        `initializer="copy"`, else `None`."""
        if self.initializer != "copy":
            return None
        (new,) = build.new_blocks(spec, deeper)
        chain = [b.name for b in build.blocks(spec) if b.stage == new.stage]
        return {new.name: chain[-1]}

    def _grow_stage(self, stage, epoch, logs, decided_by):
        spec = self.model.spec
        initializer = self.block_initializer(spec)
        seed = None if self.seed is None else self.seed + epoch
        deeper = spec.with_block_added(stage)
        event = self.model.grow(
            deeper,
            initializer=initializer,
            initializer_scale=self.initializer_scale,
            block_copies=self._block_copies(spec, deeper),
            seed=seed,
            info={
                "epoch": epoch,
                "stage": stage,
                "callback": "AutoGrow",
                "autogrow_initializer": self.initializer,
                "decided_by": decided_by,
            },
        )
        if self.initializer == "adam" and spec.residual:
            new_block = event["new_blocks"][0]
            norm = next(
                b.last_norm
                for b in build.blocks(self.model.spec)
                if b.name == new_block
            )
            result = adam_init_norm(
                self.model,
                norm,
                self.adam_init_data,
                target_accuracy=logs.get("accuracy"),
                max_epochs=self.adam_init_max_epochs,
                learning_rate=self.adam_init_learning_rate,
                tolerance=self.adam_init_tolerance,
            )
            self.model.record_event(
                "adam_init", {"epoch": epoch, "norm": norm, **result}
            )
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: AutoGrow: stage {stage + 1} grows -> "
                f"{event['to']} ({event['params_after']:,} parameters)"
            )

    def _stop_stage(self, stage, epoch, reason, decided_by):
        self._state.growing.remove(stage)
        if self.on_stop == "remove" and reason == "no_improvement":
            spec = self.model.spec
            depths = list(spec.depths)
            if depths[stage] > 1:
                depths[stage] -= 1
                self.model.grow(
                    spec.with_depths(depths),
                    info={
                        "kind": "remove_block",  # a growth step that shrinks
                        "epoch": epoch,
                        "stage": stage,
                        "callback": "AutoGrow",
                        "reason": "remove_last_block_of_stopped_stage",
                    },
                )
        self.model.record_event(
            "stop_stage",
            {
                "epoch": epoch,
                "stage": stage,
                "reason": reason,
                "decided_by": decided_by,
            },
        )
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: AutoGrow: stage {stage + 1} stops ({reason}"
                f"{_evidence(decided_by) if reason == 'no_improvement' else ''}) "
                f"at {self.model.spec.notation}"
            )

    def _start_fine_tune(self, epoch):
        self._state.phase = "fine_tuning"
        self._state.fine_tune_start = epoch + 1
        self.model.record_event(
            "fine_tune", {"epoch": epoch + 1, "epochs": self.fine_tune.epochs}
        )
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: AutoGrow: growth done, found "
                f"{self.model.spec.notation}; fine-tuning {self.fine_tune.epochs} "
                f"epochs"
            )
        if self.fine_tune.epochs == 0:
            self._finish(epoch)

    def _finish(self, epoch):
        self._state.phase = "done"
        self.model.stop_training = True
        self.model.record_event("done", {"epoch": epoch})
        if self.verbose:
            print(f"Epoch {epoch + 1}: AutoGrow: done, {self.model.spec.notation}")

    # --- learning rate -----------------------------------------------------

    def _read_lr(self):
        optimizer = self.model.optimizer
        # A schedule serialises as a dict; `optimizer.learning_rate` would
        # give its current value and hide it.
        if isinstance(optimizer.get_config()["learning_rate"], dict):
            if self.fine_tune.epochs and not self.learning_rate_owner:
                raise ValueError(
                    "AutoGrow sets the learning rate while fine-tuning, so it "
                    "needs an optimizer with a constant learning rate (the "
                    "paper keeps it constant while growing); or pass "
                    "fine_tune_epochs=0."
                )
            return None
        return float(np.asarray(optimizer.learning_rate))


def _evidence(decided_by):
    """`: val_accuracy best 0.8123 -> 0.8140 over 3 epochs, +0.0017 < tau
    0.0050`: the numbers behind a stop, for the progress line."""
    if not decided_by or decided_by.get("improvement") is None:
        return ""
    return (
        f": {decided_by['monitor']} best {decided_by['best_then']:.4f} -> "
        f"{decided_by['best_now']:.4f} over {decided_by['patience']} epochs, "
        f"{decided_by['improvement']:+.4f} < tau {decided_by['min_delta']:.4f}"
    )
