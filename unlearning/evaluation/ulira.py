"""U-LiRA: the per-example likelihood-ratio membership attack on one audit cell, from its panels.

Hayes et al. ("Inexact unlearning needs more careful evaluations to avoid a false sense of privacy",
SaTML 2025) judge unlearning by how well a per-example likelihood-ratio test tells an unlearned
model from a retrained one; RULI (USENIX Security 2025) reports it as TPR at a low FPR, on all
examples and on the most vulnerable ones. The audit already holds what this needs: φ
(`forgetting.logit_confidence`) of N unlearned models `u` (N, M) and N' retrained models `r` (N', M)
on the same M examples, so the attack costs no extra training. Every choice is a named constant
below; scipy and scikit-learn do the statistics.

1. **Scores** (`scores`). φ is clipped to ±`PHI_CLIP`. For model i and example j the score is
   the Gaussian log-likelihood ratio

       s_ij = log N(φ_ij; μ_u, σ_u) − log N(φ_ij; μ_r, σ_r)      (`scipy.stats.norm.logpdf`)

   with (μ, σ) the mean and sd (ddof 1) of example j's φ in each group, the fit of model i's own
   group LEAVING OUT model i: model i is scored as an unseen model, as a real attacker would score
   one. An in-sample fit puts each model inside its own group's Gaussian and inflates the attack
   (AUC 0.78 at N = 4, 0.59 at N = 32 on exchangeable panels). The other group's fit leaves one
   model out too (`MATCHED_FITS`), so both fits have N − 1 and N' − 1 models for every score.
   Closed form over a group of n: μ₋ᵢ = (S − x_i) / (n − 1) and SS₋ᵢ = SS − n (x_i − x̄)² / (n − 1),
   σ₋ᵢ² = SS₋ᵢ / (n − 2), so n ≥ 3 (`MIN_MODELS`). Positive class: the unlearned models.
   Each σ is floored at `SIGMA_FLOOR` times example j's pooled within-group sd
   √((SS_u + SS_r) / (N + N' − 2)) (the scale of that example's φ without the shift between the
   groups), and at `SIGMA_FLOOR_MIN` · (1 + |φ̄_j|) where every model gives the same φ_j: identical
   or collapsed models give finite scores. The floor uses all models (model i included); it only
   binds on a (near-)collapsed group.
2. **The attack** (`attack`). Over every (model, example) pair of the chosen examples: the ROC AUC
   (`sklearn.metrics.roc_auc_score`) and the TPR at FPR = 1 % and 0.1 % (`sklearn.metrics.roc_curve`,
   every threshold kept: the TPR at the largest FPR ≤ the target, LiRA's convention). Inside the bootstrap the
   curve is `roc_curve`'s own arithmetic without its per-call input checks (`_roc`, the same floats: its sums are
   of integer counts, so exact), which took three quarters of the attack's time. A TPR at an FPR
   finer than the negatives resolve (fewer than 1 / FPR negative pairs) is None. Intervals:
   `CONFIDENCE` percentile bootstrap (`scipy.stats.bootstrap`, `N_RESAMPLES` seeded resamples) of
   the unlearned models, the retrained models and the examples, each resampled independently; each
   resample refits the leave-one-out Gaussians on the models it drew (`REFIT`: scores held fixed
   cover too rarely where φ is correlated within a model). A resample is a count per model and per
   example; a pair counts (its model's count) × (its example's count) (`roc_curve`'s sample_weight).
3. **The most vulnerable points** (`vulnerable`): the `VULNERABLE_SHARE` of the examples with the
   largest |c̄_j − r̄_j| / s_j, c the originals' φ (the no-op models: nothing forgotten), s_j the
   retrained sd (at least `SIGMA_FLOOR_MIN` · (1 + |r̄_j|)): the points most exposed before
   unlearning, chosen without the unlearned models, so the selection does not favour the attack.
4. **Record** (`ulira_metrics`): the attack on all forget examples (`ulira_`), on the vulnerable
   share (`ulira_vulnerable_`) and on a fixed sample of retain points (`ulira_retain_`: unlearning
   can make retain points more identifiable), keys in `unlearning.common.schema`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

# φ is clipped to ±PHI_CLIP, as LiRA bounds its logit-scaled confidences: its ln(p + 1e-45) − ln(1 − p + 1e-45)
# (1e-45, float32's smallest subnormal) cannot leave ±103.6, and beyond |φ| = 100 p is 1 within 4e-44, which no
# float32 model resolves. A collapsed model (φ = −1e4) becomes −100: far from the rest, but finite.
PHI_CLIP = 100.0
# σ ≥ SIGMA_FLOOR × the example's pooled within-group sd. At the smallest fit allowed (2 models, 1 df) a real
# sd falls below 5 % of the truth in 4 % of fits, at 3 models (2 df) in 0.25 %, at 31 models never in practice:
# the floor binds on collapsed groups, not on sampling noise, and caps a Gaussian's height at ln(1 / 0.05) ≈ 3 nats
# above one of typical spread, so one collapsed example cannot dominate the scores.
SIGMA_FLOOR = 0.05
# ... and σ ≥ SIGMA_FLOOR_MIN · (1 + |φ̄_j|) where every model has the same φ_j (pooled sd 0): above float32's
# relative resolution of φ (6e-8), so a constant example gives a finite ratio (0 where both groups agree).
SIGMA_FLOOR_MIN = 1e-6
# Every score compares fits of N − 1 unlearned and N' − 1 retrained models: model i's own group leaves model i out,
# the other group leaves out its model i mod (its size). Under exchangeability an unlearned and a retrained model's
# scores then have the same distribution (AUC 0.5 in expectation at any N, N'). With the other group's fit on all
# its models (False) each model's own fit is the smaller, noisier one and every model looks less like its own group:
# mean AUC 0.436 at N = 4 (matched: 0.495) and 0.498 at N = 32 on exchangeable panels (tests/test_ulira.py).
MATCHED_FITS = True
MIN_MODELS = 3                   # per group: a leave-one-out variance needs 2 models besides the one scored
FPRS = {"1pct": 0.01, "01pct": 0.001}   # the FPRs the TPR is read at (RULI), by their record-key suffix
CONFIDENCE = 0.95                # the intervals' level
# Percentile, not BCa: TPR at a low FPR is a step function of a few ranks, often 0 or 1 in most resamples; BCa's
# bias correction is then undefined (NaN) and its jackknife acceleration (N + N' + M more AUCs) unstable and dear.
BOOTSTRAP_METHOD = "percentile"
# Each resample refits the Gaussians on the models it drew (a model drawn k times weighs k; every copy of the scored
# model is left out), so the interval holds the fits' own variation. With the scores held fixed it does not, and
# where φ moves together within a model (ρ, verdict.MODEL_SHARE) that variation dominates: on exchangeable panels at
# N = 32, M = 100 the fixed-score interval covered AUC 0.5 in 98 % of them at ρ = 0.06 but 77 % at ρ = 0.65 (the
# MNIST cells' ρ); refitted, 100 % at both. The three-way resampling over-counts the interaction of models and
# examples, so the refitted interval leans wide (AUC: 0.074 wide against 0.055 fixed at ρ = 0.06).
REFIT = True
# Resamples per interval: one refit and one ROC curve (`_roc`) per resample over all pairs; 400 keep `ulira_metrics`
# (forget, vulnerable and 200 retain points) under 2 s at N = 32, M = 100 (1.7 s on 2 cores at load 3) and put 10
# resamples beyond each 2.5 % end.
N_RESAMPLES = 400
VULNERABLE_SHARE = 0.1           # the most vulnerable tenth (RULI)
PREFIXES = ("ulira_", "ulira_vulnerable_", "ulira_retain_")
MEASURES = ("auc", *(f"tpr_{k}" for k in FPRS))


def _phi(a, name: str, min_models: int = MIN_MODELS) -> np.ndarray:
    """`a` as a float64 (models, examples) array of finite φ with at least `min_models` rows, clipped to ±PHI_CLIP."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or not a.shape[1]:
        raise ValueError(f"{name}: give φ as a (models, examples) array; got shape {a.shape}")
    if len(a) < min_models:
        raise ValueError(f"{name}: U-LiRA needs at least {min_models} models here, got {len(a)}")
    bad = ~np.isfinite(a)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name}: φ must be finite; got {float(a[i, j])!r} at model {i}, example {j} "
                         f"({int(bad.sum())} non-finite values)")
    return np.clip(a, -PHI_CLIP, PHI_CLIP)


