"""Failed growth: undo it. `attempt_growth` for an exception during a
callback's growth step, `GrowthGuard` for a non-finite loss right after."""

import math

import keras
from absl import logging

from keras_grow import growth_events
from keras_grow.callbacks.arguments import GivenArguments
from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_int

ON_FAILURE = ("rollback", "raise")


class GrowthFailedError(RuntimeError):
    """A growth was rolled back and the user asked training to stop."""


class NonFiniteDataError(ValueError):
    """The loss after a growth is not finite because the data is not."""


def attempt_growth(callback, grow, what):
    """Runs a callback's growth step; an exception in it is undone.

    If `grow()` raises, a growth it already made is rolled back
    (`GrowableModel.rollback`: graph, weights, optimizer as before) and a
    `growth_failed` event is logged. Then, with `callback.on_failure ==
    "rollback"`, training goes on (the callback tries again at its next
    decision point); with `"raise"` the exception propagates.

    Args:
        callback: a growth callback with `model` and `on_failure`.
        grow: callable without arguments: the growth step.
        what: str. What was being grown, for the log.

    Returns:
        bool. Whether the growth step succeeded.
    """
    model = callback.model
    body = model.body  # `grow` swaps it: a changed body means it grew
    try:
        grow()
        return True
    except Exception as error:  # any failure of the step is undone
        reason = f"{type(error).__name__}: {error}"
        if model.body is not body:
            model.rollback(reason)
        model.record_event(
            "growth_failed",
            {"callback": type(callback).__name__, "what": what, "reason": reason},
        )
        if callback.on_failure == "raise":
            raise
        logging.warning(
            "%s: growing %s failed (%s); the model is as before the attempt "
            "and training goes on.",
            type(callback).__name__,
            what,
            reason,
            exc_info=True,
        )
        return False


class GrowthGuard(GivenArguments, keras.callbacks.Callback):
    """Rolls a growth back when the loss right after it is not finite.

    Watches the first `batches` training steps after every growth (made by
    any callback, or by hand between `fit` calls). If the loss of one of
    them is NaN or infinite, the model returns to its pre-growth graph,
    weights and optimizer state (`GrowableModel.rollback`), the reason goes
    to the growth log, the epoch's running metrics restart, and training
    goes on; with `on_failure="raise"` it rolls back and then stops with a
    `GrowthFailedError`. Put it anywhere in the callback list.

    A non-finite loss whose batch holds NaN or infinite inputs, labels or
    sample weights is the data's fault, not the growth's: the guard keeps
    the growth and stops training with a `NonFiniteDataError` saying so
    (the model counts each batch's non-finite entries while a guard
    watches: `GrowableModel.watch_inputs`).

    Args:
        batches: int. Steps checked after each growth. Defaults to `1`.
        on_failure: str. `"rollback"` (and go on) or `"raise"` (roll back,
            then stop). Defaults to `"rollback"`.
        verbose: int. 1 prints a line when it rolls back. Defaults to `1`.

    Example:

    >>> import keras_grow as kg
    >>> guard = kg.callbacks.GrowthGuard(batches=2)
    >>> guard.on_failure
    'rollback'
    """

    def __init__(self, batches=1, on_failure="rollback", verbose=1):
        super().__init__()
        check_int(batches, "batches", 1)
        check_choice(on_failure, "on_failure", ON_FAILURE)
        self.batches = batches
        self.on_failure = on_failure
        self.verbose = verbose
        self._body = None
        self._left = 0

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "rollback"):
            raise TypeError(
                "GrowthGuard needs a keras_grow.GrowableModel; received "
                f"{type(self.model).__name__}."
            )
        self._body = id(self.model.body)
        self.model.watch_inputs()
        # A growth between `fit` calls is checked on the first steps too.
        log = self.model.growth_log
        self._left = self.batches if growth_events.growths(log[-1:]) else 0

    def on_train_batch_begin(self, batch, logs=None):
        body = id(self.model.body)
        if body != self._body:
            self._body = body
            self._left = self.batches

    def on_train_batch_end(self, batch, logs=None):
        if self._left == 0 or not logs or "loss" not in logs:
            return
        self._left -= 1
        loss = float(logs["loss"])
        if math.isfinite(loss):
            return
        bad_entries = self.model.nonfinite_inputs()
        if bad_entries:
            raise NonFiniteDataError(
                f"The loss is {loss} at batch {batch}, right after a growth, "
                f"but the cause is the data: that batch holds {bad_entries} "
                f"NaN or infinite values in its inputs, labels or sample "
                f"weights. The growth is kept (nothing rolled back). Clean "
                f"the data (e.g. np.nan_to_num, or drop those examples)."
            )
        reason = f"non-finite loss {loss} right after growth (batch {batch})"
        event = self.model.rollback(reason)
        self._body = id(self.model.body)
        self._left = 0
        self.model.reset_metrics()
        if self.verbose:
            print(
                f"GrowthGuard: {reason}; rolled back {event['from']} -> {event['to']}."
            )
        if self.on_failure == "raise":
            raise GrowthFailedError(
                f"Growth to {event['from']} failed ({reason}); the model was "
                f"rolled back to {event['to']}. Use on_failure='rollback' to "
                "go on training instead."
            )

    def on_train_end(self, logs=None):
        self.model.watch_inputs(False)
