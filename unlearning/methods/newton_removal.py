"""Certified removal's one-step Newton update of a convex head on the trained model's frozen features.

Guo, Goldstein, Hannun, van der Maaten, "Certified Data Removal from Machine Learning Models"
(ICML 2020, arXiv:1911.03030; reference code facebookresearch/certified-removal, `test_removal.py`).

The trained network up to its last `nn.Linear` is a frozen feature map φ (the paper's public
feature extractor, section 4); that Linear layer is replaced by an L2-regularised convex head
fit on φ of the whole training set — logistic regression (binary; one-vs-rest, one binary head
per class, for multiclass, the reference's `--train-mode ovr`) or ridge regression. Removing a
set R of m points is one Newton step on the head: w⁻ = w + H⁻¹Δ.

Normalisation (the paper's, section 3): each head minimises the SUM objective
L(w; D) = Σ_{i∈D} ℓ(wᵀx_i, y_i) + λ|D|/2 ‖w‖² (+ bᵀw with the optional loss perturbation), with λ
fixed per point, so the regulariser shrinks to λ(n − m) when m points go (the reference's mean
objective `lr_loss` + λ/2‖w‖², times n). ℓ is log(1 + exp(−y z)) with y = ±1 for logistic and
½(z − y)² for ridge. Then Δ = Σ_{j∈R} (∇ℓ(wᵀx_j, y_j) + λw) = −∇L(w; D \\ R) and H = ∇²L(w; D \\ R),
formed by down-dating the training Hessian that the fit leaves behind (the amortised part:
removing m points costs m rank-one down-dates and one d×d solve per head, not a pass over D).
The bound recorded is the data-dependent gradient-residual bound of Guo et al. (section 3,
"Data-dependent bound"; their Corollary 1 is its worst-case batch form γ(n−m)‖H⁻¹Δ‖²):
‖∇L(w⁻; D \\ R)‖ ≤ γ ‖X‖₂ ‖H⁻¹Δ‖ ‖X H⁻¹Δ‖, X the remaining features, γ the Lipschitz constant of
ℓ'' (1/4 for the logistic loss, as the reference's `spec_norm / 4`; 0 for ridge, where one Newton
step is exact). Per head; `newton_bound` is their root sum of squares, a bound on the Frobenius
norm of the whole head's gradient. Because L(·; D \\ R) is λ(n − m)-strongly convex, the exact
retrained head w* satisfies ‖w⁻ − w*‖ ≤ ‖∇L(w⁻)‖ / (λ(n − m)) ≤ bound / (λ(n − m))
(`newton_distance_bound`), what `tests/test_method_newton_removal.py` checks against scikit-learn.
Where the dataset's oracle *replaces* a point (paper 000's synthetic set), the step removes it
and adds its replacement: the same update with that point's terms entering with sign −1.

Choices where the paper and the reference are silent or do not fit here:
- The bias: the paper's head has none. Ours is a weight on a constant feature 1, regularised
  with λ like every other weight, so the objective stays λ|D|-strongly convex and the bound holds.
- No feature normalisation. The reference scales every feature vector to unit norm (the
  paper's ‖x‖ ≤ 1, needed only by the data-independent bound of Theorem 1, not recorded); here
  the head must stay the model's own `nn.Linear` on the model's own features, so the unlearned
  model is the trained architecture with new last-layer weights. Layers after the last Linear
  that hold no parameters (California's output ReLU) stay, as post-processing of the head.
- The fit: the reference runs 100 L-BFGS steps at gradient tolerance 1e-10 (`lr_optimize`);
  ours is Newton's method with backtracking in float64 to the same tolerance on the mean
  objective's gradient (max |·|), exact in a few iterations at these sizes (d ≤ 129), so w is
  the minimiser Δ's formula assumes. Ridge is the closed form. Features are taken in eval mode.
- λ: see `NewtonConfig`. σ (loss perturbation): 0 by default, no noise; with σ > 0, b ~ N(0, σ²)
  per weight from the run's seed, and the removal is (ε, δ)-certified (the paper's Theorem 3)
  for ε = bound·√(2 ln(1.5/δ))/σ.
- Cost: the head's fit (features of the training set + Newton fit) is the amortised training
  cost, in `details` (`newton_fit_seconds`); `cost` is the removal (Δ, the down-dates, the
  solves, the bound). `newton_grad_norm`, the actual ‖∇L(w⁻; D \\ R)‖, is measured after it.
  Measured on the 2-core CPU beside other jobs (one thread): an MNIST-sized fit (n = 60,000,
  d = 129, 10 heads) takes 10 Newton iterations, ≈ 4.5 s each (one float64 Hessian per head,
  n·d² flops), 55 s in all; removing 100 points then takes 0.11 s. Digits: < 0.2 s and ~1 ms.
Reference defect: the reference hard-codes `device = torch.device("cuda")`; here every tensor
lives on the trained model's device (`trained.device`), CPU included.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import check_int, check_real
from ..training.train import TrainRecord, predict
from .base import UnlearnResult, register
from .space import Real, Space

NAME = "newton_removal"
PAPER = ("Guo, Goldstein, Hannun, van der Maaten: Certified Data Removal from Machine Learning Models "
         "(ICML 2020), one Newton step on a convex head over frozen features")
GAMMA = {"logistic": 0.25, "ridge": 0.0}    # Lipschitz constant of ℓ'': reference test_removal.py `spec_norm / 4`
MAX_HALVINGS = 60                            # backtracking steps of one Newton iteration of the fit


@dataclass(frozen=True)
class NewtonConfig:
    """Guo et al.'s head and removal (see the module docstring for the objective).

    `lam`: λ, per training point (the sum objective's regulariser is λ|D|/2 ‖w‖²). The reference's
    default is 1e-6 (test_removal.py `--lam`), for unit-norm ResNet features and n ≈ 600,000
    (SVHN); on our unnormalised features and n = 10..60,000 it leaves near-separable heads with
    huge weights and a bound of no use, so our default is 1e-3, searched over 1e-6..1e-1.
    `max_iter`: Newton iterations of the fit (the reference: 100 L-BFGS steps, `--num-steps`).
    `tol`: the fit stops when max |∇| of the mean objective is at most this (the reference's
    `lr_optimize(tol=1e-10)`, L-BFGS's `tolerance_grad`).
    `sigma`: σ of the loss perturbation b; the reference's `--std` is 10, ours 0 (no noise).
    """

    lam: float = 1e-3
    max_iter: int = 100
    tol: float = 1e-10
    sigma: float = 0.0

    def __post_init__(self):
        check_real("lam", self.lam, 0.0, low_open=True)
        check_int("max_iter", self.max_iter, 1)
        check_real("tol", self.tol, 0.0, low_open=True)
        check_real("sigma", self.sigma, 0.0)


@dataclass
class Head:
    """A fitted head: weights `w` (C, d), the last column the bias; the loss perturbation `b` (C, d);
    the training objective's Hessian at `w` (C, d, d) and the Gram XᵀX (d, d), kept for removals."""

    loss: str
    lam: float
    w: torch.Tensor
    b: torch.Tensor
    hessian: torch.Tensor
    gram: torch.Tensor
    iterations: int
    grad_norm: float


def head_position(model: nn.Module) -> tuple[int | None, str | None]:
    """The index of the model's last Linear layer, or None and why the method cannot use it."""
    if not isinstance(model, nn.Sequential):
        return None, f"it needs an nn.Sequential ending in an nn.Linear, got {type(model).__name__}"
    linear = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    if not linear:
        return None, "the model has no nn.Linear layer to replace by a convex head"
    pos = linear[-1]
    for j in range(pos + 1, len(model)):
        if any(True for _ in model[j].parameters()) or any(True for _ in model[j].buffers()):
            return None, (f"layer {j} ({type(model[j]).__name__}) after the last Linear holds parameters or "
                          "buffers: the convex head must be the model's output layer")
    return pos, None


def _applies(data, model) -> str | None:
    pos, reason = head_position(model)
    if reason:
        return reason
    want = data.num_classes if data.task == "multiclass" else 1
    if model[pos].out_features != want:
        return (f"the last Linear has {model[pos].out_features} outputs; a {data.task} head on "
                f"{data.name!r} needs {want}")
    return None


def targets(y: torch.Tensor, task: str, num_classes: int | None, device: torch.device) -> torch.Tensor:
    """Per-head targets (n, C), float64: ±1 per class (one-vs-rest), ±1 (binary) or the values (ridge)."""
    y = y.to(device)
    if task == "multiclass":
        return 2.0 * F.one_hot(y.long(), num_classes).double() - 1.0
    if task == "binary":
        return (2.0 * y.double() - 1.0)[:, None]
    return y.double()[:, None]


def features(body: nn.Module, x: torch.Tensor, device: torch.device, bias: bool = True) -> torch.Tensor:
    """φ(x) in eval mode, float64 on `device`, with a constant 1 appended (the bias feature) if `bias`."""
    phi = predict(body, x, device).to(device=device, dtype=torch.float64).reshape(len(x), -1)
    return torch.cat([phi, phi.new_ones(len(x), 1)], dim=1) if bias else phi


def point_terms(loss: str, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ' and ℓ'' at z = x wᵀ, each (n, C)."""
    z = x @ w.T
    if loss == "ridge":
        return z - y, torch.ones_like(z)
    return -y * torch.sigmoid(-y * z), torch.sigmoid(z) * torch.sigmoid(-z)


def objective(loss: str, x, y, w, lam: float, b) -> torch.Tensor:
    """L(w; D) of every head (C,): Σ ℓ + λ|D|/2 ‖w‖² + bᵀw."""
    z = x @ w.T
    data_term = (0.5 * (z - y).square() if loss == "ridge" else F.softplus(-y * z)).sum(0)
    return data_term + 0.5 * lam * len(x) * w.square().sum(1) + (b * w).sum(1)


def gradient(loss: str, x, y, w, lam: float, b) -> torch.Tensor:
    """∇L(w; D) of every head (C, d)."""
    g, _ = point_terms(loss, x, y, w)
    return g.T @ x + lam * len(x) * w + b


def curvature(x: torch.Tensor, d: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_i weight_i ℓ''_i x_i x_iᵀ of every head (C, d, d) (`d`: ℓ'' (n, C); no regulariser)."""
    d = d if weight is None else d * weight[:, None]
    return torch.stack([(x * d[:, c:c + 1]).T @ x for c in range(d.shape[1])])


def _eye(d: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(d, dtype=like.dtype, device=like.device)


def _backtrack(x, y, w, step, grad, lam: float, b) -> torch.Tensor:
    """w − t·step per head, t halved from 1 until the objective decreases enough (Armijo, c = 1e-4)."""
    f0 = objective("logistic", x, y, w, lam, b)
    slack = 8 * torch.finfo(f0.dtype).eps * f0.abs()     # rounding of f near the minimum
    slope = (grad * step).sum(1)
    t = torch.ones_like(f0)
    for _ in range(MAX_HALVINGS):
        ok = objective("logistic", x, y, w - t[:, None] * step, lam, b) <= f0 - 1e-4 * t * slope + slack
        if bool(ok.all()):
            break
        t = torch.where(ok, t, 0.5 * t)
    return w - t[:, None] * step


def fit_head(loss: str, x: torch.Tensor, y: torch.Tensor, lam: float, b: torch.Tensor, max_iter: int,
             tol: float) -> Head:
    """Minimise L(w; D) of every head: ridge in closed form, logistic by Newton's method with backtracking
    until max |∇L / n| <= tol (or `max_iter` iterations)."""
    n, dim = x.shape
    reg = lam * n * _eye(dim, x)
    gram = x.T @ x
    if loss == "ridge":
        hessian = (gram + reg)[None]
        w = torch.linalg.solve(hessian, (y.T @ x - b).unsqueeze(-1)).squeeze(-1)
        iterations = 1
    else:
        w = x.new_zeros(y.shape[1], dim)
        iterations = 0
        while iterations < max_iter:
            grad = gradient(loss, x, y, w, lam, b)
            if float(grad.abs().max()) <= tol * n:
                break
            step = torch.linalg.solve(curvature(x, point_terms(loss, x, y, w)[1]) + reg, grad.unsqueeze(-1))
            w = _backtrack(x, y, w, step.squeeze(-1), grad, lam, b)
            iterations += 1
        hessian = curvature(x, point_terms(loss, x, y, w)[1]) + reg
    grad_norm = float(gradient(loss, x, y, w, lam, b).norm())
    return Head(loss, lam, w, b, hessian, gram, iterations, grad_norm)


def newton_step(head: Head, x_changed: torch.Tensor, y_changed: torch.Tensor, signs: torch.Tensor,
                x_rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w⁻ = w + H⁻¹Δ for the changed rows (sign +1: removed, −1: added), and the data-dependent bound
    γ‖X‖₂‖H⁻¹Δ‖‖XH⁻¹Δ‖ of every head (C,), X = `x_rest` the features of the points that remain."""
    w, lam = head.w, head.lam
    g, d = point_terms(head.loss, x_changed, y_changed, w)
    count = float(signs.sum())
    delta = (g * signs[:, None]).T @ x_changed + lam * count * w
    down = curvature(x_changed, d, signs) + lam * count * _eye(w.shape[1], w)
    v = torch.linalg.solve(head.hessian - down, delta.unsqueeze(-1)).squeeze(-1)
    gram = head.gram - (x_changed * signs[:, None]).T @ x_changed
    spectral = math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))
    bound = GAMMA[head.loss] * spectral * v.norm(dim=1) * (x_rest @ v.T).norm(dim=0)
    return w + v, bound


def _changes(fitted: Fitted, data, forget, policy: str, device):
    """The changed rows (features, targets, signs) and the remaining set (features, targets)."""
    x_all, y_all = fitted.x, fitted.y
    idx = forget.to(device)
    if policy == "remove":
        keep = data.retain_mask(forget).to(device)
        return x_all[idx], y_all[idx], x_all.new_ones(len(idx)), x_all[keep], y_all[keep]
    x_new = features(fitted.body, data.x_replacement[forget], device, fitted.bias)
    y_new = targets(data.y_replacement[forget], data.task, data.num_classes, device)
    x_rest, y_rest = x_all.clone(), y_all.clone()
    x_rest[idx], y_rest[idx] = x_new, y_new
    signs = torch.cat([x_all.new_ones(len(idx)), -x_all.new_ones(len(idx))])
    return torch.cat([x_all[idx], x_new]), torch.cat([y_all[idx], y_new]), signs, x_rest, y_rest


def _install(model: nn.Sequential, pos: int, w: torch.Tensor) -> None:
    """Write the head (C, d) into the model's last Linear: weight = w[:, :-1], bias = w[:, -1] (a Linear
    without bias: weight = w)."""
    layer = model[pos]
    with torch.no_grad():
        if layer.bias is None:
            layer.weight.copy_(w)
        else:
            layer.weight.copy_(w[:, :-1])
            layer.bias.copy_(w[:, -1])


@dataclass
class Fitted:
    """A copy of the trained model, where its head sits, the frozen body before it, whether the head has
    a bias, the training set's features and targets, and the head fit on them."""

    model: nn.Sequential
    pos: int
    body: nn.Module
    bias: bool
    x: torch.Tensor
    y: torch.Tensor
    head: Head


def _fit(trained, data, cfg: NewtonConfig, seed: int) -> Fitted:
    """The convex head on the frozen features of the whole training set (the amortised training cost)."""
    model = trained.copy_model().eval()
    pos, _ = head_position(model)
    body, bias, device = model[:pos], model[pos].bias is not None, trained.device
    loss = "ridge" if data.task == "regression" else "logistic"
    x_all = features(body, data.x_train, device, bias)
    y_all = targets(data.y_train, data.task, data.num_classes, device)
    gen = torch.Generator().manual_seed(seed)
    b = (cfg.sigma * torch.randn(y_all.shape[1], x_all.shape[1], generator=gen, dtype=torch.float64)).to(device)
    head = fit_head(loss, x_all, y_all, cfg.lam, b, cfg.max_iter, cfg.tol)
    return Fitted(model, pos, body, bias, x_all, y_all, head)


def _one(trained, data, forget, config) -> UnlearnResult:
    cfg = config.method_settings(NAME)
    t0 = time.perf_counter()
    fitted = _fit(trained, data, cfg, config.seed)
    head = fitted.head
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    x_ch, y_ch, signs, x_rest, y_rest = _changes(fitted, data, forget, config.forget_policy, trained.device)
    w_new, bound = newton_step(head, x_ch, y_ch, signs, x_rest)
    seconds = time.perf_counter() - t0
    residual = float(gradient(head.loss, x_rest, y_rest, w_new, cfg.lam, head.b).norm())
    _install(fitted.model, fitted.pos, w_new)
    total_bound = float(bound.norm())
    rec = TrainRecord(steps=1, samples=len(signs), seconds=seconds, converged=None,
                      rule=f"one Newton step on the {head.loss} head (lambda {cfg.lam:g}): {len(signs)} rows' "
                           "gradients and Hessians down-dated, one solve per head, the bound's pass")
    details = {
        "newton_lambda": cfg.lam, "newton_sigma": cfg.sigma, "newton_heads": int(head.w.shape[0]),
        "newton_features": int(head.w.shape[1]), "newton_fit_seconds": fit_seconds,
        "newton_fit_iterations": head.iterations, "newton_fit_grad_norm": head.grad_norm,
        "newton_bound": total_bound, "newton_grad_norm": residual,
        "newton_distance_bound": total_bound / (cfg.lam * len(x_rest)),
        "newton_step_norm": float((w_new - head.w).norm()),
    }
    return UnlearnResult(NAME, fitted.model, rec, details)


@register(NAME, settings=NewtonConfig, paper=PAPER, applies=_applies, batched=True,
          search=Space({"lam": Real(1e-6, 1e-1)}, note="λ only: the fit is exact, σ > 0 only adds noise",
                       does_little=False))                # a Newton step always moves the head
def newton_removal(problems) -> list[UnlearnResult]:
    """One Newton step of a convex head on the frozen features (Guo et al.'s certified removal).

    The K problems one after the other (each a few small dense solves: nothing to batch).
    """
    return [_one(p.trained, p.data, p.forget, p.config) for p in problems]