def _check(u, r, names: tuple[str, str] = ("u", "r")) -> tuple[np.ndarray, np.ndarray]:
    """(u, r) checked by `_phi` (at least `MIN_MODELS` each: a leave-one-out fit) over the same examples."""
    u, r = _phi(u, names[0]), _phi(r, names[1])
    if u.shape[1] != r.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]}: give φ over the same examples; got shapes {u.shape} and "
                         f"{r.shape}")
    return u, r


def _floor(u: np.ndarray, r: np.ndarray) -> np.ndarray:
    """σ's floor per example (module docstring, 1)."""
    ss = ((u - u.mean(axis=0)) ** 2).sum(axis=0) + ((r - r.mean(axis=0)) ** 2).sum(axis=0)
    pooled = np.sqrt(ss / (len(u) + len(r) - 2))
    centre = np.concatenate([u, r]).mean(axis=0)
    return np.maximum(SIGMA_FLOOR * pooled, SIGMA_FLOOR_MIN * (1 + np.abs(centre)))


def _fits(x: np.ndarray, c: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, ...]:
    """(μ, σ) of each example over group `x` (n, M) whose model k counts `c`[k] times (1 each, or a bootstrap
    resample's counts): over the whole group, shape (M,), and leaving out every copy of each model, shape (n, M).
    μ₋ₖ = (S − c_k x_k) / (n − c_k), SS₋ₖ = SS + n (x̄ − μ₋ₖ)² − c_k (x_k − μ₋ₖ)², σ₋ₖ² = SS₋ₖ / (n − c_k − 1);
    a fit left with fewer than 2 models (a resample of copies of one or two models) takes the floor."""
    w = c[:, None].astype(np.float64)
    n = w.sum()
    mean = (w * x).sum(axis=0) / n
    ss = (w * (x - mean) ** 2).sum(axis=0)
    left = n - w
    loo_mean = np.where(left > 0, (n * mean - w * x) / np.maximum(left, 1), mean)
    loo_ss = np.maximum(ss + n * (mean - loo_mean) ** 2 - w * (x - loo_mean) ** 2, 0.0)   # ≥ 0: rounding
    loo_sd = np.where(left >= 2, np.sqrt(loo_ss / np.maximum(left - 1, 1)), 0.0)
    return mean, np.maximum(np.sqrt(ss / (n - 1)), floor), loo_mean, np.maximum(loo_sd, floor)


