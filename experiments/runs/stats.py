"""Means, paired differences and 95% confidence intervals for the studies.

The studies compare arms paired by seed (every arm of a seed starts from
the same checkpoint and sees the same data), so the uncertainty of a
difference is that of the per-seed differences: a Student t interval,
mean +/- t(0.975, n - 1) x sd / sqrt(n).
"""

import dataclasses
import math
import statistics

# t quantiles at 0.975 for 1..30 degrees of freedom (beyond: the normal's).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(degrees_of_freedom):
    """float. The 0.975 quantile of Student's t (1.96 beyond 30 df)."""
    if degrees_of_freedom < 1:
        raise ValueError(
            f"Needs at least 1 degree of freedom; got {degrees_of_freedom}."
        )
    if degrees_of_freedom > len(_T975):
        return 1.96
    return _T975[degrees_of_freedom - 1]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval over `n` values."""

    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self):
        return self.low > 0 or self.high < 0

    def format(self, scale=1.0, digits=2):
        """`+1.23 [+0.45, +2.01]`, values times `scale`; `+1.23 (n = 1, no
        interval)` for a single value."""
        f = f"{{:+.{digits}f}}"
        if self.n < 2:
            return f"{f.format(self.mean * scale)} (n = 1, no interval)"
        return (
            f"{f.format(self.mean * scale)} "
            f"[{f.format(self.low * scale)}, {f.format(self.high * scale)}]"
        )


def t_quantile(probability, degrees_of_freedom):
    """float. The `probability` quantile of Student's t (probability in
    (0.5, 1)), by bisection on its distribution function: for intervals
    at levels the table of `t975` does not hold (a multiplicity
    correction)."""
    if not 0.5 < probability < 1:
        raise ValueError(f"`probability` must be in (0.5, 1); got {probability}.")
    nu = float(degrees_of_freedom)
    scale = math.exp(
        math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    )

    def cdf(x, steps=4000):  # 0.5 + Simpson's rule of the density on [0, x]
        h = x / steps
        total = 0.0
        for i in range(steps + 1):
            weight = 1 if i in (0, steps) else 4 if i % 2 else 2
            total += weight * (1 + (i * h) ** 2 / nu) ** (-(nu + 1) / 2)
        return 0.5 + scale * total * h / 3

    low, high = 0.0, 1.0
    while cdf(high) < probability:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < probability else (low, middle)
    return (low + high) / 2


def interval(values, level=0.95):
    """The mean of `values` with its t interval at `level` (width 0 for
    one value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("An interval needs at least one value.")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return Interval(mean, mean, mean, 1)
    df = len(values) - 1
    quantile = t975(df) if level == 0.95 else t_quantile(0.5 + level / 2, df)
    half = quantile * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


def paired_difference(values, reference, level=0.95):
    """The interval of `values[i] - reference[i]` over the pairs.

    Args:
        values, reference: sequences of equal length, paired by position.
        level: float. The interval's confidence level.
    """
    if len(values) != len(reference):
        raise ValueError(
            f"Paired values need equal lengths; got {len(values)} and {len(reference)}."
        )
    return interval([a - b for a, b in zip(values, reference)], level)
