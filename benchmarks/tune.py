"""Tune every method on equal terms and save the search per dataset (`unlearning.running.tuning`).

    python -m benchmarks.tune digits california --bench-profile paper      # -> benchmarks/tuned/<dataset>.json

Each dataset is loaded at the profile's forgetting scale (the data the forgetting audit runs
on), a validation panel is trained from `tuning.VALIDATION_SEED`, and every tunable method that
applies gets `--trials` trials of the same seeded TPE search. The JSON records the search's
settings, every trial, the best point, each method's cost, the commit and torch version; the
forgetting benchmark reads it (`TUNED_DIR`) and runs each method at its tuned point beside its
preset. `--n-models`, `--trials` and `--train` / `--test` (a seeded subset of the rows) shrink a search that
does not fit (MNIST on the 2-core CPU);
`--methods` searches only those and keeps the file's other methods where the panel is the same.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import pytest
import torch

from unlearning.data.forget_sets import REGIMES
from unlearning.data.registry import get_dataset, names
from unlearning.running import provenance, tuning

from .lab import Cell, Lab
from .profiles import PROFILES, get_profile

TUNED_DIR = Path(__file__).resolve().parent / "tuned"


def path(dataset: str, folder: Path = TUNED_DIR) -> Path:
    return Path(folder) / f"{dataset}.json"


def overlap(lab: Lab, dataset: str, forget: list[int]) -> dict[str, int]:
    """How many validation forget rows each reported forgetting panel's forget set shares (random regime draws)."""
    from unlearning.data.forget_sets import select
    from unlearning.evaluation.audit import with_holdout

    prof = lab.profile.forgetting
    data = with_holdout(lab.data(lab.forgetting_cell(dataset)), prof.seed)
    out = {}
    for regime in prof.regimes:
        for size in prof.sizes:
            try:
                rows = set(select(data, size, prof.seed, regime)[1].tolist())
            except ValueError:
                continue
            out[f"{regime}-n{size}"] = len(rows & set(forget))
    return out


PANEL_KEYS = ("profile", "subset", "objective", "trials_per_method", "sampler", "sampler_seed", "startup_trials",
              "epoch_cap", "n_models", "size", "regime", "validation_seed", "train_size", "test_size", "forget")


def merged(old: dict | None, new: dict) -> dict:
    """`new`, with the methods of `old` it did not search kept where both searched the same panel the same way
    (`PANEL_KEYS`); else ValueError saying what differs (search every method again, or write elsewhere)."""
    if old is None:
        return new
    differ = [k for k in PANEL_KEYS if old.get(k) != new.get(k)]
    if differ:
        raise ValueError(f"the saved search of {new['dataset']} ran on another panel or budget ({', '.join(differ)} "
                         "differ): search every method again (no --methods) or give --out another folder")
    return {**new, "methods": {**old["methods"], **new["methods"]}}


def tune_dataset(lab: Lab, dataset: str, args) -> dict:
    cell = Cell(dataset, 0, None, "forgetting")
    data = lab.data(cell)
    subset = args.train is not None or args.test is not None
    if subset:                                                    # a subset panel: the search on fewer rows
        data = data.subset(args.train, args.test, seed=0)
    config = lab.config(cell)
    size = min(args.size, max(1, data.n_train // 4))
    t0 = time.perf_counter()
    panel = tuning.validation_panel(data, config, size, args.n_models, args.regime)
    panel_seconds = time.perf_counter() - t0
    out = tuning.tune_panel(panel, args.methods, args.trials, progress=lambda s: print(s, flush=True),
                            epoch_cap=lab.scale(dataset, "forgetting").max_epochs)
    for entry in out["methods"].values():
        entry["provenance"] = provenance.tree()
    return {"dataset": dataset, "profile": lab.profile.name, "subset": {"train": args.train, "test": args.test},
            "panel_seconds": panel_seconds,
            # a subset panel's rows are indices into the subset, not into the data the reported panels draw from
            "reported_overlap": None if subset else overlap(lab, dataset, out["forget"]), "torch": torch.__version__,
            "threads": torch.get_num_threads(), **out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*", default=None, help=f"datasets (default: all: {', '.join(names())})")
    ap.add_argument("--bench-profile", default="paper", choices=list(PROFILES), help="the forgetting scale of data")
    ap.add_argument("--trials", type=int, default=tuning.TRIALS, help="trials per method (default %(default)s)")
    ap.add_argument("--n-models", type=int, default=tuning.N_MODELS, help="models per group (default %(default)s)")
    ap.add_argument("--size", type=int, default=tuning.SIZE, help="validation forget points (default %(default)s)")
    ap.add_argument("--regime", default=tuning.REGIME, choices=REGIMES)
    ap.add_argument("--train", type=int, default=None, help="search on a seeded subset of this many training rows")
    ap.add_argument("--test", type=int, default=None, help="... and of this many test rows")
    ap.add_argument("--methods", nargs="*", default=None, help="methods (default: every tunable one)")
    ap.add_argument("--out", type=Path, default=TUNED_DIR, help="folder of the JSON files (default %(default)s)")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.n_models < 3 or args.size < 1:
        ap.error(f"--trials {args.trials} (>= 1), --n-models {args.n_models} (>= 3), --size {args.size} (>= 1)")
    for ds in args.datasets or names():
        get_dataset(ds)
    logging.basicConfig(level=logging.WARNING)
    lab = Lab(get_profile(args.bench_profile))
    for ds in args.datasets or names():
        try:
            payload = tune_dataset(lab, ds, args)
        except pytest.skip.Exception as exc:       # the lab skips a dataset whose data is unavailable
            print(f"{ds}: not tuned: {exc}", file=sys.stderr)
            continue
        old = tuning.load(path(ds, args.out)) if args.methods else None
        print(f"wrote {tuning.save(path(ds, args.out), merged(old, payload))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
