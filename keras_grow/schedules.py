"""Learning-rate schedules for runs that grow.

A growth carries the optimizer's step count (`keras_grow.optimizer_carry`),
so any Keras `LearningRateSchedule` goes on across growth where it was.
`WarmupStableDecay` adds what progressive training asks of a schedule: a
long constant phase the growths happen in, a full decay at the end, and
optionally a short warm-up again after each growth.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_grow")
class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up, a constant rate, then a linear decay (WSD).

    The rate rises linearly from 0 to `peak` over `warmup_steps`, stays at
    `peak`, and falls linearly to `final` over the last `decay_steps` of
    `total_steps`. With `rewarmup_at` (steps, e.g. the growths of a
    `ProgressiveGrowth` plan times the steps per epoch), the rate is scaled
    by `(step - s + 1) / rewarmup_steps` for the `rewarmup_steps` steps from each
    such step `s`, so new units do not meet the full rate at once.

    Args:
        peak: float. The rate of the constant phase.
        total_steps: int. The run's optimizer steps.
        warmup_steps: int. Defaults to `0`.
        decay_steps: int. The steps of the final decay. Defaults to
            `total_steps // 5`.
        final: float. The rate at `total_steps`. Defaults to `0.0`.
        rewarmup_at: sequence of int. Steps after which the rate warms up
            again. Defaults to `()`.
        rewarmup_steps: int. Length of each re-warm-up. Defaults to `0`.

    Example:

    >>> import keras, keras_grow as kg
    >>> schedule = kg.schedules.WarmupStableDecay(0.1, total_steps=1000,
    ...                                           warmup_steps=50)
    >>> optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    """

    def __init__(
        self,
        peak,
        total_steps,
        warmup_steps=0,
        decay_steps=None,
        final=0.0,
        rewarmup_at=(),
        rewarmup_steps=0,
    ):
        decay_steps = total_steps // 5 if decay_steps is None else decay_steps
        for name, value in (
            ("total_steps", total_steps),
            ("warmup_steps", warmup_steps),
            ("decay_steps", decay_steps),
            ("rewarmup_steps", rewarmup_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"`{name}` must be an integer >= 0; received {value!r}."
                )
        if warmup_steps + decay_steps > total_steps:
            raise ValueError(
                f"warmup_steps + decay_steps ({warmup_steps} + {decay_steps}) "
                f"exceed total_steps ({total_steps})."
            )
        if not peak > 0 or final < 0:
            raise ValueError(
                f"`peak` must be > 0 and `final` >= 0; received {peak!r}, {final!r}."
            )
        self.peak, self.final = float(peak), float(final)
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.decay_steps = decay_steps
        self.rewarmup_at = tuple(int(s) for s in rewarmup_at)
        self.rewarmup_steps = rewarmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.peak, "float32")
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, step / self.warmup_steps)
        if self.decay_steps:
            start = float(self.total_steps - self.decay_steps)
            left = ops.clip((step - start) / self.decay_steps, 0.0, 1.0)
            rate = rate + (self.final - self.peak) * left
        if self.rewarmup_steps:
            for at in self.rewarmup_at:
                since = (step - at + 1) / self.rewarmup_steps
                ramp = ops.where(step >= at, ops.clip(since, 0.0, 1.0), 1.0)
                rate = rate * ramp
        return rate

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "final": self.final,
            "rewarmup_at": list(self.rewarmup_at),
            "rewarmup_steps": self.rewarmup_steps,
        }