def _scores(u, r, floor, cu, cr, matched: bool) -> tuple[np.ndarray, np.ndarray]:
    """`scores` of checked, clipped `u` and `r` whose models count `cu` and `cr` times."""
    mu_u, sd_u, loo_mu_u, loo_sd_u = _fits(u, cu, floor)
    mu_r, sd_r, loo_mu_r, loo_sd_r = _fits(r, cr, floor)
    if matched:       # model i is scored against the other group without its model i mod (that group's size)
        mu_r, sd_r = loo_mu_r[np.arange(len(u)) % len(r)], loo_sd_r[np.arange(len(u)) % len(r)]
        mu_u, sd_u = loo_mu_u[np.arange(len(r)) % len(u)], loo_sd_u[np.arange(len(r)) % len(u)]
    su = stats.norm.logpdf(u, loo_mu_u, loo_sd_u) - stats.norm.logpdf(u, mu_r, sd_r)
    sr = stats.norm.logpdf(r, mu_u, sd_u) - stats.norm.logpdf(r, loo_mu_r, loo_sd_r)
    return su, sr


def scores(u, r, *, matched: bool = MATCHED_FITS) -> tuple[np.ndarray, np.ndarray]:
    """(su, sr): the log-likelihood ratio "unlearned" against "retrained" of every unlearned model (N, M) and
    every retrained model (N', M) on every example, each model scored by fits that leave it out (module
    docstring, 1). Larger: more like an unlearned model. `matched` False: the other group's fit uses all its
    models (biased below AUC 0.5 at small N; kept to show it)."""
    u, r = _check(u, r)
    return _scores(u, r, _floor(u, r), np.ones(len(u), int), np.ones(len(r), int), matched)


