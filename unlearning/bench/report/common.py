"""Helpers every table and figure shares: missing values, number formats, summary columns, record selection.

The mean and its interval come from `unlearning.common.summary` (the one summary the CLI prints too); this module
re-exports it and adds the pandas side (`summary_columns`, the `_lo` / `_hi` columns of a table).

Cells that have no record are NaN, never zero; `num` prints them as ''. Numbers are printed
with fixed rules, so the same input gives the same bytes (bootstrap intervals too: their
resamples are seeded).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...common.summary import INTERVAL_NOTE, ratio_interval, stats, summary  # noqa: F401  (the tables' import)

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
        s = format(float(s), f".{max(0, digits - 1 - int(s.split('e')[1]))}f")
        s = s.rstrip("0").rstrip(".") if "." in s else s        # like "g": no trailing zeros
    return s


def num(x, spec: str = ".4g") -> str:
    """A number in a fixed format; '' when missing. spec "int" prints integral values without decimals (others with
    one); "sigN": N significant digits without exponent (`plain`); any other spec is a format spec."""
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


def shown(d: pd.DataFrame, columns) -> pd.DataFrame:
    """A table's formatted frame from its column specs, in order: (label, key, spec) prints column `key` with `nums`,
    or as "mean [lo, hi]" (`cis`) where the spec is in brackets ("[.3f]"); (label, key) copies column `key`;
    (label, values) takes a list of values as they are."""
    def cell(key, spec: str | None = None):
        if not isinstance(key, str):
            return key
        if spec is None:
            return d[key]
        return cis(d, key, spec[1:-1]) if spec.startswith("[") else nums(d[key], spec)
    return pd.DataFrame({label: cell(*how) for label, *how in columns})


def ordered(df: pd.DataFrame, key) -> pd.DataFrame:
    """`df`'s rows sorted by `key(row)`, stable, the index kept."""
    return df.iloc[sorted(range(len(df)), key=lambda i: key(df.iloc[i]))]


def beside(key: str, ours, lo, hi, ref) -> dict:
    """The paper's columns of `key`: `key_paper` (`ref`), `key_delta` (ours − ref) and `key_paper_in_ci` (`covers`)."""
    return {f"{key}_paper": ref, f"{key}_delta": delta(ours, ref), f"{key}_paper_in_ci": covers(lo, hi, ref)}


def versus(key: str, label: str, spec: str, paper_spec: str | None = None) -> tuple:
    """`shown`'s columns of `key` beside the paper's: ours [95 % CI], the paper's (`paper_spec`, else `spec`), Δ."""
    return ((label, key, f"[{spec}]"), (f"{label} (paper)", f"{key}_paper", paper_spec or spec),
            (f"Δ {label}", f"{key}_delta", spec))


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


# -- summaries (the one summary the CLI shares: `unlearning.common.summary`) -------------------------------
def summary_columns(name: str, values, sd: bool = True, key: str | None = None, scale: float = 1.0) -> dict:
    """The columns of one summarised cell: `name` (the mean of `values` × `scale`), `name_sd` (unless `sd` is False),
    `name_lo`, `name_hi` (cut at the range of record key `key`, by default `name`)."""
    s = summary(values, name if key is None else key, scale)
    return {name: s.mean, **({f"{name}_sd": s.sd} if sd else {}), f"{name}_lo": s.lo, f"{name}_hi": s.hi}


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
