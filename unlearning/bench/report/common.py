"""Helpers every table and figure shares: missing values, number formats, summary statistics and their
intervals, record selection.

Cells that have no record are NaN, never zero; `num` prints them as ''. Numbers are printed
with fixed rules, so the same input gives the same bytes (bootstrap intervals too: their
resamples are seeded).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from ...common.schema import value_range

NAN = float("nan")
# the order of methods in every table and legend: the papers' and the reference methods, then the baselines of
# issue 21; any other (a plug-in) after them, by name, so nothing is dropped
METHOD_ORDER = ("original", "naive_retrain", "noop", "weight_pruning", "finetune", "random_relabel",
                "gradient_ascent", "neggrad_plus", "l1_sparse", "salun", "scrub", "sisa", "newton_removal")
# a forgetting record's `setting`: the method's preset settings, or the best point of its search
# (benchmarks/tuned/<dataset>.json); records made before the key was recorded ran the preset
PRESET, TUNED = "preset", "tuned"
# a dataset's quality column: the first of these its records carry (key, label, scale)
QUALITY = (("test_acc", "test acc %", 100.0), ("train_acc", "train acc %", 100.0),
           ("test_mse", "test MSE", 1.0), ("train_mse", "train MSE", 1.0), ("total_mse", "total MSE", 1.0))


# -- values and formats -----------------------------------------------------------------------------------
def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (not isinstance(x, str) and pd.isna(x))


SECONDS = "sig3"       # seconds in every table: 3 significant digits, never in exponent notation


def plain(x: float, digits: int) -> str:
    """`x` to `digits` significant digits in positional notation: 0.0000293 and 1460, not 2.93e-05 and 1.46e+03."""
    s = format(x, f".{digits}g")
    if "e" in s:
        exponent = int(s.split("e")[1])
        s = format(float(s), f".{max(0, digits - 1 - exponent)}f")
        s = s.rstrip("0").rstrip(".") if "." in s else s        # like "g": no trailing zeros
    return s


def num(x, spec: str = ".4g") -> str:
    """A number in a fixed format; '' when missing. spec "int" prints integral values without decimals
    (others with one); "sigN" N significant digits without exponent (`plain`); any other spec is a format spec."""
    if missing(x):
        return ""
    x = float(x)
    if spec == "int":
        s = f"{round(x)}" if x.is_integer() else f"{x:.1f}"
    elif spec.startswith("sig"):
        s = plain(x, int(spec[3:]))
    else:
        s = format(x, spec)
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def ci(mean, lo, hi, spec: str = ".4g") -> str:
    """"mean [lo, hi]": the mean and its interval (just the mean where there is no interval: one value)."""
    if missing(mean):
        return ""
    return num(mean, spec) if missing(lo) or missing(hi) else f"{num(mean, spec)} [{num(lo, spec)}, {num(hi, spec)}]"


def cis(frame: pd.DataFrame, key: str, spec: str = ".4g") -> list[str]:
    """"mean [lo, hi]" for every row of `frame` from its columns `key`, `key_lo` and `key_hi`."""
    return [ci(m, lo, hi, spec) for m, lo, hi in zip(frame[key], frame[f"{key}_lo"], frame[f"{key}_hi"], strict=True)]


def nums(values: pd.Series, spec: str = ".4g") -> pd.Series:
    return values.map(lambda x: num(x, spec))


def delta(ours, ref) -> float:
    return NAN if missing(ours) or missing(ref) else float(ours) - float(ref)


def compare(ours, ref, spec: str = ".4g", unit: str = "", lo=NAN, hi=NAN) -> str:
    """"ours (paper ref; Δ ours − ref)", for sentences; with our interval [lo, hi]:
    "ours [lo, hi] (paper ref, inside / outside our 95 % CI; Δ ours − ref)"."""
    if missing(ours):
        return "not in this run"
    shown = f"{ci(ours, lo, hi, spec)}{unit}"
    if missing(ref):
        return shown
    inside = IN_CI_WORDS[covers(lo, hi, ref)]
    return f"{shown} (paper {num(ref, spec)}{unit}{inside}; Δ {num(delta(ours, ref), spec)}{unit})"


# `covers`' answer in a sentence, after the paper's number
IN_CI_WORDS = {"yes": ", inside our 95 % CI", "no": ", outside our 95 % CI", "": ""}


def plural(n: int, word: str) -> str:
    """`word` with an s unless n is 1 (the count itself is not printed)."""
    return word if n == 1 else f"{word}s"


# -- frames -----------------------------------------------------------------------------------------------
def stats(values) -> tuple[float, float, int]:
    """mean, sample sd (NaN for fewer than 2) and count of the non-missing values."""
    v = pd.Series(values, dtype=float).dropna()
    n = len(v)
    return (float(v.mean()) if n else NAN, float(v.std(ddof=1)) if n > 1 else NAN, n)


# -- intervals --------------------------------------------------------------------------------------------
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


class Summary(NamedTuple):
    """A cell's values summarised: mean, sample sd, count, the mean's interval [lo, hi] and how it was made
    ("t", "bootstrap", "equal" where every value is the same, so the interval is that value; "" for none)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    method: str


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


UNBOUNDED = (-math.inf, math.inf)


def bounds(key: str | None, scale: float = 1.0) -> tuple[float, float]:
    """The range the values of record key `key` take, × `scale` (`unlearning.common.schema.value_range`; unbounded for
    a key the schema does not define): a mean lies in it too, so its interval is cut there without losing coverage."""
    low, high = value_range(key) if key else (None, None)
    return (-math.inf if low is None else low * scale, math.inf if high is None else high * scale)


