"""Did a method forget, and if not, which way did it miss? One audit cell's verdict as a statistical test with
stated error rates.

Input: the challenge's per-example statistic φ (`forgetting.logit_confidence`) of the M forget
examples under N unlearned models `u` (N, M) and N' retrained reference models `r` (N', M); optionally
the same models' φ on a fixed sample of *control* rows the forget set does not explain (retain and test
rows: `uc`, `rc`). Every choice is a named constant below; scipy.stats does the testing, resampling and
intervals.

0. **The effect, bounded** (`shift`). φ is first clipped to ±`PHI_CLIP`. Per example j the standardised
   shift z_j = (ū_j − r̄_j) / s_j, s_j the retrained models' sd of φ_j, *clipped to ±`Z_CLIP`* retrained
   sd (winsorised): a collapsed model (gradient ascent's, φ ≈ −10⁴ where the retrained models agree to 6
   digits) moves an example at most `Z_CLIP` sd, so the effect (the mean of z_j) stays finite and one
   example cannot carry it. The φ clip matters to the test: a diverged model (φ up to ±10²² on digits)
   placed in the retrained group by a permutation would inflate that group's sd so far that every
   permutation saturates at ±`Z_CLIP` too, and a collapsed method would read "not told apart".
   Sign: > 0 the forget examples are *more* confident than under retraining (memorised), < 0 *less*
   (over-forgot: an unusually low confidence marks a point as removed, a leak too).
1. **Difference test** (`difference`). H0: unlearned and retrained models are exchangeable.
   A permutation test over the N + N' pooled models (`scipy.stats.permutation_test`,
   `N_PERMUTATIONS` seeded resamples; a resample moves a model's whole row of φ, so the
   dependence between examples through a model is kept) on two statistics:
   - `shift`: the mean of z_j: memorisation (> 0) or over-forgetting (< 0) that moves the
     examples one way; two-sided. This is also the effect the margin is stated in.
   - `spread`: the mean of z_j²: a shift of part of the examples, either way, that cancels in the
     mean, or unlearned models that vary more than retrained ones; one-sided.
   The cell's p-value is min(1, 2 · min(p_shift, p_spread)) (Bonferroni over the two).
   F itself is not the test statistic: it is a step function of ranks (its permutation
   p-values are lumpy) and its bins discard the size of a shift; it is reported beside the
   verdict, read against its null mean (`f_null`).
2. **Equivalence** (`equivalence`). The effect gets a `CONFIDENCE` bootstrap interval
   (`scipy.stats.bootstrap`, BCa, `N_BOOTSTRAP` seeded resamples of the unlearned models, the
   retrained models and the forget examples, each independently): inside ±`MARGIN` it is
   equivalent to retraining within the margin (two one-sided tests at `ALPHA` ⇔ a 1 − 2α interval).
3. **Controls** (`controls`, where control rows are given). The same shift on the control rows
   (`effect_control`, and per part `effect_retain`, `effect_test`), its own permutation test
   (`p_control`: did the whole model move?) and a permutation test of the *excess* effect_forget −
   effect_control (`p_excess`: did the forget set move more than the rest of the model?); a resample
   moves a model's forget and control rows together.
4. **Verdict** (`decide`), in this order:
   - fewer than `MIN_FORGET_POINTS` forget examples: `too few points` (p and interval still shown);
   - p ≤ `ALPHA` (adjusted across a report's cells by `adjust`): the forget set differs from retraining;
     which way:
     - the shift statistic does not reject on its own (p_shift > α / 2, its share of the Bonferroni
       split), so the spread statistic carried the rejection: `differs both ways` — examples moved in
       both directions or the unlearned models vary more (a spread-only change has no sign to report,
       so no direction is claimed);
     - the control rows moved (p_control ≤ α) and the forget set not beyond them — beyond means the
       excess test rejects (p_excess ≤ α), the excess points the forget set's way and is at least one
       `MARGIN` (a significant −0.16 sd on top of a −4.7 sd shift of the whole model is not "beyond"):
       `shifted everywhere` — the method changed the whole model's confidence and the forget-set effect
       says nothing about the forget set (its utility columns say what it cost);
     - else by the effect's sign: `memorised` (> 0) or `over-forgot` (< 0);
   - the no-op of the same cell not rejected: `cannot tell` (doing nothing is not told apart
     from retraining there, so no method can be said to forget on that cell);
   - the interval inside ±`MARGIN`: `matches retraining`;
   - otherwise `cannot tell`.
   The secondary tests (p_control, p_excess) run only inside a rejected cell and are not adjusted
   across cells; their error rates are measured with the rest (`SCENARIOS`).
5. **Was "matches retraining" attainable?** (`attainable`): the share of simulated panels of
   *retraining itself* (no difference; this cell's N, N', M and its measured ρ, `model_share`) that
   the rule calls `matches retraining` (`ATTAIN_PANELS` panels, seeded). Below one half the cell could
   hardly have said "matches" whatever the method did. `power` (the chance of rejecting a shift of one
   margin) is a normal approximation, optimistic at small N: the simulated rates
   (`benchmarks/test_verdict.py`) are the measured ones.
6. **Multiple cells** (`adjust`): Benjamini–Hochberg (`scipy.stats.false_discovery_control`)
   across the cells of a report: at most `ALPHA` of the rejections are expected false. Holm would
   control the chance of any false one, but with ~100 cells it needs p < 0.05 / 100, below what
   `N_PERMUTATIONS` resamples can show.

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

ALPHA = 0.05                  # size of the difference test; FDR of a report's rejections
MARGIN = 0.25                 # equivalence margin: ± this many retrained sd of φ, on average over the forget set
CONFIDENCE = 1 - 2 * ALPHA    # the equivalence interval: two one-sided tests at ALPHA
N_PERMUTATIONS = 2000         # resamples of the permutation test (smallest p-value: 1 / 2001)
N_BOOTSTRAP = 2000            # resamples of each bootstrap interval
MIN_FORGET_POINTS = 20        # no verdict below this many forget examples (synthetic's cells have 2)
ADJUSTMENT = "bh"             # Benjamini–Hochberg across a report's cells
SD_FLOOR = 1e-9               # s_j floored at SD_FLOOR · (1 + |r̄_j|): identical retrained models give no ∞
Z_CLIP = 10.0                 # each example's standardised shift clipped to ± this many retrained sd (finite, robust)
PHI_CLIP = 100.0              # φ clipped to ± this first (as U-LiRA, `ulira.PHI_CLIP`: beyond it no float32 model
                              # resolves p_y), so a diverged model (φ ≈ ±1e22) cannot swamp a permuted group's sd
NULL_DRAWS = 2 ** 17          # orderings drawn for F's null mean where they are too many to enumerate
F_CONFIDENCE = 0.95           # intervals of F and of the ceiling (over the forget examples)
MATCHES = "matches retraining"
MEMORISED, OVER_FORGOT = "memorised", "over-forgot"
EVERYWHERE, BOTH_WAYS = "shifted everywhere", "differs both ways"
CANNOT_TELL, TOO_FEW = "cannot tell", "too few points"
VERDICTS = (MATCHES, MEMORISED, OVER_FORGOT, EVERYWHERE, BOTH_WAYS, CANNOT_TELL, TOO_FEW)
MISSED = (MEMORISED, OVER_FORGOT, EVERYWHERE, BOTH_WAYS)     # the forget set differs from retraining (p ≤ α)
# what each label means, for every table that prints one
MEANINGS = {
    MATCHES: "not told apart from retraining and the effect's interval inside the margin",
    MEMORISED: "forget points more confident than under retraining (effect > 0)",
    OVER_FORGOT: "forget points less confident than under retraining (effect < 0): the low confidence marks them",
    EVERYWHERE: "the whole model's confidence moved (retain and test rows as much as the forget set)",
    BOTH_WAYS: "forget points moved both ways or vary more across models (no one direction)",
    CANNOT_TELL: "neither told apart nor shown to match (or the no-op itself not told apart)",
    TOO_FEW: f"fewer than {MIN_FORGET_POINTS} forget points",
}


# -- statistics ---------------------------------------------------------------------------------------
def _standardised(u: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(ū_j − r̄_j) / s_j over the models axis (−2) of (..., N, M) and (..., N', M) arrays, clipped to ±Z_CLIP."""
    r_mean = r.mean(axis=-2)
    sd = np.maximum(r.std(axis=-2, ddof=1), SD_FLOOR * (1 + np.abs(r_mean)))
    return np.clip((u.mean(axis=-2) - r_mean) / sd, -Z_CLIP, Z_CLIP)


