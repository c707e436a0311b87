"""The in-memory dataset every model, method and metric works on.

A `Data` holds the train and test tensors of one dataset (on the CPU; the
training loop moves them to the device once), the task it poses and the
paper's own deletion target. Loaders build one; nothing downstream reads files.
"""

from __future__ import annotations

import operator
import reprlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import FORGET_POLICIES, check_choice

TASKS = ("binary", "regression", "multiclass")


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

    `spec`: the dataset's `DatasetSpec`, resolved once where the data is loaded
    (`registry.load_dataset`) and carried by every subset and copy, so that code holding
    the data (model factory, thread policy, evaluation sets) never looks it up by name
    again. Data built by hand carries none (`registry.spec_of` then looks up its name).
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
    spec: object = field(default=None, repr=False, compare=False)   # a data.registry.DatasetSpec, or None

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
        """Validate forget indices and return them as a 1-D int64 tensor (order kept).

        Allowed: one integer, or a 1-D list, tuple, range, integer tensor or integer numpy
        array of distinct indices in 0..n_train-1 (not all of them). Anything else (None,
        strings, floats, bools, nested lists, 2-D tensors, integers beyond int64) is a
        ValueError naming the value and saying this.
        """
        idx = _forget_tensor(forget, self)
        if idx.numel() == 0:
            raise ValueError("removal size 0: give at least one index to forget")
        if idx.numel() > self.n_train:
            raise ValueError(f"removal size {idx.numel()} exceeds the {self.n_train} training points of {self.name}")
        bad = idx[(idx < 0) | (idx >= self.n_train)]
        if bad.numel():
            raise _forget_out_of_range(int(bad[0]), self)
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

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Data:
        """A smaller copy: seeded random `n_train` training and `n_test` test rows, file order kept.

        The deletion target (if any) is always kept and re-indexed; replacement
        points follow their rows. For the benchmark profiles' scales.
        """
        tr = seeded_split(self.n_train, n_train, seed, keep=self.target_index)[0]
        te = seeded_split(len(self.x_test), n_test, seed)[0]
        return self.with_train_rows(tr, self.x_test[te], self.y_test[te],
                                    {"subset": {"train": len(tr), "test": len(te), "seed": seed}})

    def with_train_rows(self, rows: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, info: dict) -> Data:
        """A copy holding only training rows `rows` (which must include the deletion target, if
        any: it is re-indexed; replacement points follow their rows), the given test set, and
        `info` added to this data's."""
        target = None if self.target_index is None else int((rows == self.target_index).nonzero()[0, 0])
        rep = (lambda t: None if t is None else t[rows])  # noqa: E731
        return Data(self.name, self.task, self.x_train[rows], self.y_train[rows], x_test, y_test,
                    self.num_classes, target, rep(self.x_replacement), rep(self.y_replacement), {**self.info, **info},
                    self.spec)

    def check_policy(self, policy: str) -> None:
        """Raise ValueError unless `policy` is a forget policy this dataset supports."""
        check_choice("forget policy", policy, FORGET_POLICIES)
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


def seeded_split(n: int, size: int | None, seed: int, keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The one seeded subset rule: `size` of `n` row indices, and the other rows, each sorted (file order).

    A torch.Generator seeded with `seed` permutes all n rows; row `keep` (a deletion
    target) is moved to the front so it is always chosen; the first `size` rows of the
    permutation are chosen. `size` None or >= n chooses every row, unshuffled.
    Used by `Data.subset`, the MNIST subsets and the held-out test rows of California and digits.
    """
    if size is None or size >= n:
        return torch.arange(n), torch.arange(0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"subset size {size!r}: must be an integer >= 0 (or None for all {n} rows)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if keep is not None:
        perm = torch.cat([torch.tensor([keep]), perm[perm != keep]])
    return perm[:size].sort().values, perm[size:].sort().values


# --- the conversions behind `Data.check_forget` ---------------------------------------------------------

def _forget_help(data: Data) -> str:
    return (f"give one integer or a 1-D list, range, tensor or array of distinct integer indices "
            f"in 0..{data.n_train - 1} (the training points of {data.name})")


def _forget_out_of_range(index: int, data: Data) -> ValueError:
    return ValueError(f"forget index {index} out of range: allowed 0..{data.n_train - 1} for {data.name}")


def _forget_tensor(forget, data: Data) -> torch.Tensor:
    """`forget` as a 1-D int64 tensor (its range unchecked), or ValueError for anything but integer indices."""
    raw = forget
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "biufc":
        if raw.dtype.kind == "u" and raw.size and raw.max() >= 2**63:
            raw = raw.tolist()              # beyond int64: reported index by index below
        else:
            raw = torch.as_tensor(np.ascontiguousarray(raw.astype(np.int64) if raw.dtype.kind == "u" else raw))
    if isinstance(raw, torch.Tensor):
        if raw.dtype == torch.bool:
            raise ValueError("forget must be training-set indices, not a boolean mask; "
                             "use torch.nonzero(mask).flatten()")
        if raw.numel() and (raw.is_floating_point() or raw.is_complex()):
            raise ValueError(f"forget indices must be integers, got {raw.dtype} "
                             f"(first: {raw.flatten()[0].item():g}); {_forget_help(data)}")
        if raw.dim() > 1:
            raise ValueError(f"forget is {raw.dim()}-D (shape {tuple(raw.shape)}), not 1-D; {_forget_help(data)} "
                             "(e.g. forget.flatten())")
        return raw.to(torch.long).reshape(-1)
    if isinstance(raw, np.ndarray):         # object and string arrays: index by index
        if raw.ndim > 1:
            raise ValueError(f"forget is {raw.ndim}-D (shape {raw.shape}), not 1-D; {_forget_help(data)} "
                             "(e.g. forget.flatten())")
        raw = raw.tolist()
    if isinstance(raw, (list, tuple, range)):
        return torch.tensor([_forget_index(v, data) for v in raw], dtype=torch.long)
    return torch.tensor([_forget_index(raw, data, "forget")], dtype=torch.long)


def _forget_index(value, data: Data, what: str = "forget index") -> int:
    """One forget index (a Python or numpy int, or a 0-d integer tensor) as an int, or ValueError."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise ValueError(f"{what} {value!r} is a bool, not an index; {_forget_help(data)}")
    if isinstance(value, (list, tuple, range, np.ndarray)) or (isinstance(value, torch.Tensor) and value.dim()):
        raise ValueError(f"{what} {reprlib.repr(value)} is nested: forget must be 1-D; {_forget_help(data)}")
    try:
        index = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} {reprlib.repr(value)} ({type(value).__name__}) is not an integer; "
                         f"{_forget_help(data)}") from None
    if not -(2**63) <= index < 2**63:
        raise _forget_out_of_range(index, data)
    return index
