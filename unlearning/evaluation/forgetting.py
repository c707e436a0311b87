"""Forgetting quality: did a model forget the forget set, or only keep its accuracy?

Small pure functions on model outputs (torch tensors or arrays, on the CPU), each with its
formula here; scikit-learn fits the attackers and computes ROC AUC, scipy is the reference
the tests check the divergences against. Nothing here trains a model.

Notation: `out` are a model's raw outputs on a set (one logit per row for `binary`, k
logits for `multiclass`, one value for `regression`), `y` the labels of that set.

- **Per-example MIA features** (`mia_features`): from the model's predictive distribution
  p = softmax(out) (binary: p = (1 − σ(z), σ(z))):
  `confidence` p_y (SalUn's default); `entropy` −Σ_i p_i ln p_i; `modified_entropy`
  (Song & Mittal 2021) −(1 − p_y) ln p_y − Σ_{i≠y} p_i ln(1 − p_i); `correctness`
  1[argmax p = y]; `loss`, the negative per-example loss (−cross-entropy; regression: the
  negative squared error), the only one defined for regression.
- **MIA-efficacy** (`mia_efficacy`, the SalUn / Unlearn-Sparse recipe): an attacker
  (`SVC(C=3, gamma="auto", kernel="rbf")`, or logistic regression) learns to tell retain
  points (members, label 1) from test points (non-members, 0) by their features, on a
  balanced, seeded sample; MIA-efficacy is the share of forget points it calls
  non-members. High: the forget set looks unseen.
- **Loss-attack AUC** (`loss_auc`): ROC AUC of −loss as a score separating forget points
  (positives) from test points; 0.5: indistinguishable, 1: every forget point has a lower
  loss than every test point (remembered).
- **Divergence to the oracle** (`divergences`): per-row KL(p_m ‖ p_o) and Jensen–Shannon
  JS(p_m, p_o) = ½ KL(p_m ‖ μ) + ½ KL(p_o ‖ μ), μ = (p_m + p_o)/2, in nats (JS ≤ ln 2),
  averaged over the rows; computed from log-probabilities in float64, so confident
  models never give ∞ from an underflowed 0. Classification only.
- **Per-example ε and forget quality F** (NeurIPS 2023 unlearning challenge): see
  `logit_confidence`, `epsilon_per_example`, `forget_quality`, `unlearn_score`. The
  attacks are single thresholds (φ > t, the challenge's direction) and, with
  `DOUBLE_THRESHOLD`, intervals t1 < φ ≤ t2. The best of many attacks is biased upward
  by sampling noise, the more so the more attacks: two groups drawn from one normal
  distribution (300 examples, measured) give F = 0.44 / 0.43 / 0.41 at N = 16 / 32 / 128
  with single thresholds and 0.14 / 0.10 / 0.07 with intervals too. So F is only read
  beside its ceiling at the same N (a second group of retrained models against the first).
- **Composites**: `tug_of_war` (ToW) and run-time efficiency `rte`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

FEATURES = ("confidence", "entropy", "modified_entropy", "correctness", "loss")
ATTACKERS = ("svc", "logistic")
MIA_MAX_PER_SIDE = 5000      # attacker training rows per side (members, non-members): RBF SVC is quadratic
SVC_PARAMS = {"C": 3, "gamma": "auto", "kernel": "rbf"}   # SalUn's SVC_MIA
DELTA = 1e-5                 # δ of the (ε, δ) attacks (the challenge's value)
EPSILON_MAX = 50.0           # ε clipped to [0, EPSILON_MAX]
EPSILON_BIN = 0.5            # H(ε) = 2^(−⌊ε / EPSILON_BIN⌋)
DOUBLE_THRESHOLD = True      # ε over single and double (interval) threshold attacks, as the challenge
LOG_FLOOR = 1e-30            # probabilities floored here inside a log (Song & Mittal's constant)


def _as_tensor(a) -> torch.Tensor:
    return a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


def default_feature(task: str) -> str:
    """The MIA feature used unless one is asked for: confidence, or the loss for regression."""
    return "loss" if task == "regression" else "confidence"


def log_probs(out, task: str) -> torch.Tensor:
    """(n, k) float64 log-probabilities of a classifier's outputs (binary: k = 2 from one logit)."""
    out = _as_tensor(out).double()
    if task == "binary":
        z = out.reshape(-1)
        return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], dim=1)
    if task == "multiclass":
        return F.log_softmax(out.reshape(len(out), -1), dim=1)
    raise ValueError(f"predictive distributions are defined for classification tasks, not {task!r}")