def shift(u, r) -> np.ndarray:
    """The effect: the mean over the examples of the (clipped) standardised shift of φ (0: as retraining)."""
    return _standardised(np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)).mean(axis=-1)


def spread(u, r) -> np.ndarray:
    """The mean over the examples of the squared (clipped) standardised shift."""
    return (_standardised(np.asarray(u, dtype=np.float64), np.asarray(r, dtype=np.float64)) ** 2).mean(axis=-1)


def bounded(phi) -> np.ndarray:
    """φ as float64, clipped to ±`PHI_CLIP` (non-finite values stay as they are, for `_check` to name)."""
    a = np.asarray(phi, dtype=np.float64)
    return np.where(np.isfinite(a), np.clip(a, -PHI_CLIP, PHI_CLIP), a)


def _check(u, r, what: str = "forget examples") -> tuple[np.ndarray, np.ndarray]:
    u, r = bounded(u), bounded(r)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1] or not u.shape[1]:
        raise ValueError(f"give φ as (models, examples) arrays over the same {what}; got {u.shape} and {r.shape}")
    if min(len(u), len(r)) < 3:
        raise ValueError(f"the verdict needs at least 3 models per group, got {len(u)} unlearned and {len(r)} "
                         "retrained")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError(f"the verdict got non-finite φ on the {what} (a model produced inf/nan)")
    return u, r


