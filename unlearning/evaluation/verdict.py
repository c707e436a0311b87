"""Did a method forget? One audit cell's verdict as a statistical test with stated error rates.

Input: the challenge's per-example statistic φ (`forgetting.logit_confidence`) of the M forget
examples under N unlearned models `u` (N, M) and N' retrained reference models `r` (N', M).
Every choice is a named constant below; scipy.stats does the testing, resampling and intervals.

1. **Difference test** (`difference`). H0: unlearned and retrained models are exchangeable.
   A permutation test over the N + N' pooled models (`scipy.stats.permutation_test`,
   `N_PERMUTATIONS` seeded resamples; a resample moves a model's whole row of φ, so the
   dependence between examples through a model is kept) on two statistics:
   - `shift`: the mean over examples of the standardised shift (ū_j − r̄_j) / s_j, s_j the
     retrained models' sd of φ_j: memorisation (> 0) or over-forgetting (< 0) that moves the
     examples one way; two-sided. This is also the effect the margin is stated in.
   - `spread`: the mean over examples of the squared standardised shift: a shift of part of the
     examples, either way, that cancels in the mean ("half the examples shifted"); one-sided.
   The cell's p-value is min(1, 2 · min(p_shift, p_spread)) (Bonferroni over the two).
   F itself is not the test statistic: it is a step function of ranks (its permutation
   p-values are lumpy) and its bins discard the size of a shift; it is reported beside the
   verdict, read against its null mean (`f_null`).
2. **Equivalence** (`equivalence`). The effect (`shift`) gets a `CONFIDENCE` bootstrap interval
   (`scipy.stats.bootstrap`, BCa, `N_BOOTSTRAP` seeded resamples of the unlearned models, the
   retrained models and the forget examples, each independently): inside ±`MARGIN` it is
   equivalent to retraining within the margin (two one-sided tests at `ALPHA` ⇔ a 1 − 2α interval).
3. **Verdict** (`decide`), in this order:
   - fewer than `MIN_FORGET_POINTS` forget examples: `too few points` (p and interval still shown);
   - p ≤ `ALPHA` (adjusted across a report's cells by `adjust`): `did not forget`;
   - the no-op of the same cell not rejected: `cannot tell` (doing nothing is not told apart
     from retraining there, so no method can be said to forget on that cell);
   - the interval inside ±`MARGIN`: `forgot`;
   - otherwise `cannot tell`, with `power`: the chance that the difference test rejects a
     shift of one margin in every example (normal approximation to the permutation null).
4. **Multiple cells** (`adjust`): Benjamini–Hochberg (`scipy.stats.false_discovery_control`)
   across the cells of a report: at most `ALPHA` of the "did not forget" verdicts are expected
   false. Holm would control the chance of any false one, but with ~100 cells it needs
   p < 0.05 / 100, below what `N_PERMUTATIONS` resamples can show.

The error rates of this rule are measured on simulated panels whose truth is known
(`simulate`; `benchmarks/test_verdict.py` at each profile's N and M).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from . import forgetting as fg

ALPHA = 0.05                  # size of the difference test; FDR of a report's "did not forget" verdicts
MARGIN = 0.25                 # equivalence margin: ± this many retrained sd of φ, on average over the forget set
CONFIDENCE = 1 - 2 * ALPHA    # the equivalence interval: two one-sided tests at ALPHA
N_PERMUTATIONS = 2000         # resamples of the permutation test (smallest p-value: 1 / 2001)
N_BOOTSTRAP = 2000            # resamples of each bootstrap interval
MIN_FORGET_POINTS = 20        # no verdict below this many forget examples (synthetic's cells have 2)
ADJUSTMENT = "bh"             # Benjamini–Hochberg across a report's cells
SD_FLOOR = 1e-9               # s_j floored at SD_FLOOR · (1 + |r̄_j|): identical retrained models give no ∞
NULL_DRAWS = 2 ** 17          # orderings drawn for F's null mean where they are too many to enumerate
F_CONFIDENCE = 0.95           # intervals of F and of the ceiling (over the forget examples)
VERDICTS = ("forgot", "cannot tell", "did not forget", "too few points")


# -- statistics ---------------------------------------------------------------------------------------
def _standardised(u: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(ū_j − r̄_j) / s_j over the models axis (−2) of (..., N, M) and (..., N', M) arrays."""
    r_mean = r.mean(axis=-2)
    sd = np.maximum(r.std(axis=-2, ddof=1), SD_FLOOR * (1 + np.abs(r_mean)))
    return (u.mean(axis=-2) - r_mean) / sd