def per_example_loss(out, y, task: str) -> np.ndarray:
    """The training loss of each row: cross-entropy (binary: on one logit), or the squared error."""
    y = _as_tensor(y)
    if task == "regression":
        return ((_as_tensor(out).double().reshape(-1) - y.double()) ** 2).numpy()
    lp = log_probs(out, task)
    return (-lp.gather(1, y.long().reshape(-1, 1)).reshape(-1)).numpy()


def mia_features(out, y, task: str, kind: str | None = None) -> np.ndarray:
    """One feature per row (see the module docstring); `kind` in FEATURES, default `default_feature`."""
    kind = kind or default_feature(task)
    if kind not in FEATURES:
        raise ValueError(f"unknown MIA feature {kind!r}; allowed: {', '.join(FEATURES)}")
    if kind == "loss":
        return -per_example_loss(out, y, task)
    if task == "regression":
        raise ValueError(f"MIA feature {kind!r} needs class probabilities; for regression use 'loss'")
    lp = log_probs(out, task)
    p = lp.exp()
    yi = _as_tensor(y).long().reshape(-1, 1)
    p_y = p.gather(1, yi).reshape(-1)
    if kind == "confidence":
        return p_y.numpy()
    if kind == "correctness":
        return (p.argmax(dim=1) == yi.reshape(-1)).double().numpy()
    if kind == "entropy":
        return (-(p * lp).sum(dim=1)).numpy()
    log1m = torch.log((1 - p).clamp_min(LOG_FLOOR))          # ln(1 − p_i)
    others = -(p * log1m).sum(dim=1) + (p_y * log1m.gather(1, yi).reshape(-1))
    return (-(1 - p_y) * torch.log(p_y.clamp_min(LOG_FLOOR)) + others).numpy()


def _balanced(a: np.ndarray, b: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(a), len(b), cap)
    return a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]


def attacker(name: str = "svc", seed: int = 0):
    """A fresh scikit-learn attacker: SalUn's RBF SVC, or logistic regression."""
    if name == "svc":
        from sklearn.svm import SVC
        return SVC(**SVC_PARAMS)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(random_state=seed)
    raise ValueError(f"unknown MIA attacker {name!r}; allowed: {', '.join(ATTACKERS)}")


def mia_efficacy(members, non_members, targets, *, attacker_name: str = "svc", seed: int = 0,
                 max_per_side: int = MIA_MAX_PER_SIDE) -> float:
    """Share of `targets` (the forget set's features) an attacker calls non-members.

    The attacker is trained on an equal number of `members` (retain features, label 1) and
    `non_members` (test features, label 0): min(both sizes, `max_per_side`) of each, drawn
    with `seed`. One feature per row (1-D arrays) or several (2-D).
    """
    sets = [np.asarray(s, dtype=np.float64) for s in (members, non_members, targets)]
    for name, s in zip(("members", "non_members", "targets"), sets, strict=True):
        if len(s) == 0:
            raise ValueError(f"mia_efficacy: {name} is empty; the attack needs retain, test and forget points")
        if not np.isfinite(s).all():
            raise ValueError(f"mia_efficacy: {name} holds non-finite features")
    m, n, t = (s.reshape(len(s), -1) for s in sets)
    m, n = _balanced(m, n, max_per_side, np.random.default_rng(seed))
    if len(np.unique(np.concatenate([m, n]), axis=0)) < 2:
        return 0.5      # every training feature equal: the attacker can only guess
    clf = attacker(attacker_name, seed).fit(np.concatenate([m, n]), np.r_[np.ones(len(m)), np.zeros(len(n))])
    return float(np.mean(clf.predict(t) == 0))