def _model_variance(r) -> float:
    """v: the variance across the retrained models `r` (N', M) of their mean standardised φ (`model_share`, `power`)."""
    r = bounded(r)
    z = (r - r.mean(axis=0)) / np.maximum(r.std(axis=0, ddof=1), SD_FLOOR * (1 + np.abs(r.mean(axis=0))))
    return float(z.mean(axis=1).var(ddof=1))


def model_share(r) -> float:
    """ρ, the share of each example's φ variance common to a model, measured on the retrained models `r` (N', M):
    (v − 1/M) / (1 − 1/M), v the variance across models of their mean standardised φ, cut to [0, 0.95]."""
    m = np.shape(r)[1]
    if m < 2:
        return 0.0
    v = _model_variance(r)
    return float(min(0.95, max(0.0, (v - 1 / m) / (1 - 1 / m))))


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
    the correlation of examples through a model); the shift statistic alone, two-sided at α / 2.
    Optimistic at small N (the permutation null's tails are heavier): the simulated rates are the measure."""
    sd = math.sqrt(_model_variance(r) * (1 / n_unlearned + 1 / len(r)))
    if not sd > 0:
        return 1.0
    crit = stats.norm.ppf(1 - alpha / 4)
    return float(stats.norm.cdf(margin / sd - crit) + stats.norm.cdf(-margin / sd - crit))


def _permutation(pooled: np.ndarray, n: int, statistic, alternative: str, rng: np.random.Generator,
                 n_resamples: int):
    """`scipy.stats.permutation_test` of `statistic(u, r)` over the rows of `pooled` (the first `n` unlearned)."""
    def f(x, y, axis=-1):
        return statistic(pooled[x], pooled[y])
    return stats.permutation_test((np.arange(n), np.arange(n, len(pooled))), f, alternative=alternative,
                                  permutation_type="independent", vectorized=True, n_resamples=n_resamples,
                                  batch=250, rng=rng)


def difference(u, r, *, seed: int = 0, n_resamples: int = N_PERMUTATIONS) -> Difference:
    """The permutation test of exchangeability (module docstring, 1)."""
    u, r = _check(u, r)
    pooled, rng = np.concatenate([u, r]), np.random.default_rng(seed)
    by_shift = _permutation(pooled, len(u), shift, "two-sided", rng, n_resamples)
    by_spread = _permutation(pooled, len(u), spread, "greater", rng, n_resamples)
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


def distance(effect, noop_effect):
    """Distance from retraining of an effect: |effect| / max(|the no-op's effect on the same cell|, `MARGIN`). 0 is
    retraining, 1 is as far as doing nothing (where the no-op's effect exceeds the margin): the ranking's measure
    and the tuner's objective. Elementwise on arrays (NaN stays NaN)."""
    return np.abs(effect) / np.maximum(np.abs(noop_effect), MARGIN)


def distance_interval(lo, hi, noop_effect):
    """The ends of the distance's interval from the effect's interval (`lo`, `hi`), folded at 0: the near end is 0
    where the interval holds 0. Elementwise on arrays."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    near = np.where((lo > 0) | (hi < 0), np.minimum(np.abs(lo), np.abs(hi)), 0.0)
    near = np.where(np.isnan(lo) | np.isnan(hi), np.nan, near)
    scale = np.maximum(np.abs(noop_effect), MARGIN)
    return near / scale, np.maximum(np.abs(lo), np.abs(hi)) / scale


# -- 3. controls: did the whole model move? -------------------------------------------------------------
@dataclass(frozen=True)
class Controls:
    effect: float          # the shift on every control row
    effect_parts: tuple    # the shift on each part of the control rows (retain, test), in the order given
    p_control: float       # the permutation test of the control rows' shift (two-sided)
    excess: float          # the forget set's effect − the control rows'
    p_excess: float        # the permutation test of the excess (two-sided)


def controls(u, r, uc_parts, rc_parts, *, seed: int = 0, n_resamples: int = N_PERMUTATIONS) -> Controls:
    """The control rows' shift and the forget set's excess over it (module docstring, 3). `uc_parts`,
    `rc_parts`: the unlearned and retrained models' φ on each part of the control rows (lists of (N, C_k)
    and (N', C_k) arrays, the same models in the same order as `u` and `r`)."""
    u, r = _check(u, r)
    parts = [_check(a, b, "control rows") for a, b in zip(uc_parts, rc_parts, strict=True)]
    if not parts or any(len(a) != len(u) or len(b) != len(r) for a, b in parts):
        raise ValueError("give the control rows' φ of the same models as the forget set's, one array per part")
    uc, rc = np.concatenate([a for a, _ in parts], axis=1), np.concatenate([b for _, b in parts], axis=1)
    m = u.shape[1]
    pooled, rng = np.concatenate([np.concatenate([u, uc], axis=1), np.concatenate([r, rc], axis=1)]), \
        np.random.default_rng([seed, 1])

    def control_shift(a, b):
        return shift(a[..., m:], b[..., m:])

    def excess(a, b):
        return shift(a[..., :m], b[..., :m]) - shift(a[..., m:], b[..., m:])
    by_control = _permutation(pooled, len(u), control_shift, "two-sided", rng, n_resamples)
    by_excess = _permutation(pooled, len(u), excess, "two-sided", rng, n_resamples)
    return Controls(float(by_control.statistic), tuple(float(shift(a, b)) for a, b in parts),
                    float(by_control.pvalue), float(by_excess.statistic), float(by_excess.pvalue))


# -- 4. the verdict -------------------------------------------------------------------------------------
def decide(p_value: float, lo: float, hi: float, n_forget: int, noop_p_value: float | None = None, *,
           effect: float | None = None, p_shift: float | None = None,
           p_control: float | None = None, p_excess: float | None = None, excess: float | None = None,
           alpha: float = ALPHA, margin: float = MARGIN) -> str:
    """The verdict of one cell (module docstring, 4); `noop_p_value` None: no gate (the no-op's own cell
    is gated by its own p-value). `effect` (default: the interval's middle) gives the direction; `p_shift`
    whether the shift statistic rejected on its own (None: as if it did); `p_control`, `p_excess`, `excess`
    the control rows' tests (None: no control rows, so no `shifted everywhere`)."""
    if n_forget < MIN_FORGET_POINTS:
        return TOO_FEW
    if p_value <= alpha:
        if p_shift is not None and p_shift > alpha / 2:        # the spread statistic alone rejected
            return BOTH_WAYS
        effect = (lo + hi) / 2 if effect is None else effect
        beyond = p_excess is not None and excess is not None and p_excess <= alpha and excess * effect > 0 \
            and abs(excess) >= margin         # the forget set moved further than the rest, by a margin at least
        if p_control is not None and p_control <= alpha and not beyond:
            return EVERYWHERE
        return MEMORISED if effect > 0 else OVER_FORGOT
    if noop_p_value is not None and noop_p_value > alpha:
        return CANNOT_TELL
    return MATCHES if -margin < lo and hi < margin else CANNOT_TELL


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
    model_share: float
    controls: Controls | None = None
    alpha: float = ALPHA
    n_permutations: int = N_PERMUTATIONS
    adjustment: str = "none: this cell alone"

    def record(self) -> dict:
        """The record keys (`unlearning.common.schema`): `verdict`, `p_value`, ... (`verdict_` before the settings)."""
        d = asdict(self)
        c = self.controls
        parts = dict(zip(("effect_retain", "effect_test"), c.effect_parts, strict=False)) if c else {}
        return {**{k: d[k] for k in ("verdict", "p_value", "p_value_shift", "p_value_spread", "effect",
                                     "effect_lo", "effect_hi", "power", "noop_p_value", "model_share")},
                "effect_control": c and c.effect, "effect_retain": parts.get("effect_retain"),
                "effect_test": parts.get("effect_test"), "p_value_control": c and c.p_control,
                "effect_excess": c and c.excess, "p_value_excess": c and c.p_excess,
                "verdict_margin": self.margin, "verdict_alpha": self.alpha, "verdict_z_clip": Z_CLIP,
                "verdict_permutations": self.n_permutations, "verdict_adjustment": self.adjustment}


NO_GATE = "none"       # `judge(gate=NO_GATE)`: no no-op gate (simulated panels); SELF: the no-op's own cell
SELF = "self"


def judge(u, r, *, gate: float | str = NO_GATE, uc_parts=None, rc_parts=None, seed: int = 0,
          n_permutations: int = N_PERMUTATIONS, n_bootstrap: int = N_BOOTSTRAP) -> Verdict:
    """Test, interval and verdict of one group of unlearned models `u` against the retrained `r`.
    `gate`: the p-value of the no-op's `difference` on the same cell, `SELF` for the no-op itself
    (gated by its own p-value), or `NO_GATE`. `uc_parts`, `rc_parts`: the same models' φ on the
    control rows, by part (`controls`); None: no control rows."""
    if gate not in (NO_GATE, SELF) and not (isinstance(gate, float) and 0 <= gate <= 1):
        raise ValueError(f"gate={gate!r}: give the no-op's p-value in [0, 1], {SELF!r} or {NO_GATE!r}")
    diff = difference(u, r, seed=seed, n_resamples=n_permutations)
    lo, hi = effect_interval(u, r, seed=seed, n_resamples=n_bootstrap)
    ctrl = None if uc_parts is None else controls(u, r, uc_parts, rc_parts, seed=seed, n_resamples=n_permutations)
    noop_p = None if gate == NO_GATE else diff.p_value if gate == SELF else float(gate)
    m = np.asarray(u).shape[1]
    verdict = decide(diff.p_value, lo, hi, m, noop_p, effect=diff.effect, p_shift=diff.p_shift,
                     p_control=ctrl and ctrl.p_control, p_excess=ctrl and ctrl.p_excess,
                     excess=ctrl and ctrl.excess)
    return Verdict(verdict, diff.p_value, diff.p_shift, diff.p_spread, diff.effect, lo, hi, MARGIN,
                   power(r, len(u)), noop_p, m, model_share(r), ctrl, n_permutations=n_permutations)


# -- 5. was "matches retraining" attainable? ------------------------------------------------------------
ATTAIN_PANELS = 100           # simulated panels of retraining itself per (N, N', M, ρ)
ATTAIN_PERMUTATIONS = 500     # their tests' resamples (only p > α matters)
ATTAIN_BOOTSTRAP = 1000       # their intervals' resamples
ATTAIN_RHO_STEP = 0.05        # the measured ρ rounded to this grid (a cache key: cells of one panel share it)


def attainable(n_unlearned: int, n_retrained: int, n_forget: int, rho: float, *, panels: int = ATTAIN_PANELS,
               seed: int = 0) -> float | None:
    """The share of `panels` simulated panels with no difference (`simulated_panel`, ρ rounded to
    `ATTAIN_RHO_STEP`) that the rule calls `matches retraining` (no gate); None below `MIN_FORGET_POINTS`."""
    if n_forget < MIN_FORGET_POINTS:
        return None
    return _attainable(n_unlearned, n_retrained, n_forget, round(round(rho / ATTAIN_RHO_STEP) * ATTAIN_RHO_STEP, 4),
                       panels, seed)


@functools.lru_cache(maxsize=256)
def _attainable(n_u: int, n_r: int, m: int, rho: float, panels: int, seed: int) -> float:
    rng = np.random.default_rng([seed, n_u, n_r, m, round(rho * 1000)])
    hits = 0
    for i in range(panels):
        u, r = simulated_panel(max(n_u, n_r), m, SCENARIOS["no difference"], rng, rho)[:2]
        hits += judge(u[:n_u], r[:n_r], seed=i, n_permutations=ATTAIN_PERMUTATIONS,
                      n_bootstrap=ATTAIN_BOOTSTRAP).verdict == MATCHES
    return hits / panels


# -- 6. across a report ---------------------------------------------------------------------------------
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
@dataclass(frozen=True)
class Scenario:
    """A simulated truth: the unlearned group's φ moved by `shift` retrained sd in the first `share` of the forget
    examples (and in every control row too where `everywhere`), its deviations from each example's mean scaled by
    `spread` (1.5: unlearned models vary 1.5× as much, the mean unchanged); `truth` the label it deserves."""

    shift: float = 0.0
    share: float = 1.0
    everywhere: bool = False
    spread: float = 1.0
    truth: str = MATCHES


SCENARIOS = {
    "no difference": Scenario(truth=MATCHES),
    "shift 0.25 sd (the margin)": Scenario(0.25, truth=MEMORISED),
    "shift 0.5 sd": Scenario(0.5, truth=MEMORISED),
    "shift 1 sd": Scenario(1.0, truth=MEMORISED),
    "half the examples shifted 1 sd": Scenario(1.0, 0.5, truth=MEMORISED),
    "over-forgot 0.5 sd": Scenario(-0.5, truth=OVER_FORGOT),
    "shifted everywhere -1 sd": Scenario(-1.0, everywhere=True, truth=EVERYWHERE),
    "spread 1.5x sd": Scenario(spread=1.5, truth=BOTH_WAYS),
}
# simulated φ: ρ, the share of each example's variance that is a per-model effect common to every example (a model
# more confident everywhere), by default this value. Measured on the paper panels' retrained reference models as
# (v − 1/M) / (1 − 1/M), v the variance across models of their mean standardised φ (`model_share`): California
# 0.00–0.06, digits random / canaries 0.02–0.09 and classwise 0.23–0.37, MNIST random / canaries 0.12–0.20 and
# classwise 0.64 — so the paper profile's error rates are simulated at 0.06 and at MNIST's 0.2 and 0.65 too
# (`Forgetting.error_settings`).
MODEL_SHARE = 0.06
SIM_CONTROL_ROWS = (50, 50)   # simulated control rows per part (retain, test), as the audit's `CONTROL_ROWS`


def simulated_panel(n_models: int, n_forget: int, scenario: Scenario, rng: np.random.Generator,
                    model_share: float = MODEL_SHARE, control_rows: tuple[int, ...] = SIM_CONTROL_ROWS):
    """(u, r, uc_parts, rc_parts): φ of N unlearned and N retrained models on M forget examples and on each part
    of the control rows. φ_ij = μ_j + σ_j (√ρ a_i + √(1 − ρ) e_ij) on every row, ρ = `model_share`, a_i one
    model's common effect (the same on its forget and control rows), μ_j ~ N(0, 3²), σ_j log-normal; the
    unlearned group moved as `scenario` says."""
    if not 0 <= model_share < 1:
        raise ValueError(f"model_share={model_share!r}: give the share of variance common to a model, in [0, 1)")
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario={scenario!r}: give a verdict.Scenario (the names are in verdict.SCENARIOS)")
    widths = [n_forget, *control_rows]
    rows = sum(widths)
    mu, sigma = rng.normal(0, 3, rows), np.exp(rng.normal(0, 0.5, rows))

    def group(scale):
        common = rng.normal(size=(n_models, 1))
        return mu + scale * sigma * (math.sqrt(model_share) * common + math.sqrt(1 - model_share) *
                                     rng.normal(size=(n_models, rows)))
    u, r = group(scenario.spread), group(1.0)
    moved = round(scenario.share * n_forget)
    u[:, :moved] += scenario.shift * sigma[:moved]
    if scenario.everywhere:
        u[:, n_forget:] += scenario.shift * sigma[n_forget:]
    cuts = np.cumsum(widths)[:-1]
    (u, *uc), (r, *rc) = np.split(u, cuts, axis=1), np.split(r, cuts, axis=1)
    return u, r, uc, rc


def error_rates(n_models: int, n_forget: int, scenario: str, panels: int, *, model_share: float = MODEL_SHARE,
                seed: int = 0, n_permutations: int = N_PERMUTATIONS,
                n_bootstrap: int = N_BOOTSTRAP) -> dict[str, float]:
    """The share of `panels` simulated panels of `scenario` (a `SCENARIOS` name) given each verdict (no gate;
    control rows as the audit's)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; allowed: {', '.join(map(repr, SCENARIOS))}")
    rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario), n_models, n_forget, round(model_share * 1000)])
    verdicts = []
    for i in range(panels):
        u, r, uc, rc = simulated_panel(n_models, n_forget, SCENARIOS[scenario], rng, model_share)
        verdicts.append(judge(u, r, uc_parts=uc, rc_parts=rc, seed=i, n_permutations=n_permutations,
                              n_bootstrap=n_bootstrap).verdict)
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
