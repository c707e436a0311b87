"""Which points a removal request names: the forget-set regimes.

- `random` (the papers'): the dataset's own deletion target first (paper 000), then
  seeded random training points. A model that generalises barely memorises such points,
  so forgetting metrics may not tell a no-op from retraining on them: a finding, not a bug.
- `classwise` (SalUn, SCRUB): `size` seeded points of one class (all of it when `size` is
  the class's count). Classification only.
- `canaries`: `size` seeded training points get a wrong label *before* the original is
  trained, so they are memorised by construction, and then they are forgotten: a
  retrained model gets them "wrong" by their canary label, a no-op keeps them. The
  wrong label: multiclass, a seeded draw among the other classes; binary, the other
  class; regression, the label moved half the training labels' range, wrapped into it
  (`y' = lo + (y − lo + (hi − lo)/2) mod (hi − lo)`), so every canary is far from its truth.

`select(data, size, seed, regime)` returns the data the original must be trained on (the
same object except for canaries) and the forget indices.
"""

from __future__ import annotations

import torch

from ..config import check_choice
from . import Data

REGIMES = ("random", "classwise", "canaries")
DEFAULT_CLASS = 0          # the class `classwise` forgets unless told otherwise


def select_random(data: Data, size: int = 1, seed: int = 0) -> torch.Tensor:
    """The points to remove: the dataset's own target first (paper 000), then seeded random others.

    Datasets without a target (MNIST) get `size` seeded random training points.
    """
    _check_size(data, size)
    perm = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(seed))
    if data.target_index is None:
        return perm[:size]
    rest = perm[perm != data.target_index][: size - 1]
    return torch.cat([torch.tensor([data.target_index]), rest])


def select_class(data: Data, size: int, seed: int = 0, forget_class: int = DEFAULT_CLASS) -> torch.Tensor:
    """`size` seeded training points of class `forget_class` (file order)."""
    _check_size(data, size)
    if not data.is_classification:
        raise ValueError(f"forget regime 'classwise' needs classes; {data.name} is {data.task}")
    classes = range(data.num_classes or 2)
    check_choice("forget class", forget_class, list(classes))
    members = torch.nonzero(data.y_train.long() == forget_class).flatten()
    if size > len(members):
        raise ValueError(f"removal size {size}: class {forget_class} of {data.name} has {len(members)} training "
                         f"points; allowed 1..{len(members)}")
    pick = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed))[:size]
    return members[pick.sort().values]


def wrong_labels(data: Data, idx: torch.Tensor, seed: int) -> torch.Tensor:
    """Canary labels for rows `idx` (see the module docstring), as `data.y_train`'s dtype."""
    y = data.y_train[idx]
    if data.task == "binary":
        return 1 - y
    if data.task == "multiclass":
        k = data.num_classes
        shift = torch.randint(1, k, (len(idx),), generator=torch.Generator().manual_seed(seed))
        return ((y.long() + shift) % k).to(y.dtype)
    lo, hi = float(data.y_train.min()), float(data.y_train.max())
    if hi <= lo:
        raise ValueError(f"canaries need labels that vary; every training label of {data.name} is {lo:g}")
    return (lo + torch.remainder(y - lo + (hi - lo) / 2, hi - lo)).to(y.dtype)


def with_canaries(data: Data, size: int, seed: int = 0) -> tuple[Data, torch.Tensor]:
    """A copy of `data` whose `size` seeded rows carry wrong labels, and those rows' indices."""
    _check_size(data, size)
    idx = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(seed))[:size].sort().values
    y = data.y_train.clone()
    y[idx] = wrong_labels(data, idx, seed)
    info = {**data.info, "canaries": {"count": size, "seed": seed, "true_labels": data.y_train[idx].tolist()}}
    return Data(data.name, data.task, data.x_train, y, data.x_test, data.y_test, data.num_classes,
                data.target_index, data.x_replacement, data.y_replacement, info, data.spec), idx


def select(data: Data, size: int, seed: int = 0, regime: str = "random",
           forget_class: int = DEFAULT_CLASS) -> tuple[Data, torch.Tensor]:
    """The data to train the original on and the forget indices, under `regime` (REGIMES)."""
    check_choice("forget regime", regime, REGIMES)
    if regime == "canaries":
        return with_canaries(data, size, seed)
    if regime == "classwise":
        return data, select_class(data, size, seed, forget_class)
    return data, select_random(data, size, seed)


def _check_size(data: Data, size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size < data.n_train:
        raise ValueError(f"removal size {size!r}: allowed 1..{data.n_train - 1} for {data.name}")