# -- the attack ---------------------------------------------------------------------------------------------------
_trapezoid = getattr(np, "trapezoid", None) or np.trapz         # numpy < 2 names it trapz (as sklearn's auc uses)


def _roc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of `sklearn.metrics.roc_curve(y, score, sample_weight=w, drop_intermediate=False)` for 0/1 labels
    `y` and positive integer counts `w`, by its arithmetic (scores sorted descending, a threshold where the score
    changes, float64 cumulative sums, each divided by its last) without its input checks. The sums are of integers,
    exact in float64 whatever the order within tied scores, so the floats are roc_curve's (tests/test_ulira.py)."""
    order = np.argsort(-score, kind="stable")
    ends = np.r_[np.flatnonzero(np.diff(score[order])), score.size - 1]
    tps = np.r_[0.0, np.cumsum((y * w)[order], dtype=np.float64)[ends]]
    fps = np.r_[0.0, np.cumsum(((1 - y) * w)[order], dtype=np.float64)[ends]]
    return fps / fps[-1], tps / tps[-1]


def _measures(su: np.ndarray, sr: np.ndarray, wu: np.ndarray, wr: np.ndarray, fprs: tuple[float, ...]) -> np.ndarray:
    """[AUC, TPR at each of `fprs`] of positive pairs' scores `su` against negative ones' `sr`, each pair counted
    `wu` / `wr` times (integer arrays of their shapes)."""
    w = np.r_[wu.ravel(), wr.ravel()].astype(np.float64)
    keep = w > 0
    y = np.r_[np.ones(su.size), np.zeros(sr.size)][keep]
    fpr, tpr = _roc(y, np.r_[su.ravel(), sr.ravel()][keep], w[keep])
    # AUC from the same curve (`sklearn.metrics.auc`'s trapezoid; fpr never decreases), one sort per resample
    return np.array([float(_trapezoid(tpr, fpr)), *(tpr[np.searchsorted(fpr, t, side="right") - 1] for t in fprs)])


@dataclass(frozen=True)
class Attack:
    """One attack's result; a TPR (and its interval) is None where the negatives cannot resolve its FPR."""
    auc: float
    auc_lo: float
    auc_hi: float
    tpr_1pct: float | None
    tpr_1pct_lo: float | None
    tpr_1pct_hi: float | None
    tpr_01pct: float | None
    tpr_01pct_lo: float | None
    tpr_01pct_hi: float | None
    n_positive: int
    n_negative: int

    def record(self, prefix: str = "ulira_") -> dict:
        """The record keys (`unlearning.common.schema`): `prefix` + auc, auc_lo, ..., tpr_01pct_hi."""
        return {f"{prefix}{m}{end}": getattr(self, f"{m}{end}") for m in MEASURES for end in ("", "_lo", "_hi")}


