"""The concepts `AutoGrow` composes, each small and tested alone.

- `RunningBest`: the running best of the monitored metric and its gain
  over a window of epochs (the run-max rule of the paper).
- `StoppingRule`: a stage stops when that gain falls below tau.
- `GrowthPolicy`: when a growth boundary comes (periodic: every K epochs;
  convergent: after K epochs once the metric has plateaued).
- `next_stage`: the round-robin stage scheduler.
- `FineTuneSchedule`: the learning rate while fine-tuning.
- `AutoGrowState`: the run state, as `get_state()` saves it.

Reference:
    Wen, Yan, Chen, Li. "AutoGrow: Automatic Layer Growing in Deep
    Convolutional Networks". KDD 2020. https://arxiv.org/abs/1906.02909
"""

import copy
import dataclasses
import math

from absl import logging

from keras_grow.callbacks.arguments import check_choice
from keras_grow.callbacks.arguments import check_fraction
from keras_grow.callbacks.arguments import check_int
from keras_grow.callbacks.arguments import check_non_negative

MODES = ("auto", "max", "min")
POLICIES = ("periodic", "convergent")
PHASES = ("growing", "fine_tuning", "done")


@dataclasses.dataclass(frozen=True)
class RunningBest:
    """The running best of a monitored metric over a run.

    Args:
        monitor: str. The epoch log key. Defaults to `"val_accuracy"`.
        mode: str. `"max"`, `"min"` or `"auto"` (max for accuracies and
            AUCs, min otherwise). Defaults to `"auto"`.
    """

    monitor: str = "val_accuracy"
    mode: str = "auto"

    def __post_init__(self):
        check_choice(self.mode, "mode", MODES)

    @property
    def maximize(self):
        """bool. Whether larger values are better."""
        if self.mode != "auto":
            return self.mode == "max"
        return "acc" in self.monitor or "auc" in self.monitor

    def read(self, logs):
        """float or `None`: the monitored value of `logs` (a warning listing
        the available keys when it is missing)."""
        value = logs.get(self.monitor)
        if value is None:
            logging.warning(
                "AutoGrow: the monitored metric `%s` is not in the logs, so "
                "no stage can stop at this epoch. Available keys: %s.",
                self.monitor,
                ", ".join(sorted(logs)) or "(none)",
            )
            return None
        return float(value)

    def check_seen(self, values, logs):
        """Raises a ValueError if no epoch in `values` had the metric: a
        stopping decision on a metric that is never logged would never
        stop anything."""
        if any(v is not None for v in values):
            return
        raise ValueError(
            f"AutoGrow monitors `{self.monitor}`, which no epoch has logged; "
            f"the logs have: {', '.join(sorted(logs)) or '(none)'}. Pass "
            "validation_data to fit (for val_* metrics), add the metric to "
            "compile, or monitor one of the keys above."
        )

    def best(self, values, upto):
        """The best of `values[0..upto]` (`None` entries skipped), or `None`."""
        seen = [v for v in values[: upto + 1] if v is not None]
        if not seen:
            return None
        return max(seen) if self.maximize else min(seen)

    def improvement(self, values, window):
        """(gain of the running best over the last `window` epochs, now, then).

        The gain is `math.inf` while fewer than `window` epochs (with a
        value) have been seen; all three are `None` when no value was ever
        available.
        """
        last = len(values) - 1
        now = self.best(values, last)
        if now is None:
            return None, None, None
        then = self.best(values, last - window) if last - window >= 0 else None
        if then is None:
            return math.inf, now, None
        gain = now - then if self.maximize else then - now
        return gain, now, then


@dataclasses.dataclass(frozen=True)
class StoppingRule:
    """The most recently grown stage stops when the running best improved
    by less than `min_delta` over `patience` epochs.

    Args:
        patience: int. J, the window in epochs.
        min_delta: float. tau, in the units of the monitored metric.
    """

    patience: int
    min_delta: float

    def __post_init__(self):
        check_int(self.patience, "patience", 1)
        check_non_negative(self.min_delta, "min_delta")

    def decide(self, running_best, values):
        """(whether to stop, the evidence as a JSON-able dict)."""
        gain, now, then = running_best.improvement(values, self.patience)
        decided_by = {
            "monitor": running_best.monitor,
            "best_now": now,
            "best_then": then,
            "improvement": None if gain is None or math.isinf(gain) else gain,
            "patience": self.patience,
            "min_delta": self.min_delta,
        }
        return gain is not None and gain < self.min_delta, decided_by


