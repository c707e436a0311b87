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

import torch
from torch import nn

from ..config import PruningConfig
from .base import UnlearnResult, register
from .finetune import warm_finetune

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


def check_thresholds(model: nn.Module, cfg: PruningConfig) -> None:
    """One threshold per Linear layer, or ValueError."""
    n_linear = sum(isinstance(m, nn.Linear) for m in model)
    if len(cfg.thresholds) != n_linear:
        raise ValueError(f"{len(cfg.thresholds)} thresholds given for {n_linear} Linear layers; "
                         f"give one per layer (thresholds={tuple(cfg.thresholds)})")


def _validate(data, model, config, forget) -> None:
    check_thresholds(model, config.pruning)


def layer_masks(model: nn.Sequential, x: torch.Tensor, target: int, pool: torch.Tensor,
                cfg: PruningConfig) -> list[torch.Tensor]:
    """The boolean prune mask of every Linear layer for one target (row `target` of x).

    `pool` holds the row indices the neighbours may come from.
    """
    check_thresholds(model, cfg)
    linear_at = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    n = min(cfg.n_neighbors, len(pool))
    masks = []
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
                score = (weight * delta[None, :]).abs()
            else:
                delta = out[target] - out[nn_idx].mean(0)
                score = (weight * delta[:, None]).abs()
            masks.append(score > cfg.thresholds[li])
            act = out
    return masks


def prune(model: nn.Sequential, x: torch.Tensor, forget: torch.Tensor, pool: torch.Tensor,
          cfg: PruningConfig) -> dict:
    """Apply Algorithm 1 in place for every forget row of x; return what was zeroed.

    `union`: all masks from the trained model, zeroed together. `sequential`:
    each target's mask is computed on the model the previous targets left,
    with the biases reset after each.
    """
    reason = unsupported_reason(model)
    if reason:
        raise ValueError(f"weight pruning: {reason}")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    union = [torch.zeros_like(m.weight, dtype=torch.bool) for m in linears]

    def apply(masks):
        with torch.no_grad():
            for layer, mask in zip(linears, masks):
                layer.weight[mask] = 0.0
                layer.bias.fill_(cfg.bias_value)

    for t in forget.tolist():
        masks = layer_masks(model, x, t, pool, cfg)
        union = [u | m for u, m in zip(union, masks)]
        if cfg.set_rule == "sequential":
            apply(masks)
    apply(union)
    per_layer = [int(u.sum()) for u in union]
    return {"weights_zeroed": sum(per_layer), "weights_zeroed_per_layer": per_layer,
            "weights_total": sum(m.weight.numel() for m in linears)}


@register("weight_pruning", applies=_applies, validate=_validate)
def weight_pruning(trained, data, forget, config, on_epoch=None) -> UnlearnResult:
    """Zero the weights the forget points drive unusually hard, reset biases, fine-tune (paper 000)."""
    model = trained.copy_model().eval()   # no dropout while measuring activations
    device = trained.device
    t0 = time.perf_counter()
    x = data.x_train.to(device)
    pool = torch.nonzero(data.retain_mask(forget), as_tuple=True)[0].to(device)
    details = prune(model, x, forget.to(device), pool, config.pruning)
    prune_seconds = time.perf_counter() - t0
    rec = warm_finetune(model, data, forget, config, on_epoch)
    rec.seconds += prune_seconds
    details.update(prune_seconds=prune_seconds, delta_on=config.pruning.delta_on,
                   set_rule=config.pruning.set_rule, n_neighbors=config.pruning.n_neighbors,
                   thresholds=list(config.pruning.thresholds))
    return UnlearnResult("weight_pruning", model, rec, details)