def shift(u, r) -> np.ndarray:
    """The effect: the mean over the forget examples of the standardised shift of φ (0: as retraining)."""
    return _standardised(np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)).mean(axis=-1)


def spread(u, r) -> np.ndarray:
    """The mean over the forget examples of the squared standardised shift."""
    return (_standardised(np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)) ** 2).mean(axis=-1)


def _check(u, r) -> tuple[np.ndarray, np.ndarray]:
    u, r = np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1] or not u.shape[1]:
        raise ValueError(f"give φ as (models, examples) arrays over the same forget examples; got {u.shape} and "
                         f"{r.shape}")
    if min(len(u), len(r)) < 3:
        raise ValueError(f"the verdict needs at least 3 models per group, got {len(u)} unlearned and {len(r)} "
                         "retrained")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("the verdict got non-finite φ (a model produced inf/nan)")
    return u, r


# -- 1. the difference test -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    p_value: float
    p_shift: float
    p_spread: float
    effect: float


def power(r, n_unlearned: int, *, alpha: float = ALPHA, margin: float = MARGIN) -> float:
    """The chance that the difference test rejects when every forget example's φ is shifted by one
    `margin` (in retrained sd), at `n_unlearned` unlearned models against the retrained `r` (N', M).
    Normal approximation: the effect's sd when both groups vary as the retrained models do is
    √(v (1/N + 1/N')), v the variance across retrained models of their mean standardised φ (it holds
    the correlation of examples through a model); the shift statistic alone, two-sided at α / 2."""
    r = np.asarray(r, dtype=np.float64)
    z = (r - r.mean(axis=0)) / np.maximum(r.std(axis=0, ddof=1), SD_FLOOR * (1 + np.abs(r.mean(axis=0))))
    sd = math.sqrt(z.mean(axis=1).var(ddof=1) * (1 / n_unlearned + 1 / len(r)))
    if not sd > 0:
        return 1.0
    crit = stats.norm.ppf(1 - alpha / 4)
    return float(stats.norm.cdf(margin / sd - crit) + stats.norm.cdf(-margin / sd - crit))


def difference(u, r, *, seed: int = 0, n_resamples: int = N_PERMUTATIONS) -> Difference:
    """The permutation test of exchangeability (module docstring, 1)."""
    u, r = _check(u, r)
    pooled, n = np.concatenate([u, r]), len(u)

    def statistic(kind):
        def f(x, y, axis=-1):
            return kind(pooled[x], pooled[y])
        return f

    samples = (np.arange(n), np.arange(n, len(pooled)))
    common = dict(permutation_type="independent", vectorized=True, n_resamples=n_resamples, batch=250)
    rng = np.random.default_rng(seed)
    by_shift = stats.permutation_test(samples, statistic(shift), alternative="two-sided", rng=rng, **common)
    by_spread = stats.permutation_test(samples, statistic(spread), alternative="greater", rng=rng, **common)
    return Difference(min(1.0, 2 * min(by_shift.pvalue, by_spread.pvalue)), float(by_shift.pvalue),
                      float(by_spread.pvalue), float(by_shift.statistic))


