"""The in-memory dataset every model, method and metric works on.

A `Data` holds the train and test tensors of one dataset (on the CPU; the
training loop moves them to the device once), the task it poses and the
paper's own deletion target. Loaders build one; nothing downstream reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

TASKS = ("binary", "regression", "multiclass")
FORGET_POLICIES = ("remove", "replace")


class DataUnavailableError(RuntimeError):
    """A dataset's files are neither in a local directory nor downloadable."""


class ChecksumError(ValueError):
    """A dataset file's bytes do not match the published hash."""

    def __init__(self, path, algorithm: str, expected: str, actual: str):
        self.path, self.algorithm, self.expected, self.actual = str(path), algorithm, expected, actual
        super().__init__(
            f"{path}: {algorithm} mismatch: expected {expected}, got {actual}. "
            "The file is corrupt or truncated; delete it (or let the loader download it again)."
        )


@dataclass
class Data:
    """Train/test tensors of one dataset, plus what the papers need on top.

    `x_replacement`/`y_replacement` (same shape as the train set) hold, for
    datasets whose oracle set *replaces* a deleted point instead of dropping
    it (paper 000's synthetic set), the point that takes index i's place.
    """

    name: str
    task: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int | None = None
    target_index: int | None = None
    x_replacement: torch.Tensor | None = None
    y_replacement: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; allowed: {', '.join(TASKS)}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: features and labels differ in length")

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def check_forget(self, forget) -> torch.Tensor:
        """Validate forget indices and return them as a 1-D int64 tensor (order kept)."""
        raw = forget if isinstance(forget, torch.Tensor) else torch.as_tensor(forget)
        if raw.dtype == torch.bool:
            raise ValueError("forget must be training-set indices, not a boolean mask; "
                             "use torch.nonzero(mask).flatten()")
        if raw.numel() and (raw.is_floating_point() or raw.is_complex()):
            raise ValueError(f"forget indices must be integers, got {raw.dtype} (first: {raw.flatten()[0].item():g}); "
                             "give integer positions in the training set")
        idx = raw.to(torch.long).flatten()
        if idx.numel() == 0:
            raise ValueError("removal size 0: give at least one index to forget")
        if idx.numel() > self.n_train:
            raise ValueError(f"removal size {idx.numel()} exceeds the {self.n_train} training points of {self.name}")
        bad = idx[(idx < 0) | (idx >= self.n_train)]
        if bad.numel():
            raise ValueError(
                f"forget index {int(bad[0])} out of range: allowed 0..{self.n_train - 1} for {self.name}"
            )
        uniq, counts = torch.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"duplicate forget index {int(uniq[counts > 1][0])}: each point can be removed once")
        if idx.numel() == self.n_train:
            raise ValueError(f"removal size {idx.numel()} would remove every training point of {self.name}")
        return idx

    def retain_mask(self, forget: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(self.n_train, dtype=torch.bool)
        mask[forget] = False
        return mask

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Data":
        """A smaller copy: seeded random `n_train` training and `n_test` test rows, file order kept.

        The deletion target (if any) is always kept and re-indexed; replacement
        points follow their rows. For quick profiles of the benchmarks.
        """
        def pick(n_all, n, keep=None):
            if n is None or n >= n_all:
                return torch.arange(n_all)
            if n < 1:
                raise ValueError(f"subset size {n}: must be >= 1")
            perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(seed))
            if keep is not None:
                perm = torch.cat([torch.tensor([keep]), perm[perm != keep]])
            return perm[:n].sort().values

        tr, te = pick(self.n_train, n_train, self.target_index), pick(len(self.x_test), n_test)
        target = None if self.target_index is None else int((tr == self.target_index).nonzero()[0, 0])
        rep = (lambda t: None if t is None else t[tr])
        return Data(self.name, self.task, self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te],
                    self.num_classes, target, rep(self.x_replacement), rep(self.y_replacement),
                    {**self.info, "subset": {"train": len(tr), "test": len(te), "seed": seed}})

    def check_policy(self, policy: str) -> None:
        """Raise ValueError unless `policy` is a forget policy this dataset supports."""
        if policy not in FORGET_POLICIES:
            raise ValueError(f"unknown forget policy {policy!r}; allowed: {', '.join(FORGET_POLICIES)}")
        if policy == "replace" and self.x_replacement is None:
            raise ValueError(f"forget policy 'replace' needs replacement points, which {self.name} does not define; "
                             "use 'remove'")

    def oracle_set(self, forget, policy: str = "remove") -> tuple[torch.Tensor, torch.Tensor]:
        """The training set an oracle sees after `forget` is deleted.

        `remove` drops the points; `replace` puts each point's precomputed
        replacement in its place (paper 000, section 3.1), so the set keeps its size.
        """
        forget = self.check_forget(forget)
        self.check_policy(policy)
        if policy == "remove":
            mask = self.retain_mask(forget)
            return self.x_train[mask], self.y_train[mask]
        x, y = self.x_train.clone(), self.y_train.clone()
        x[forget], y[forget] = self.x_replacement[forget], self.y_replacement[forget]
        return x, y


LOADERS: dict[str, Callable[..., Data]] = {}
SHAPES: dict[str, tuple[str, tuple[int, ...], int | None]] = {}


def register_loader(name: str, task: str, input_shape: tuple[int, ...], num_classes: int | None = None):
    """Register a dataset loader under `name` (used by `load_dataset`), with the task and
    input shape its data always has (so `probe_data` can answer without loading files)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")

    def wrap(fn):
        LOADERS[name] = fn
        SHAPES[name] = (task, tuple(input_shape), num_classes)
        return fn

    return wrap


def probe_data(name: str) -> Data:
    """A two-row stand-in with the task and shapes of dataset `name`, for applicability checks
    that must not load (or download) the real files."""
    if name not in SHAPES:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(SHAPES))}")
    task, shape, k = SHAPES[name]
    x = torch.zeros(2, *shape)
    y = torch.zeros(2, dtype=torch.long if task == "multiclass" else torch.float32)
    return Data(name, task, x, y, x[:0], y[:0], num_classes=k, info={"probe": True})


def load_dataset(name: str, **options) -> Data:
    """Load a dataset by name: `synthetic`, `california` or `mnist` (see each loader for options)."""
    try:
        loader = LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(LOADERS))}") from None
    return loader(**options)