def interval(values, limits: tuple[float, float] = UNBOUNDED) -> tuple[float, float, str]:
    """The `CONFIDENCE` interval of the mean of the non-missing `values`, cut at `limits`: (lo, hi, method).
    Student t (scipy.stats.ttest_1samp) from `T_MIN_VALUES` values on unless they are `skewed`, else a seeded
    bootstrap; (NaN, NaN, "") for fewer than 2 values: one value has no interval."""
    v = pd.Series(values, dtype=float).dropna().to_numpy()
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
    v = pd.Series(values, dtype=float) * scale
    return Summary(*stats(v), *interval(v, bounds(key, scale)))


def summary_columns(name: str, values, sd: bool = True, key: str | None = None, scale: float = 1.0) -> dict:
    """The columns of one summarised cell: `name` (the mean of `values` × `scale`), `name_sd` (unless `sd` is False),
    `name_lo`, `name_hi` (cut at the range of record key `key`, by default `name`)."""
    s = summary(values, name if key is None else key, scale)
    return {name: s.mean, **({f"{name}_sd": s.sd} if sd else {}), f"{name}_lo": s.lo, f"{name}_hi": s.hi}


def ratio_interval(numerator, denominator) -> tuple[float, float]:
    """The `CONFIDENCE` interval of mean(numerator) / mean(denominator) over pairs (one pair per seed; pairs with a
    missing side dropped): a paired seeded bootstrap (a ratio of means has no t interval). NaN for fewer than 2."""
    pairs = pd.DataFrame({"a": pd.Series(numerator, dtype=float).to_numpy(),
                          "b": pd.Series(denominator, dtype=float).to_numpy()}).dropna()
    if len(pairs) < 2:
        return NAN, NAN
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return (float(a[0] / b[0]),) * 2 if b[0] else (NAN, NAN)
    return _bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis), paired=True)


def covers(lo, hi, x) -> str:
    """"yes" where `x` lies in [lo, hi], "no" where not, "" where either is missing (no interval, no value)."""
    if missing(lo) or missing(hi) or missing(x):
        return ""
    return "yes" if float(lo) <= float(x) <= float(hi) else "no"


def covered(row, keys: dict[str, str]) -> str:
    """For a table's one "paper in our 95 % CI" column: "label yes, label no" over `keys` (column key -> label)
    from the row's `<key>_paper_in_ci`, leaving out keys with no answer ('')."""
    return ", ".join(f"{label} {row[f'{k}_paper_in_ci']}" for k, label in keys.items() if row[f"{k}_paper_in_ci"])


def col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column `name`, or all-missing when no record has the key."""
    return df[name] if name in df.columns else pd.Series(NAN, index=df.index, dtype=float)


def is_true(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v is True or v == 1 if not missing(v) else False).astype(bool)


def is_false(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v is False or v == 0 if not missing(v) else False).astype(bool)


def select(df: pd.DataFrame, paper: str, table: str) -> pd.DataFrame:
    """The records of one paper's table (benchmarks' `paper` and `table` keys)."""
    if df.empty or "paper" not in df.columns:
        return df.iloc[0:0]
    return df[(df["paper"] == paper) & (df["table"] == table)]


def rules(s: pd.DataFrame) -> str:
    return "; ".join(sorted(set(col(s, "rule").dropna().astype(str))))


def method_key(m: str) -> tuple:
    """Sort key of a method or its label (`label`): `METHOD_ORDER`, unknown methods after by name; a method's
    preset before its other settings."""
    base, _, setting = m.partition(" (")
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), base, setting)


def settings_of(df: pd.DataFrame) -> pd.Series:
    """Each record's `setting`, `PRESET` where it has none (runs saved before the key)."""
    return col(df, "setting").map(lambda v: PRESET if missing(v) else str(v)).astype(object)


def label(method: str, setting: str) -> str:
    """A method's name in tables and legends: the name for its preset, `salun (tuned)` for another setting."""
    return method if setting == PRESET else f"{method} ({setting})"


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with `setting` filled (`settings_of`) and each record's `label` (method and setting)."""
    out = df.assign(setting=settings_of(df))
    return out.assign(label=[label(m, s) for m, s in zip(out["method"], out["setting"], strict=True)])


def dataset_order(df: pd.DataFrame, names) -> list[str]:
    """`names` (datasets of `df`) smallest first: by the largest `train_size` their records carry, then by name;
    datasets without a train size last."""
    sizes = col(df, "train_size").groupby(col(df, "dataset")).max() if not df.empty else pd.Series(dtype=float)

    def key(name: str) -> tuple:
        size = sizes.get(name, NAN)
        return (missing(size), 0.0 if missing(size) else float(size), name)
    return sorted(set(names), key=key)


def quality_metric(s: pd.DataFrame) -> tuple[str, str, float]:
    """The dataset's quality column: test accuracy, else MSE (test, else train where there is no test set)."""
    for key, label, scale in QUALITY:
        if col(s, key).notna().any():
            return key, label, scale
    return "", "", 1.0


def series_matrix(series: list) -> np.ndarray:
    """Series of different lengths as one array, aligned at index 0 and padded with NaN."""
    series = [list(s) if isinstance(s, (list, tuple, np.ndarray)) else [] for s in series]
    width = max((len(s) for s in series), default=0)
    out = np.full((len(series), width), np.nan)
    for i, s in enumerate(series):
        out[i, :len(s)] = [NAN if v is None else float(v) for v in s]
    return out