# -- 2. equivalence -------------------------------------------------------------------------------------
def effect_interval(u, r, *, seed: int = 0, confidence: float = CONFIDENCE,
                    n_resamples: int = N_BOOTSTRAP) -> tuple[float, float]:
    """The bootstrap interval of `shift` over unlearned models, retrained models and examples."""
    u, r = _check(u, r)
    m = u.shape[1]

    def statistic(x, y, e, axis=-1):
        a, b = u[x], r[y]                                    # (..., N, M)
        if e.ndim > 1:
            a, b = (np.take_along_axis(g, e[..., None, :], axis=-1) for g in (a, b))
        else:
            a, b = a[..., e], b[..., e]
        return shift(a, b)

    res = stats.bootstrap((np.arange(len(u)), np.arange(len(r)), np.arange(m)), statistic, paired=False,
                          vectorized=True, n_resamples=n_resamples, confidence_level=confidence, method="BCa",
                          batch=250, rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    if not (math.isfinite(lo) and math.isfinite(hi)):        # a degenerate bootstrap distribution
        lo = hi = float(shift(u, r))
    return float(lo), float(hi)


# -- 3. the verdict -------------------------------------------------------------------------------------
def decide(p_value: float, lo: float, hi: float, n_forget: int, noop_p_value: float | None = None, *,
           alpha: float = ALPHA, margin: float = MARGIN) -> str:
    """The verdict of one cell (module docstring, 3); `noop_p_value` None: no gate (the no-op's own cell
    is gated by its own p-value)."""
    if n_forget < MIN_FORGET_POINTS:
        return "too few points"
    if p_value <= alpha:
        return "did not forget"
    if noop_p_value is not None and noop_p_value > alpha:
        return "cannot tell"
    return "forgot" if -margin < lo and hi < margin else "cannot tell"


@dataclass(frozen=True)
class Verdict:
    verdict: str
    p_value: float
    p_value_shift: float
    p_value_spread: float
    effect: float
    effect_lo: float
    effect_hi: float
    margin: float
    power: float
    noop_p_value: float | None
    n_forget: int
    alpha: float = ALPHA
    n_permutations: int = N_PERMUTATIONS
    adjustment: str = "none: this cell alone"

    def record(self) -> dict:
        """The record keys (`unlearning.common.schema`): `verdict`, `p_value`, ... (`verdict_` before the settings)."""
        d = asdict(self)
        return {**{k: d[k] for k in ("verdict", "p_value", "p_value_shift", "p_value_spread", "effect",
                                     "effect_lo", "effect_hi", "power", "noop_p_value")},
                "verdict_margin": self.margin, "verdict_alpha": self.alpha,
                "verdict_permutations": self.n_permutations, "verdict_adjustment": self.adjustment}


NO_GATE = "none"       # `judge(gate=NO_GATE)`: no no-op gate (simulated panels); SELF: the no-op's own cell
SELF = "self"


def judge(u, r, *, gate: float | str = NO_GATE, seed: int = 0, n_permutations: int = N_PERMUTATIONS,
          n_bootstrap: int = N_BOOTSTRAP) -> Verdict:
    """Test, interval and verdict of one group of unlearned models `u` against the retrained `r`.
    `gate`: the p-value of the no-op's `difference` on the same cell, `SELF` for the no-op itself
    (gated by its own p-value), or `NO_GATE`."""
    diff = difference(u, r, seed=seed, n_resamples=n_permutations)
    lo, hi = effect_interval(u, r, seed=seed, n_resamples=n_bootstrap)
    if gate not in (NO_GATE, SELF) and not (isinstance(gate, float) and 0 <= gate <= 1):
        raise ValueError(f"gate={gate!r}: give the no-op's p-value in [0, 1], {SELF!r} or {NO_GATE!r}")
    noop_p = None if gate == NO_GATE else diff.p_value if gate == SELF else float(gate)
    m = np.asarray(u).shape[1]
    return Verdict(decide(diff.p_value, lo, hi, m, noop_p), diff.p_value, diff.p_shift, diff.p_spread,
                   diff.effect, lo, hi, MARGIN, power(r, len(u)), noop_p, m, n_permutations=n_permutations)


# -- 4. across a report ---------------------------------------------------------------------------------
def adjust(p_values) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values of a report's cells (NaN stays NaN, out of the family)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(np.clip(p[ok], 0, 1), method=ADJUSTMENT)
    return out


# -- F against its null --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def f_null(n_u: int, n_r: int) -> tuple[float, float]:
    """(mean, standard error) of F when unlearned and retrained models are exchangeable and φ has no
    ties: ε of an example depends only on the order of its n_u + n_r values, all orders equally
    likely, so the mean depends on the group sizes alone. Exact (every order enumerated, error 0)
    where there are at most `NULL_DRAWS` orders, else `NULL_DRAWS` orders drawn with seed 0."""
    n = n_u + n_r
    exact = math.comb(n, n_u) <= NULL_DRAWS
    if exact:
        orders = np.zeros((math.comb(n, n_u), n), dtype=bool)
        for i, pos in enumerate(itertools.combinations(range(n), n_u)):
            orders[i, list(pos)] = True
    else:
        orders = np.argsort(np.random.default_rng(0).random((NULL_DRAWS, n)), axis=1) < n_u
    eps = [np.clip(fg._epsilon_by_runs(chunk, n_u, n_r, fg.DELTA, fg.DOUBLE_THRESHOLD), 0.0, fg.EPSILON_MAX)
           for chunk in np.array_split(orders, max(1, len(orders) // 16384))]
    h = fg.example_scores(np.concatenate(eps), n_u)
    return float(h.mean()), 0.0 if exact else float(h.std(ddof=1) / math.sqrt(len(h)))


def f_interval(epsilons, n_models: int, *, seed: int = 0) -> tuple[float, float]:
    """The `F_CONFIDENCE` bootstrap interval of F over the forget examples (BCa; [F, F] when every
    example scores the same)."""
    h = fg.example_scores(epsilons, n_models)
    if len(h) < 2 or np.ptp(h) == 0:
        return float(h.mean()), float(h.mean())
    res = stats.bootstrap((h,), np.mean, n_resamples=N_BOOTSTRAP, confidence_level=F_CONFIDENCE, method="BCa",
                          rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo = hi = float(h.mean())
    return float(lo), float(hi)


# -- error rates on panels whose truth is known ------------------------------------------------------------
# scenario -> (shift in retrained sd, share of the forget examples shifted)
SCENARIOS = {"no difference": (0.0, 1.0), "shift 0.25 sd (the margin)": (0.25, 1.0), "shift 0.5 sd": (0.5, 1.0),
             "shift 1 sd": (1.0, 1.0), "half the examples shifted 1 sd": (1.0, 0.5)}
# simulated φ: ρ, the share of each example's variance that is a per-model effect common to every example (a model
# more confident everywhere), by default this value. Measured on the paper panels' retrained reference models as
# (v − 1/M) / (1 − 1/M), v the variance across models of their mean standardised φ: California 0.00–0.06, digits
# random / canaries 0.02–0.09 and classwise 0.23–0.37, MNIST random / canaries 0.12–0.20 and classwise 0.64 — so the
# paper profile's error rates are simulated at 0.06 and at MNIST's 0.2 and 0.65 too (`Forgetting.error_settings`).
MODEL_SHARE = 0.06


def simulated_panel(n_models: int, n_forget: int, shift_sd: float, share: float, rng: np.random.Generator,
                    model_share: float = MODEL_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(u, r): φ of N unlearned and N retrained models on M examples. φ_ij = μ_j + σ_j (√ρ a_i + √(1 − ρ) e_ij),
    ρ = `model_share`, μ_j ~ N(0, 3²), σ_j log-normal; the unlearned group's φ moved by `shift_sd` σ_j in the
    first `share` of the examples."""
    if not 0 <= model_share < 1:
        raise ValueError(f"model_share={model_share!r}: give the share of variance common to a model, in [0, 1)")
    mu, sigma = rng.normal(0, 3, n_forget), np.exp(rng.normal(0, 0.5, n_forget))

    def group():
        common = rng.normal(size=(n_models, 1))
        return mu + sigma * (math.sqrt(model_share) * common + math.sqrt(1 - model_share) *
                             rng.normal(size=(n_models, n_forget)))
    u, r = group(), group()
    u[:, :round(share * n_forget)] += shift_sd * sigma[:round(share * n_forget)]
    return u, r


def error_rates(n_models: int, n_forget: int, scenario: str, panels: int, *, model_share: float = MODEL_SHARE,
                seed: int = 0, n_permutations: int = N_PERMUTATIONS,
                n_bootstrap: int = N_BOOTSTRAP) -> dict[str, float]:
    """The share of `panels` simulated panels of `scenario` (a `SCENARIOS` name) given each verdict (no gate)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; allowed: {', '.join(map(repr, SCENARIOS))}")
    shift_sd, share = SCENARIOS[scenario]
    rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario), n_models, n_forget, round(model_share * 1000)])
    verdicts = [judge(*simulated_panel(n_models, n_forget, shift_sd, share, rng, model_share), seed=i,
                      n_permutations=n_permutations, n_bootstrap=n_bootstrap).verdict for i in range(panels)]
    return {v: verdicts.count(v) / panels for v in VERDICTS}


# -- how many models are enough ---------------------------------------------------------------------------
TARGET_POWER = 0.8
NEEDED_SIZES = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96)   # N′ tried, those below the panel's N
NEEDED_DRAWS = 50                                       # subsampled panels per N′
NEEDED_PERMUTATIONS = 200                               # resamples of each of their tests


def power_curve(u, r, *, seed: int = 0, draws: int = NEEDED_DRAWS,
                n_permutations: int = NEEDED_PERMUTATIONS) -> dict[int, float]:
    """N′ -> the share of `draws` panels of N′ unlearned and N′ retrained models, drawn without replacement
    from `u` and `r`, whose difference test rejects at `ALPHA`; for each N′ of `NEEDED_SIZES` below both
    group sizes."""
    u, r = _check(u, r)
    rng, out = np.random.default_rng(seed), {}
    for size in (s for s in NEEDED_SIZES if s < min(len(u), len(r))):
        hits = [difference(u[rng.choice(len(u), size, replace=False)], r[rng.choice(len(r), size, replace=False)],
                           seed=i, n_resamples=n_permutations).p_value <= ALPHA for i in range(draws)]
        out[size] = float(np.mean(hits))
    return out


def models_needed(curve: dict[int, float], target: float = TARGET_POWER) -> int | None:
    """The smallest N′ of a `power_curve` reaching `target` power; None where none does."""
    return next((n for n, p in sorted(curve.items()) if p >= target), None)
