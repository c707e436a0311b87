"""The one summary of repeated values (seeds, trials, models, records): mean, sd, count and the mean's interval.

The CLI's per-method table (`unlearning.running.cli`) and the report's tables (`unlearning.bench.report`) both call
`summary`, so the same values give the same interval in both. numpy and scipy only (no torch, no pandas: the CLI
needs neither to print its table).

- mean x̄ = Σ x / n and sample sd s = √(Σ (x − x̄)² / (n − 1)) over the non-missing values (None and NaN are missing).
- The mean's `CONFIDENCE` interval (`interval`):
  - Student t, x̄ ± t(1 − (1 − CONFIDENCE) / 2, n − 1) · s / √n (`scipy.stats.ttest_1samp(...).confidence_interval`),
    from `T_MIN_VALUES` values on, unless the values are skewed (`skewed`: `scipy.stats.skewtest` rejects symmetry at
    `SKEW_ALPHA`, testable from `SKEW_MIN_VALUES` values on);
  - else a seeded bootstrap (`scipy.stats.bootstrap`: BCa, percentile where BCa is undefined);
  - [x, x] where every value is x; none (NaN, NaN) for fewer than 2 values.
- Every interval is cut at the range the quantity allows (`bounds`: `unlearning.common.schema.value_range` of the
  record key, × the display scale): the mean lies in that range too, so the cut keeps the coverage and removes only
  impossible values (an accuracy above 100 %, seconds below 0). Intervals need not be symmetric about the mean
  (bootstrap, cut): print them as `mean [lo, hi]`, never `mean ± h`.
- A ratio of means over paired values (`ratio_interval`): a paired seeded bootstrap (no t interval exists for it).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

from .schema import value_range

NAN = float("nan")
CONFIDENCE = 0.95
# Fewer values than this: bootstrap instead of Student t (the rule: t over seeds from 3 values on). Measured
# on simulated cells (2,000 each, normal values): the bootstrap interval of 2 values is their range and holds the
# mean 51 % of the time, t's 95 %; no cell of the committed report has 2 values. Set it to 2 for t there.
T_MIN_VALUES = 3
# "Skewed": scipy.stats.skewtest (D'Agostino) rejects a symmetric distribution at SKEW_ALPHA, which it can test from
# SKEW_MIN_VALUES values on (scipy's minimum). Below that, skewness cannot be told from noise and t is kept. Measured
# on simulated cells (2,000 each) at 3 values: t holds the mean 94 % of the time for normal values and 85 % for
# lognormal ones; a BCa bootstrap 72 % and 64 %; a fixed cut on the sample skewness (|G1| > 1, Bulmer's "highly
# skewed") flags 61 % of normal 3-value cells and drops them to 80 %. At 8 and 16 values the test flags 5 % of normal
# cells (its size) and 42 % / 78 % of lognormal ones, and the coverage stays t's (95 %; 82 % / 85 % lognormal).
SKEW_ALPHA = 0.05
SKEW_MIN_VALUES = 8
# scipy.stats.bootstrap: BCa (corrects the percentile interval for bias and skew), seeded so the same values give
# the same bytes; percentile where BCa is undefined (its acceleration needs jackknife values that differ).
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
INTERVAL_NOTE = (f"[lo, hi]: {CONFIDENCE * 100:g} % interval of the mean: Student t over the values (seeds, trials "
                 f"or records) from {T_MIN_VALUES} values on, a bootstrap (BCa, {BOOTSTRAP_RESAMPLES} seeded "
                 f"resamples) below {T_MIN_VALUES} or where the values are skewed (scipy's skewtest rejects symmetry "
                 f"at {SKEW_ALPHA:g}, from {SKEW_MIN_VALUES} values on); the bootstrap interval of 2 values is their "
                 "range, which holds the mean only about half the time: read it as their spread. Intervals are cut at "
                 "the range the quantity allows (an accuracy at 100 %, seconds at 0), which keeps their coverage; one "
                 "value: no interval.")
UNBOUNDED = (-math.inf, math.inf)


class Summary(NamedTuple):
    """A cell's values summarised: mean, sample sd, count, the mean's interval [lo, hi] and how it was made
    ("t", "bootstrap", "equal" where every value is the same, so the interval is that value; "" for none)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    method: str


