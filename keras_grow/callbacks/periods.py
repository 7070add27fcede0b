"""Training between width-growth rounds: the learning rate within each
period and what the optimizer keeps across a round.

The Firefly authors' code trains each period (160 epochs on CIFAR) with a
fresh SGD optimizer at the base rate, times 0.1 at half the period and
again at three quarters (`main.py`; their decays fall one epoch earlier,
at the end of epochs n/2 - 1 and 3n/4 - 1 counted from 1). keras_grow's
default is a constant rate and the optimizer state carried over.
"""

import math

import keras

from keras_grow import keras_compat

PERIOD_SCHEDULES = ("constant", "cosine", "step")
AFTER_GROWTH = ("carry", "fresh")


def period_factor(schedule, epoch, period):
    """float. The learning-rate multiplier of `epoch` (0-based).

    Args:
        schedule: str. `"constant"` (1), `"cosine"` (from 1 down towards 0
            over each period) or `"step"` (1, then 0.1 from half the
            period, 0.01 from three quarters).
        epoch: int. The epoch, counted over the whole run.
        period: int. Epochs per growth period (`grow_every`).
    """
    t = epoch % period
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / period))
    if schedule == "step":
        return 0.1 ** ((t >= period // 2) + (t >= (3 * period) // 4))
    raise ValueError(
        f"Unknown period schedule {schedule!r}; known: {PERIOD_SCHEDULES}."
    )


def learning_rate_variable(optimizer, who):
    """The optimizer's learning-rate variable; a clear error if it follows
    a `LearningRateSchedule` (which a period schedule would fight)."""
    rate = keras_compat.learning_rate(optimizer)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) or not (
        hasattr(rate, "assign")
    ):
        raise ValueError(
            f"{who} sets the learning rate per growth period, so the optimizer "
            f"needs a constant learning rate; it has {rate!r}. Compile with "
            f"a float learning rate or use period_schedule='constant'."
        )
    return rate


def apply_factor(optimizer, who, factor, applied):
    """Moves the learning rate from multiplier `applied` to `factor`.

    The rate is multiplied by `factor / applied` rather than set, so what
    other callbacks did to it in between (`ReduceLROnPlateau`'s cuts)
    stays: a growth callback's schedule composes with theirs. Setting the
    same `factor` twice (a resumed epoch) changes nothing.

    Args:
        optimizer: the model's optimizer (a constant learning rate).
        who: str. The callback, for the error.
        factor: float > 0. The multiplier now due.
        applied: float > 0. The multiplier in the rate now.

    Returns:
        float. `factor`, to keep as the multiplier applied.
    """
    if factor != applied:
        rate = learning_rate_variable(optimizer, who)
        rate.assign(float(rate.numpy()) * factor / applied)
    return factor


def reset_optimizer_state(optimizer):
    """Zeroes every slot (momentum, Adam's moments) of `optimizer`, as a
    freshly made optimizer has; the step counter and learning rate stay."""
    keep = {id(optimizer.iterations), id(keras_compat.learning_rate(optimizer))}
    for variable in optimizer.variables:
        if id(variable) not in keep:
            variable.assign(keras.ops.zeros_like(variable))