def loss_auc(forget_loss, test_loss) -> float:
    """ROC AUC of −loss separating forget points (positives) from test points (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    f, t = np.asarray(forget_loss, dtype=np.float64), np.asarray(test_loss, dtype=np.float64)
    if not len(f) or not len(t):
        raise ValueError(f"loss_auc needs forget and test points (got {len(f)} and {len(t)})")
    return float(roc_auc_score(np.r_[np.ones(len(f)), np.zeros(len(t))], -np.concatenate([f, t])))


def divergences(out_model, out_oracle, task: str) -> dict[str, float]:
    """Mean KL(p_m ‖ p_o) and JS(p_m, p_o) in nats over the rows (see the module docstring)."""
    lp, lq = log_probs(out_model, task), log_probs(out_oracle, task)
    if lp.shape != lq.shape:
        raise ValueError(f"divergences: outputs differ in shape ({tuple(lp.shape)} vs {tuple(lq.shape)})")
    if not len(lp):
        raise ValueError("divergences: no rows")
    p, q = lp.exp(), lq.exp()
    kl = (p * (lp - lq)).sum(dim=1)
    lm = torch.logaddexp(lp, lq) - math.log(2)
    js = 0.5 * (p * (lp - lm)).sum(dim=1) + 0.5 * (q * (lq - lm)).sum(dim=1)
    return {"kl": float(kl.clamp_min(0).mean()), "js": float(js.clamp(0, math.log(2)).mean())}


def logit_confidence(out, y, task: str) -> np.ndarray:
    """The challenge's per-example statistic φ: ln p_y − ln(1 − p_y) (binary: the logit of
    the true class, ±z); regression: the negative squared error."""
    if task == "regression":
        return -per_example_loss(out, y, task)
    lp = log_probs(out, task)
    yi = _as_tensor(y).long().reshape(-1, 1)
    log_py = lp.gather(1, yi).reshape(-1)
    others = lp.scatter(1, yi, -math.inf)
    return (log_py - torch.logsumexp(others, dim=1)).numpy()


def attack_epsilon(fpr, fnr, delta: float = DELTA) -> np.ndarray:
    """ε of each (FPR, FNR) pair: max(ln(1 − δ − FPR) − ln FNR, ln(1 − δ − FNR) − ln FPR).

    Following the challenge's scorer, an attack with exactly one zero rate is discarded
    (−∞ here: no finite sample can bound its ε) and one with both rates zero, a perfect
    separation, gives +∞; a term whose logarithm is undefined is left out.
    """
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.log(1 - delta - fpr) - np.log(fnr)
        e2 = np.log(1 - delta - fnr) - np.log(fpr)
    eps = np.fmax(e1, e2)
    eps = np.where(np.isnan(eps), np.inf, eps)          # both rates > 1 − δ: the complement separates
    eps = np.where((fpr == 0) ^ (fnr == 0), -np.inf, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def _rates(u: np.ndarray, r: np.ndarray, double: bool) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of every threshold attack on one example: unlearned values `u` are the
    positives, retrained `r` the negatives, t over −∞ and every observed value. Single
    thresholds (the challenge's): positive when φ > t. Double: positive when t1 < φ ≤ t2,
    every pair t1 ≤ t2 (t1 = −∞ gives φ ≤ t2, the single threshold's other direction)."""
    t = np.concatenate([[-np.inf], np.sort(np.concatenate([u, r]))])
    cu = np.searchsorted(np.sort(u), t, side="right") / len(u)     # share of u at or below t
    cr = np.searchsorted(np.sort(r), t, side="right") / len(r)
    fpr, fnr = 1 - cr, cu                                              # positive: φ > t
    if double:
        a, b = np.triu_indices(len(t))
        fpr, fnr = np.concatenate([fpr, cr[b] - cr[a]]), np.concatenate([fnr, 1 - (cu[b] - cu[a])])
    return fpr, fnr