def attack(u, r, *, examples=None, seed: int = 0, n_resamples: int = N_RESAMPLES, refit: bool = REFIT) -> Attack:
    """The U-LiRA attack on `u` (N, M) against `r` (N', M) over the pairs of `examples` (indices into M; default
    all), with `CONFIDENCE` bootstrap intervals (module docstring, 2); `refit` False: scores held fixed."""
    u, r = _check(u, r)
    if examples is not None:
        examples = np.asarray(examples)
        if examples.ndim != 1 or not examples.size or examples.dtype.kind not in "iu" or \
                examples.min() < -u.shape[1] or examples.max() >= u.shape[1]:
            raise ValueError(f"examples={examples!r}: give a non-empty 1-D array of indices into the "
                             f"{u.shape[1]} examples")
    if n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples!r}: give at least 1")
    floor = _floor(u, r)                            # of the whole panel: a property of the examples' φ scale
    if examples is not None:
        u, r, floor = u[:, examples], r[:, examples], floor[examples]
    (n, m), n_r = u.shape, len(r)
    su, sr = _scores(u, r, floor, np.ones(n, int), np.ones(n_r, int), MATCHED_FITS)
    resolved = tuple(t for t in FPRS.values() if sr.size * t >= 1)      # the others: None
    point = _measures(su, sr, np.ones_like(su), np.ones_like(sr), resolved)
    point[0] = roc_auc_score(np.r_[np.ones(su.size), np.zeros(sr.size)], np.r_[su.ravel(), sr.ravel()])

    def statistic(x, y, e):
        cu, cr, ce = np.bincount(x, minlength=n), np.bincount(y, minlength=n_r), np.bincount(e, minlength=m)
        a, b = _scores(u, r, floor, cu, cr, MATCHED_FITS) if refit else (su, sr)
        return _measures(a, b, np.outer(cu, ce), np.outer(cr, ce), resolved)

    res = stats.bootstrap((np.arange(n), np.arange(n_r), np.arange(m)), statistic, paired=False,
                          vectorized=False, n_resamples=n_resamples, confidence_level=CONFIDENCE,
                          method=BOOTSTRAP_METHOD, rng=np.random.default_rng(seed))
    unresolved = [None] * 3 * (len(FPRS) - len(resolved))
    values = [float(v) for trio in zip(point, *res.confidence_interval, strict=True) for v in trio] + unresolved
    return Attack(*values, n_positive=int(su.size), n_negative=int(sr.size))


# -- the most vulnerable points ------------------------------------------------------------------------------------
def vulnerable(control, r, share: float = VULNERABLE_SHARE) -> np.ndarray:
    """Indices (ascending) of the `share` of the examples where the originals `control` (N'', M) stand furthest from
    retraining `r` (N', M) in retrained sd: |c̄_j − r̄_j| / s_j largest. Count: share · M rounded to the nearest
    integer (halves up), at least 1. Ties broken by the lower example index (a stable sort)."""
    if not 0 < share <= 1:
        raise ValueError(f"share={share!r}: give the share of the examples to keep, in (0, 1]")
    r = _phi(r, "r")
    c = _phi(control, "control", 1)               # only its mean is used
    if c.shape[1] != r.shape[1]:
        raise ValueError(f"control and r: give φ over the same examples; got shapes {c.shape} and {r.shape}")
    sd = np.maximum(r.std(axis=0, ddof=1), SIGMA_FLOOR_MIN * (1 + np.abs(r.mean(axis=0))))
    distance = np.abs(c.mean(axis=0) - r.mean(axis=0)) / sd
    k = max(1, math.floor(share * r.shape[1] + 0.5))
    return np.sort(np.argsort(-distance, kind="stable")[:k])


# -- the record ---------------------------------------------------------------------------------------------------
def ulira_metrics(u, r, *, control=None, u_retain=None, r_retain=None, seed: int = 0,
                  n_resamples: int = N_RESAMPLES) -> dict:
    """The flat record (module docstring, 4): `ulira_*` on all forget examples; `ulira_vulnerable_*` on the most
    vulnerable share (None without `control`) and `ulira_vulnerable_points`; `ulira_retain_*` on the retain
    sample's φ `u_retain` (N, R) and `r_retain` (N', R) of the same models (None without them)."""
    if (u_retain is None) != (r_retain is None):
        raise ValueError("give u_retain and r_retain together (φ of both groups on the same retain sample), or "
                         "neither")
    none = {f"{m}{end}": None for m in MEASURES for end in ("", "_lo", "_hi")}
    out = attack(u, r, seed=seed, n_resamples=n_resamples).record(PREFIXES[0])
    picked = None if control is None else vulnerable(control, r)
    if picked is None or len(picked) < 2:          # the bootstrap over examples needs two
        out.update({PREFIXES[1] + k: v for k, v in none.items()},
                   ulira_vulnerable_points=None if picked is None else len(picked))
    else:
        out.update(attack(u, r, examples=picked, seed=seed, n_resamples=n_resamples).record(PREFIXES[1]),
                   ulira_vulnerable_points=len(picked))
    if u_retain is None:
        out.update({PREFIXES[2] + k: v for k, v in none.items()})
    else:
        _check(u_retain, r_retain, ("u_retain", "r_retain"))
        out.update(attack(u_retain, r_retain, seed=seed, n_resamples=n_resamples).record(PREFIXES[2]))
    return out