def present(values) -> np.ndarray:
    """The non-missing `values` as floats (None and NaN are missing)."""
    v = np.asarray(values, dtype=float).ravel()
    return v[~np.isnan(v)]


def stats(values) -> tuple[float, float, int]:
    """mean, sample sd (NaN for fewer than 2) and count of the non-missing values."""
    v = present(values)
    n = len(v)
    return (float(np.mean(v)) if n else NAN, float(np.std(v, ddof=1)) if n > 1 else NAN, n)


def _bootstrap(samples: tuple, statistic, paired: bool = False) -> tuple[float, float]:
    """The `CONFIDENCE` interval of `statistic` by scipy.stats.bootstrap: BCa, else percentile."""
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():          # a degenerate BCa warns and gives NaN: the percentile follows
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.bootstrap(samples, statistic, paired=paired, confidence_level=CONFIDENCE, method=method,
                                n_resamples=BOOTSTRAP_RESAMPLES, rng=np.random.default_rng(BOOTSTRAP_SEED))
        lo, hi = (float(x) for x in res.confidence_interval)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return NAN, NAN


def skewed(values) -> bool:
    """Whether `values` (not all equal) are skewed: `SKEW_MIN_VALUES` or more, and scipy.stats.skewtest rejects
    symmetry at `SKEW_ALPHA`."""
    v = np.asarray(values, dtype=float)
    if len(v) < SKEW_MIN_VALUES:
        return False
    with warnings.catch_warnings():      # nearly equal values: scipy warns of precision loss; their interval is tiny
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(sps.skewtest(v).pvalue < SKEW_ALPHA)


def bounds(key: str | None, scale: float = 1.0) -> tuple[float, float]:
    """The range the values of record key `key` take, × `scale` (`unlearning.common.schema.value_range`; unbounded for
    a key the schema does not define): a mean lies in it too, so its interval is cut there without losing coverage."""
    low, high = value_range(key) if key else (None, None)
    return (-math.inf if low is None else low * scale, math.inf if high is None else high * scale)


def interval(values, limits: tuple[float, float] = UNBOUNDED) -> tuple[float, float, str]:
    """The `CONFIDENCE` interval of the mean of the non-missing `values`, cut at `limits`: (lo, hi, method).
    Student t (scipy.stats.ttest_1samp) from `T_MIN_VALUES` values on unless they are `skewed`, else a seeded
    bootstrap; (NaN, NaN, "") for fewer than 2 values: one value has no interval."""
    v = present(values)
    if len(v) < 2:
        return NAN, NAN, ""
    if np.ptp(v) == 0:        # no spread at all: every method's interval is the value (t's and bootstrap's alike)
        return float(v[0]), float(v[0]), "equal"
    if len(v) >= T_MIN_VALUES and not skewed(v):
        (lo, hi), method = sps.ttest_1samp(v, 0.0).confidence_interval(CONFIDENCE), "t"
    else:
        (lo, hi), method = _bootstrap((v,), np.mean), "bootstrap"
    return float(np.clip(lo, *limits)), float(np.clip(hi, *limits)), method


def summary(values, key: str | None = None, scale: float = 1.0) -> Summary:
    """`stats` of `values` × `scale` with the mean's interval (`interval`), cut at the range of record key `key`."""
    v = present(values) * scale
    return Summary(*stats(v), *interval(v, bounds(key, scale)))


def ratio_interval(numerator, denominator) -> tuple[float, float]:
    """The `CONFIDENCE` interval of mean(numerator) / mean(denominator) over pairs (one pair per seed; pairs with a
    missing side dropped): a paired seeded bootstrap (a ratio of means has no t interval). NaN for fewer than 2."""
    a, b = np.asarray(numerator, dtype=float).ravel(), np.asarray(denominator, dtype=float).ravel()
    if len(a) != len(b):
        raise ValueError(f"ratio_interval: {len(a)} numerators and {len(b)} denominators; one pair per seed needed")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return NAN, NAN
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return (float(a[0] / b[0]),) * 2 if b[0] else (NAN, NAN)
    return _bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis), paired=True)