def epsilon_per_example(unlearned, retrained, *, delta: float = DELTA, double: bool = DOUBLE_THRESHOLD) -> np.ndarray:
    """ε of every forget example from N unlearned and N' retrained models' statistics.

    `unlearned` (N, S) and `retrained` (N', S): φ of S forget examples under each model.
    Per example, ε is the largest `attack_epsilon` over every single-threshold attack
    (and, with `double`, every interval attack), clipped to [0, EPSILON_MAX].
    """
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(f"epsilon_per_example: give (models, examples) arrays with the same examples; "
                         f"got {u.shape} and {r.shape}")
    if min(len(u), len(r)) < 2:
        raise ValueError(f"epsilon_per_example: need at least 2 models per group, got {len(u)} and {len(r)}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("epsilon_per_example: non-finite statistics (a model produced inf/nan)")
    eps = np.array([attack_epsilon(*_rates(u[:, j], r[:, j], double), delta=delta).max()
                    for j in range(u.shape[1])])
    return np.clip(eps, 0.0, EPSILON_MAX)


@functools.lru_cache(maxsize=64)
def _range_max(n_u: int, n_r: int, delta: float) -> np.ndarray:
    """RM[b, lo, hi] = max over a in [lo, hi] of `attack_epsilon` of a run holding a of the n_u
    unlearned and b of the n_r retrained values (FPR = b / n_r, FNR = 1 − a / n_u); −∞ for lo > hi."""
    a, b = np.arange(n_u + 1), np.arange(n_r + 1)
    e = attack_epsilon(b[:, None] / n_r, 1 - a[None, :] / n_u, delta)            # (b, a)
    rm = np.full((n_r + 1, n_u + 1, n_u + 1), -np.inf)
    for lo in range(n_u + 1):
        rm[:, lo, lo:] = np.maximum.accumulate(e[:, lo:], axis=1)
    return rm


def _epsilon_by_runs(is_u: np.ndarray, n_u: int, n_r: int, delta: float, double: bool) -> np.ndarray:
    """ε of rows of labels in sorted order (True: an unlearned value; no ties), exactly as
    `epsilon_per_example`: every attack is a run of consecutive sorted values (double: any run;
    single: a suffix), scoring `attack_epsilon` of its counts. Runs holding the retrained values
    k+1..k+b start anywhere in the gap before value k+1 and end anywhere in the gap after k+b,
    so per (b, k) the unlearned count ranges over [inner, outer] and `_range_max` gives the best."""
    rows = len(is_u)
    c = np.zeros((rows, n_r + 2), dtype=np.int64)          # c[:, k]: unlearned values before the k-th retrained
    c[:, 1:-1] = np.flatnonzero(~is_u.reshape(-1)).reshape(rows, n_r) % is_u.shape[1] - np.arange(n_r)
    c[:, -1] = n_u
    rm, best = _range_max(n_u, n_r, delta), np.full(rows, -np.inf)
    for b in range(n_r + 1):
        k = np.arange(n_r - b + 1) if double else np.array([n_r - b])
        if not b:
            inner = np.zeros((rows, len(k)), dtype=np.int64)
        else:
            inner = c[:, k + b] - c[:, k + 1] if double else n_u - c[:, k + 1]
        outer = c[:, k + b + 1] - c[:, k]
        best = np.maximum(best, rm[b][inner, outer].max(axis=1))
    return best


def epsilon_batch(unlearned, retrained, *, delta: float = DELTA, double: bool = DOUBLE_THRESHOLD) -> np.ndarray:
    """`epsilon_per_example` of many panels at once, exactly: `unlearned` (..., N, S) and
    `retrained` (..., N', S) with the same leading shape give ε (..., S).

    ε depends only on the order of the N + N' values of an example, so each is computed from
    the counts of runs of the sorted values (`_epsilon_by_runs`, O((N')²) integer look-ups
    instead of O((N + N')²) logarithms); an example with tied values goes through
    `epsilon_per_example` itself. Used by the permutation null of F and the F null mean."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim < 2 or r.ndim != u.ndim or u.shape[:-2] != r.shape[:-2] or u.shape[-1] != r.shape[-1]:
        raise ValueError(f"epsilon_batch: give (..., models, examples) arrays with the same examples; "
                         f"got {u.shape} and {r.shape}")
    n_u, n_r = u.shape[-2], r.shape[-2]
    pooled = np.moveaxis(np.concatenate([u, r], axis=-2), -2, -1).reshape(-1, n_u + n_r)
    if min(n_u, n_r) < 2 or not np.isfinite(pooled).all():
        return epsilon_per_example(u.reshape(-1, n_u, u.shape[-1])[0], r.reshape(-1, n_r, r.shape[-1])[0])
    order = np.argsort(pooled, axis=1, kind="stable")
    values = np.take_along_axis(pooled, order, axis=1)
    tied = (np.diff(values, axis=1) == 0).any(axis=1)
    eps = np.empty(len(pooled))
    eps[~tied] = _epsilon_by_runs(order[~tied] < n_u, n_u, n_r, delta, double)
    for i in np.flatnonzero(tied):
        eps[i] = attack_epsilon(*_rates(pooled[i, :n_u], pooled[i, n_u:], double), delta=delta).max()
    return np.clip(eps, 0.0, EPSILON_MAX).reshape((*u.shape[:-2], u.shape[-1]))


def epsilon_cap(n_models: int) -> int:
    """⌈ln(N − 1)⌉: the largest finite ε N models per group can show is ln(N − 1); at or
    above the cap an example scores nothing."""
    if n_models < 3:
        raise ValueError(f"forget quality needs at least 3 models per group (its ε cap is ⌈ln(N − 1)⌉), "
                         f"got N = {n_models}")
    return math.ceil(math.log(n_models - 1))


def example_scores(epsilons, n_models: int) -> np.ndarray:
    """H(ε) = 2^(−⌊ε / 0.5⌋) of each example, H = 0 at or above `epsilon_cap(N)`."""
    eps = np.asarray(epsilons, dtype=np.float64)
    return np.where(eps >= epsilon_cap(n_models), 0.0, np.exp2(-np.floor(eps / EPSILON_BIN)))


def forget_quality(epsilons, n_models: int) -> float:
    """F = mean over the forget set of H(ε) (`example_scores`)."""
    if not len(np.asarray(epsilons)):
        raise ValueError("forget_quality: no forget examples")
    return float(example_scores(epsilons, n_models).mean())


def unlearn_score(f: float, retain_unlearned: Sequence[float], retain_retrained: Sequence[float],
                  test_unlearned: Sequence[float], test_retrained: Sequence[float]) -> float:
    """The challenge's score F · (mean retain accuracy ratio) · (mean test accuracy ratio),
    unlearned over retrained models (pass utilities where higher is better)."""
    means = [float(np.mean(v)) for v in (retain_unlearned, retain_retrained, test_unlearned, test_retrained)]
    if means[1] <= 0 or means[3] <= 0:
        return math.nan
    return f * (means[0] / means[1]) * (means[2] / means[3])


def tug_of_war(model: dict, oracle: dict) -> float:
    """ToW = Π over forget, retain and test of (1 − |acc_m − acc_o|): 1 when the model's
    accuracies equal the oracle's; `model` / `oracle` map "forget", "retain", "test" to accuracy in [0, 1]."""
    return float(np.prod([1 - abs(model[k] - oracle[k]) for k in ("forget", "retain", "test")]))


def rte(oracle_seconds: float, seconds: float) -> float | None:
    """Run-time efficiency: oracle seconds over the method's; None at zero cost (a no-op)."""
    return oracle_seconds / seconds if seconds > 0 else None
