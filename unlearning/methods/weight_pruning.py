"""Weight pruning, paper 000 Algorithm 1.

For every Linear layer ℓ, in order:
1. find the n nearest neighbours of the target in the previous layer's
   activation space A_p (the input space for the first layer), Euclidean,
   searched among the points that remain (no forget point is a neighbour);
2. Δ = A(x_t) − mean_k A(x_k), on the layer's input (default) or its
   activated output (`PruningConfig.delta_on`);
3. zero w_ij wherever |Δ_j w_ij| > T_ℓ (input) or |Δ_i w_ij| > T_ℓ (output);
4. set the layer's biases to 0.01.
Then fine-tune the whole model to convergence on the oracle set, with the same
rule as the `finetune` ablation. A set of points is pruned by the union of
their masks (default) or one after another (`PruningConfig.set_rule`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_choice, check_each, check_int, check_real
from .base import UnlearnResult, register
from .finetune import warm_finetune, warm_finetune_many
from .space import Int, Real, Space

PAPER = "Orts, Sanchez, Song: Approximate Data Deletion via Weight Pruning (paper 000, Algorithm 1)"
DELTA_ON = ("input", "output")
SET_RULES = ("union", "sequential")


@dataclass(frozen=True)
class PruningConfig:
    """Paper 000, Algorithm 1.

    `thresholds`: one T_ℓ per Linear layer (the dataset presets give the paper's).
    `delta_on`: the text writes `|Δ_j w_ij|` with `W ∈ R^{m×d}`, so `j` indexes
    the layer's *input*; `Δ` is then the difference of the previous layer's
    activations (the space the neighbours are searched in). That dimensionally
    consistent reading is the default; `output` uses the difference of the
    layer's own (activated) outputs, `|Δ_i w_ij|`, the literal reading of
    `A^(ℓ) = a^[1] ∘ … ∘ a^[ℓ]`.
    `set_rule`: the paper removes one point. `union` (default) computes every
    forget point's mask on the trained model, zeroes the union, resets the
    biases once and fine-tunes once; `sequential` prunes point after point,
    each on the model the previous one left, then fine-tunes once.
    `n_neighbors`: not stated in the paper; see the presets.
    """

    thresholds: tuple[float, ...] = (9.0, 9.0)
    n_neighbors: int = 3
    delta_on: str = "input"
    set_rule: str = "union"
    bias_value: float = 0.01               # "b ← 0.01" for every layer

    def __post_init__(self):
        object.__setattr__(self, "thresholds", check_each(
            "thresholds", self.thresholds, lambda t: check_real("threshold", t, 0.0),
            "numbers >= 0, one per Linear layer", "each must be a finite number >= 0"))
        check_choice("delta_on", self.delta_on, DELTA_ON)
        check_choice("set rule", self.set_rule, SET_RULES)
        check_int("n_neighbors", self.n_neighbors, 1)
        check_real("bias_value", self.bias_value)

# Modules the algorithm can walk: Linear layers, the activations between them,
# and layers that hold no weights (Flatten, Dropout, Identity).
ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.Identity, nn.Dropout, nn.Flatten)


def unsupported_reason(model: nn.Module) -> str | None:
    """Why Algorithm 1 is undefined for this model, or None."""
    if not isinstance(model, nn.Sequential):
        return f"it needs an nn.Sequential of Linear layers and activations, got {type(model).__name__}"
    for i, layer in enumerate(model):
        if not isinstance(layer, (nn.Linear, *ACTIVATIONS)):
            return (f"layer {i} is {type(layer).__name__}; Algorithm 1 is defined for fully-connected "
                    "networks (Linear layers and activations) only")
    return None


def _applies(data, model) -> str | None:
    return unsupported_reason(model)


def check_thresholds(cfg: PruningConfig, model: nn.Module) -> None:
    """One threshold per Linear layer, or ValueError."""
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    if len(cfg.thresholds) != n_linear:
        raise ValueError(f"{len(cfg.thresholds)} thresholds given for {n_linear} Linear layers; "
                         f"give one per layer (thresholds={tuple(cfg.thresholds)})")


def layer_scores(model: nn.Sequential, x: torch.Tensor, target: int, pool: torch.Tensor,
                 cfg: PruningConfig) -> list[torch.Tensor]:
    """Algorithm 1's score of every weight for one target (row `target` of x), per Linear layer:
    `|Δ_j w_ij|` (Δ on the layer input) or `|Δ_i w_ij|` (on its output), Δ the target's
    activation minus the mean of its `n_neighbors` nearest rows of `pool` in the previous
    layer's activation space. The model is assumed checked (`unsupported_reason`).
    """
    linear_at = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    n = min(cfg.n_neighbors, len(pool))
    scores = []
    with torch.no_grad():
        act = x
        for li, start in enumerate(linear_at):
            end = linear_at[li + 1] if li + 1 < len(linear_at) else len(model)
            dist = (act[pool] - act[target]).norm(dim=1)
            nn_idx = pool[dist.topk(n, largest=False).indices]
            weight = model[start].weight
            out = model[start:end](act)       # the layer and the activations after it
            if cfg.delta_on == "input":
                delta = act[target] - act[nn_idx].mean(0)
                scores.append((weight * delta[None, :]).abs())
            else:
                delta = out[target] - out[nn_idx].mean(0)
                scores.append((weight * delta[:, None]).abs())
            act = out
    return scores


def layer_masks(model: nn.Sequential, x: torch.Tensor, target: int, pool: torch.Tensor,
                cfg: PruningConfig) -> list[torch.Tensor]:
    """The boolean prune mask of every Linear layer for one target: score > the layer's threshold.

    `pool` holds the row indices the neighbours may come from. The model and thresholds
    are assumed checked: `prune` checks them once for every target.
    """
    scores = layer_scores(model, x, target, pool, cfg)
    return [score > t for score, t in zip(scores, cfg.thresholds, strict=True)]


def calibrate_thresholds(model: nn.Sequential, x: torch.Tensor, targets: torch.Tensor, quantile: float,
                         cfg: PruningConfig) -> tuple[float, ...]:
    """Thresholds for a net no paper gives any for: per Linear layer, the `quantile` of the
    scores of every weight over the `targets` (each with every other row of x as its
    neighbour pool), so that one removed point zeroes about `1 - quantile` of each layer.
    `cfg` supplies `n_neighbors` and `delta_on` (its thresholds are not used)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile={quantile!r}: must lie strictly between 0 and 1")
    model = model.eval()
    pooled = None
    for t in targets.tolist():
        pool = torch.cat([torch.arange(t), torch.arange(t + 1, len(x))])
        scores = [s.flatten() for s in layer_scores(model, x, t, pool, cfg)]
        pooled = scores if pooled is None else [torch.cat([a, b]) for a, b in zip(pooled, scores, strict=True)]
    return tuple(float(torch.quantile(p, quantile)) for p in pooled)


def prune(model: nn.Sequential, x: torch.Tensor, forget: torch.Tensor, pool: torch.Tensor,
          cfg: PruningConfig) -> dict:
    """Apply Algorithm 1 in place for every forget row of x; return what was zeroed.

    `union`: all masks from the trained model, zeroed together. `sequential`:
    each target's mask is computed on the model the previous targets left,
    with the biases reset after each. ValueError, before anything is zeroed, for a
    model Algorithm 1 does not define or a threshold count that does not fit it.
    """
    reason = unsupported_reason(model)
    if reason:
        raise ValueError(f"weight pruning: {reason}")
    check_thresholds(cfg, model)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    union = [torch.zeros_like(m.weight, dtype=torch.bool) for m in linears]

    def apply(masks):
        with torch.no_grad():
            for layer, mask in zip(linears, masks, strict=True):
                layer.weight[mask] = 0.0
                layer.bias.fill_(cfg.bias_value)

    for t in forget.tolist():
        masks = layer_masks(model, x, t, pool, cfg)
        union = [u | m for u, m in zip(union, masks, strict=True)]
        if cfg.set_rule == "sequential":
            apply(masks)
    apply(union)
    per_layer = [int(u.sum()) for u in union]
    return {"weights_zeroed": sum(per_layer), "weights_zeroed_per_layer": per_layer,
            "weights_total": sum(m.weight.numel() for m in linears)}


def _pruned(problem) -> tuple[nn.Module, dict, float]:
    """A copy of the trained model with Algorithm 1 applied, its details and the seconds it took."""
    trained, data, forget = problem.trained, problem.data, problem.forget
    model = trained.copy_model().eval()   # no dropout while measuring activations
    device = trained.device
    t0 = time.perf_counter()
    x = data.x_train.to(device)
    pool = torch.nonzero(data.retain_mask(forget), as_tuple=True)[0].to(device)
    cfg = problem.config.method_settings("weight_pruning")
    details = prune(model, x, forget.to(device), pool, cfg)
    prune_seconds = time.perf_counter() - t0
    details.update(prune_seconds=prune_seconds, delta_on=cfg.delta_on, set_rule=cfg.set_rule,
                   n_neighbors=cfg.n_neighbors, thresholds=list(cfg.thresholds))
    return model, details, prune_seconds


def _scaled(config, method, values):
    """A point of the search: the preset's per-layer thresholds times `threshold_scale`, and `n_neighbors`."""
    preset = config.method_settings(method)
    return config.with_method(method, thresholds=tuple(t * values["threshold_scale"] for t in preset.thresholds),
                              n_neighbors=values["n_neighbors"])


# The thresholds are tuned together, as one scale of the dataset preset's (their ratios are the paper's
# calibration); n_neighbors, which the paper leaves open, in 1..20 around the presets' 3 and 10.
SEARCH = Space({"threshold_scale": Real(0.1, 10.0), "n_neighbors": Int(1, 20)}, apply=_scaled,
               preset=lambda config, method, names: {"threshold_scale": 1.0,
                                                     "n_neighbors": config.method_settings(method).n_neighbors},
               note="threshold_scale multiplies the dataset preset's per-layer thresholds")


@register("weight_pruning", settings=PruningConfig, paper=PAPER, applies=_applies, check=check_thresholds,
          search=SEARCH, batched=True)
def weight_pruning(problems) -> list[UnlearnResult]:
    """Zero the weights the forget points drive unusually hard, reset biases, fine-tune (paper 000).

    Each model is pruned on its own (per-point masks are per model), then fine-tuned (K > 1 at once,
    `warm_finetune_many`); each model's `seconds` = its pruning + its fine-tune's share.
    """
    pruned = [_pruned(p) for p in problems]
    models = [m for m, _, _ in pruned]
    if len(problems) == 1:
        recs = [warm_finetune(models[0], p.data, p.forget, p.config, p.on_epoch) for p in problems]
    else:
        recs = warm_finetune_many(models, problems)
    total_prune = sum(s for _, _, s in pruned)
    for rec, (_, _, prune_seconds) in zip(recs, pruned, strict=True):
        rec.seconds += prune_seconds
        if len(problems) > 1:                   # a batch: its wall time holds every model's pruning
            rec.batch_seconds += total_prune
    return [UnlearnResult("weight_pruning", m, rec, details) for (m, details, _), rec in zip(pruned, recs, strict=True)]
