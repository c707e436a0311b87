"""Helpers every table and figure shares: missing values, number formats, summary statistics, record selection.

Cells that have no record are NaN, never zero; `num` prints them as ''. Numbers are printed
with fixed rules, so the same input gives the same bytes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NAN = float("nan")
METHOD_ORDER = ("original", "naive_retrain", "noop", "weight_pruning", "finetune", "random_relabel")
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


def pm(mean, sd, spec: str = ".4g") -> str:
    """"mean ± sd" (just the mean when sd is missing: one value)."""
    if missing(mean):
        return ""
    return num(mean, spec) if missing(sd) else f"{num(mean, spec)} ± {num(sd, spec)}"


def pms(frame: pd.DataFrame, key: str, spec: str = ".4g") -> list[str]:
    """"mean ± sd" for every row of `frame` from its columns `key` and `key_sd`."""
    return [pm(a, b, spec) for a, b in zip(frame[key], frame[f"{key}_sd"], strict=True)]


def nums(values: pd.Series, spec: str = ".4g") -> pd.Series:
    return values.map(lambda x: num(x, spec))


def delta(ours, ref) -> float:
    return NAN if missing(ours) or missing(ref) else float(ours) - float(ref)


def compare(ours, ref, spec: str = ".4g", unit: str = "") -> str:
    """"ours (paper ref; Δ ours − ref)", for sentences."""
    if missing(ours):
        return "not in this run"
    if missing(ref):
        return f"{num(ours, spec)}{unit}"
    return f"{num(ours, spec)}{unit} (paper {num(ref, spec)}{unit}; Δ {num(delta(ours, ref), spec)}{unit})"


def plural(n: int, word: str) -> str:
    """`word` with an s unless n is 1 (the count itself is not printed)."""
    return word if n == 1 else f"{word}s"


# -- frames -----------------------------------------------------------------------------------------------
def stats(values) -> tuple[float, float, int]:
    """mean, sample sd (NaN for fewer than 2) and count of the non-missing values."""
    v = pd.Series(values, dtype=float).dropna()
    n = len(v)
    return (float(v.mean()) if n else NAN, float(v.std(ddof=1)) if n > 1 else NAN, n)


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
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)


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
