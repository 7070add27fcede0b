"""Keras' traced step functions of a `GrowableModel` across growth.

Keras traces a model's train, test and predict functions at their first
call. A growth swaps the body, so the functions are dropped and traced
anew; a rollback puts back the ones traced for the body it restores, when
nothing they were traced with changed since. The first call after a change
is timed: it holds what the change really costs beyond `grow` itself.
"""

import time

from keras_grow import keras_compat

KINDS = ("train", "test", "predict")


def current(model):
    """(train, test, predict) functions of `model` as they are now."""
    return tuple(getattr(model, f"{kind}_function") for kind in KINDS)


def compiled_as(model):
    """What the step functions were traced with besides the body and
    optimizer: the compiled loss and metrics objects and settings."""
    return (
        *keras_compat.compiled_loss_and_metrics(model),
        getattr(model, "jit_compile", None),
        getattr(model, "steps_per_execution", 1),
    )


def restore(model, functions):
    """Puts back functions from `current` (traced for the same body,
    optimizer and `compiled_as`)."""
    for kind, function in zip(KINDS, functions):
        setattr(model, f"{kind}_function", function)


def restore_or_reset(model, functions, compiled_as_then, same_optimizer):
    """After a rollback: puts back `functions` (from `current`) when they
    were traced with the body, optimizer and `compiled_as` the model has
    again (no retrace; functions never called are traced at their first
    call, and timed as usual), else drops them (`reset`)."""
    if same_optimizer and all(
        x is y for x, y in zip(compiled_as_then, compiled_as(model))
    ):
        restore(model, functions)
    else:
        reset(model)


def reset(model):
    """Drops the traced functions after an architecture change.

    `fit` calls `model.train_function` anew every step, so a rebuilt
    function trains the new graph from the very next batch; test and
    predict functions are rebuilt lazily when next needed.
    """
    rebuild_train = model.train_function is not None
    for kind in KINDS:
        setattr(model, f"{kind}_function", None)
    if rebuild_train:
        model.make_train_function()


def make_timed(model, kind, make, force, on_first_call):
    """Keras' `make_<kind>_function` (`make`), whose new function's first
    call is timed and reported as `on_first_call(kind, seconds)`; after
    that call Keras' function is put back, so later steps pay nothing.

    Returns:
        The model's `<kind>_function`.
    """
    attribute = f"{kind}_function"
    made = force or getattr(model, attribute) is None
    make(force)
    if not made:
        return getattr(model, attribute)
    function = getattr(model, attribute)

    def timed(*args, **kwargs):
        if getattr(model, attribute) is timed:
            setattr(model, attribute, function)
        start = time.perf_counter()
        outputs = function(*args, **kwargs)
        on_first_call(kind, time.perf_counter() - start)
        return outputs

    setattr(model, attribute, timed)
    return timed


class TimedSteps:
    """Mixin of `GrowableModel`: Keras' train and test functions, whose
    first call after a change is reported to `self._record_retrace`."""

    def make_train_function(self, force=False):
        return make_timed(
            self, "train", super().make_train_function, force, self._record_retrace
        )

    def make_test_function(self, force=False):
        return make_timed(
            self, "test", super().make_test_function, force, self._record_retrace
        )
