"""`ScheduledGrowth`: grow a `GrowableModel` at fixed epochs."""

import keras

from keras_grow import build
from keras_grow import specs
from keras_grow import transfer
from keras_grow.callbacks.arguments import GivenArguments
from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_int
from keras_grow.callbacks.growth_guard import ON_FAILURE
from keras_grow.callbacks.growth_guard import attempt_growth
from keras_grow.callbacks.retrace_report import RetraceReport
from keras_grow.specs.base import a_or_an


def require_growable(model, callback_name):
    """Raises a TypeError unless `model` is a `GrowableModel`."""
    from keras_grow.growable_model import GrowableModel

    if not isinstance(model, GrowableModel):
        raise TypeError(
            f"{callback_name} grows a keras_grow.GrowableModel; it was given "
            f"{a_or_an(type(model).__name__)}. Build the model with "
            f"kg.GrowableModel(kg.specs.parse(...)), or make your own Keras "
            f"model growable with kg.GrowableModel.from_keras(model)."
        )


class ScheduledGrowth(GivenArguments, keras.callbacks.Callback):
    """Grows the model at the start of given epochs; no decisions of its own.

    The simplest growth policy, for demos, ablations and hand-made
    curricula: AutoGrow and Firefly decide when and how to grow, this
    callback only follows a schedule.

    Args:
        schedule: dict. `{epoch: successor}`, 0-based epochs as in Keras.
            A successor is a spec, or a callable taking the current spec and
            returning the grown one (e.g. `lambda s: s.with_block_added(0)`).
        initializer: str. How new sub-modules start (see
            `GrowableModel.grow`). At `fit` start the whole schedule is
            tried on the spec (no weights), so an initializer a new block
            cannot take is refused before any step. Defaults to
            `"identity"` (function-preserving on every family).
        initializer_scale: float. Defaults to `1.0`.
        copy_blocks: bool. Whether each new block starts as a copy of the
            block before it in its stage (G_stack's stacking: every weight
            of its layers; where their shapes differ it keeps the
            initializer's start). Defaults to `False`.
        seed: int or `None`. Seeds each growth's random draws (offset by the
            growth's epoch). Defaults to `None`.
        verbose: int. 1 prints one line per growth. Defaults to `1`.
        on_failure: str. If a growth raises (e.g. a successor that does not
            fit the current spec): `"rollback"` undoes it, logs a
            `growth_failed` event and a warning, skips that entry and goes
            on; `"raise"` undoes it and re-raises. Defaults to `"raise"`
            (a schedule is the user's own: a mistake in it should stop).

    Example:

    >>> import keras_grow as kg
    >>> grow = kg.callbacks.ScheduledGrowth.round_robin(
    ...     num_stages=3, every=2, growths=3)
    >>> sorted(grow.schedule)
    [2, 4, 6]
    """

    def __init__(
        self,
        schedule,
        initializer="identity",
        initializer_scale=1.0,
        copy_blocks=False,
        seed=None,
        verbose=1,
        on_failure="raise",
    ):
        super().__init__()
        check_choice(on_failure, "on_failure", ON_FAILURE)
        if not isinstance(schedule, dict):
            raise TypeError(
                f"`schedule` must be a dict {{epoch: spec or callable}}; "
                f"received {schedule!r}."
            )
        for epoch, successor in schedule.items():
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(
                    f"Schedule epochs must be integers >= 0; received {epoch!r}."
                )
            if not (isinstance(successor, specs.NetSpec) or callable(successor)):
                raise TypeError(
                    f"Schedule entry for epoch index {epoch} (0-based; Keras "
                    f"prints it as Epoch {epoch + 1}) must be a spec or a "
                    f"callable spec -> spec; received {successor!r}."
                )
        from keras_grow.transfer import get_block_initializer

        get_block_initializer(initializer)  # fail before training starts
        self.schedule = dict(schedule)
        self.initializer = initializer
        self.initializer_scale = initializer_scale
        self.copy_blocks = bool(copy_blocks)
        self.seed = seed
        self.verbose = verbose
        self._retraces = RetraceReport(type(self).__name__)
        self.on_failure = on_failure

    @classmethod
    def round_robin(cls, num_stages, every, growths, first=None, **kwargs):
        """A schedule adding one block per growth to stages 0, 1, 2, ...

        Args:
            num_stages: int. Stages of the (staged) spec.
            every: int. Epochs between growths.
            growths: int. Number of growths.
            first: int or `None`. Epoch of the first growth. Defaults to
                `every`.
            **kwargs: the constructor's other arguments.
        """
        check_int(num_stages, "num_stages", 1)
        check_int(every, "every", 1)
        check_int(growths, "growths", 0)
        check_int(first, "first", 0, allow_none=True)
        first = every if first is None else first
        schedule = {
            first + i * every: _AddBlockTo(i % num_stages) for i in range(growths)
        }
        return cls(schedule, **kwargs)

    def on_train_begin(self, logs=None):
        require_growable(self.model, type(self).__name__)
        self._check_schedule(self.model.spec)

    def _check_schedule(self, spec):
        """Grows `spec` through the schedule, specs only, and raises if the
        initializer cannot start a block it adds. A successor that raises
        here is left to its growth (and `on_failure`)."""
        for epoch in sorted(self.schedule):
            successor = self.schedule[epoch]
            try:
                grown = (
                    successor
                    if isinstance(successor, specs.NetSpec)
                    else successor(spec)
                )
                added = build.new_blocks(spec, grown)
            except Exception:  # noqa: BLE001 - the growth itself reports it
                return
            try:
                transfer.check_new_blocks(added, self.initializer)
            except ValueError as error:
                raise ValueError(
                    f"{type(self).__name__}: the schedule's entry for epoch "
                    f"index {epoch} (Epoch {epoch + 1}) cannot grow with "
                    f"initializer={self.initializer!r}: {error}"
                ) from None
            spec = grown

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._retraces.print_line(self.model, epoch)

    def on_epoch_begin(self, epoch, logs=None):
        successor = self.schedule.get(epoch)
        if successor is None:
            return
        attempt_growth(
            self,
            lambda: self._grow(epoch, successor),
            f"the schedule's entry for epoch index {epoch} (Epoch {epoch + 1})",
        )

    def _grow(self, epoch, successor):
        current = self.model.spec
        new_spec = (
            successor if isinstance(successor, specs.NetSpec) else successor(current)
        )
        seed = None if self.seed is None else self.seed + epoch
        event = self.model.grow(
            new_spec,
            initializer=self.initializer,
            initializer_scale=self.initializer_scale,
            block_copies=stacked_copies(current, new_spec)
            if self.copy_blocks
            else None,
            seed=seed,
            info={"epoch": epoch, "callback": type(self).__name__},
        )
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: grew {event['from']} -> {event['to']} "
                f"({event['params_before']:,} -> {event['params_after']:,} "
                f"parameters, {event['seconds']:.2f}s)"
            )


def stacked_copies(old_spec, new_spec):
    """`{new block: (the blocks before it in its stage, nearest first)}`:
    each block `new_spec` adds starts as a copy of the first of them whose
    layers agree with its own (see `transfer.blocks.copy_blocks`)."""
    old = {b.name for b in build.blocks(old_spec)}
    blocks = build.blocks(new_spec)
    copies = {}
    for index, block in enumerate(blocks):
        if block.name in old or block.stage is None:
            continue
        before = [b.name for b in blocks[:index] if b.stage == block.stage]
        if before:
            copies[block.name] = tuple(reversed(before))
    return copies


class _AddBlockTo:
    """Successor: one more block at the end of `stage` (picklable, named)."""

    def __init__(self, stage):
        self.stage = stage

    def __call__(self, spec):
        return spec.with_block_added(self.stage)

    def __repr__(self):
        return f"add_block_to(stage={self.stage})"