@dataclasses.dataclass(frozen=True)
class GrowthPolicy:
    """When a growth boundary comes.

    Args:
        kind: str. `"periodic"` (p-AutoGrow: every `period` epochs) or
            `"convergent"` (c-AutoGrow: after `period` epochs, and, with
            `convergence_patience`, once the running best improved by less
            than `min_delta` over that many epochs).
        period: int. K.
        convergence_patience: int or `None`.
        min_delta: float. The plateau threshold of the convergent policy.
    """

    kind: str
    period: int
    convergence_patience: int | None = None
    min_delta: float = 0.0

    def __post_init__(self):
        check_choice(self.kind, "policy", POLICIES)
        check_int(self.period, "growth_period", 1)
        check_int(self.convergence_patience, "convergence_patience", 1, allow_none=True)

    def at_boundary(self, epochs_since_boundary, running_best, values):
        """bool. Whether this epoch's end is a growth boundary."""
        if epochs_since_boundary < self.period:
            return False
        if self.kind == "periodic" or self.convergence_patience is None:
            return True
        gain, _, _ = running_best.improvement(values, self.convergence_patience)
        return gain is not None and gain < self.min_delta


def next_stage(growing, start):
    """Round robin: the first growing stage at or after `start`, wrapping."""
    growing = sorted(growing)
    later = [s for s in growing if s >= start]
    return later[0] if later else growing[0]


@dataclasses.dataclass(frozen=True)
class FineTuneSchedule:
    """The learning rate while fine-tuning: a base rate, dropped by
    `factor` at each boundary (fractions of `epochs`).

    Args:
        epochs: int. N, epochs of fine-tuning.
        lr: float or `None`. The base rate; `None` uses the optimizer's at
            the start of training.
        factor: float in (0, 1]. Multiplier at each drop.
        boundaries: tuple of increasing fractions in (0, 1).
    """

    epochs: int
    lr: float | None = None
    factor: float = 0.1
    boundaries: tuple = (0.5, 0.75)

    def __post_init__(self):
        check_int(self.epochs, "fine_tune_epochs", 0)
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"`fine_tune_lr` must be > 0; received {self.lr!r}.")
        check_fraction(self.factor, "fine_tune_lr_factor")
        boundaries = tuple(self.boundaries)
        if any(not 0 < b < 1 for b in boundaries) or list(boundaries) != sorted(
            boundaries
        ):
            raise ValueError(
                "`fine_tune_lr_boundaries` must be increasing fractions in "
                f"(0, 1); received {self.boundaries!r}."
            )
        object.__setattr__(self, "boundaries", boundaries)

    def multiplier(self, epoch, start):
        """float. The multiplier of `epoch` for a fine-tune started at
        `start`: `factor` to the number of drops passed (1 at the start)."""
        progress = (epoch - start) / max(self.epochs, 1)
        drops = sum(progress >= b for b in self.boundaries)
        return self.factor**drops


@dataclasses.dataclass
class AutoGrowState:
    """AutoGrow's run state; `to_dict()` is what `get_state()` saves.

    Args:
        phase: str. `"growing"`, `"fine_tuning"` or `"done"`.
        growing: list of int. Stages still growing.
        next_stage: int. Where round robin looks next.
        last_grown: int or `None`. The stage grown at the last boundary.
        values: list. The monitored value of every epoch (`None` if absent).
        epochs_since_boundary: int.
        fine_tune_start: int or `None`. The first fine-tune epoch.
        initial_lr: float or `None`. The optimizer's rate at the start.
        epoch: int. The last epoch seen.
        lr_factor: float or `None`. The fine-tune multiplier in the rate
            now (`None` before the fine-tune sets it).
    """

    phase: str
    growing: list
    next_stage: int = 0
    last_grown: int | None = None
    values: list = dataclasses.field(default_factory=list)
    epochs_since_boundary: int = 0
    fine_tune_start: int | None = None
    initial_lr: float | None = None
    epoch: int = -1
    lr_factor: float | None = None

    @classmethod
    def fresh(cls, num_stages):
        return cls("growing", list(range(num_stages)))

    @classmethod
    def from_dict(cls, state):
        """Raises ValueError for anything `to_dict` did not write."""
        names = {f.name for f in dataclasses.fields(cls)}
        if (
            not isinstance(state, dict)
            or state.get("phase") not in PHASES
            # States saved before `lr_factor` existed lack only it.
            or not names - {"lr_factor"} <= set(state) <= names
        ):
            raise ValueError(f"Not an AutoGrow state: {state!r}.")
        return cls(**copy.deepcopy(state))

    def to_dict(self):
        """dict. JSON-serialisable."""
        return dataclasses.asdict(self)
