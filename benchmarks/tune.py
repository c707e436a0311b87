"""Tune every method on equal terms, per forget regime, and save the searches per dataset (`unlearning.running.tuning`).

    python -m benchmarks.tune digits california --bench-profile paper      # -> benchmarks/tuned/<dataset>.json

Each dataset is loaded at the profile's forgetting scale (the data the forgetting audit runs on). For each regime
the profile runs tuned cells in (`Forgetting.tuned_regimes`) and each removal size it ranks, a validation panel is
trained from `tuning.VALIDATION_SEED` and a second one from `tuning.RESCORE_SEED`; every tunable method that
applies gets `--trials` trials of the same seeded TPE search on the first panels, its best points re-scored on the
second. The JSON records the search's settings, every trial, the convergence, the re-scores, each method's cost, how
many rows each validation forget set shares with the reported one by chance, the commit and torch version; the
forgetting benchmark reads it (`TUNED_DIR`) and runs each method at its regime's tuned point beside its preset.
`--n-models`, `--trials`, `--regimes` and `--train` / `--test` (a seeded subset of the rows) shrink a search that does
not fit (MNIST on the 2-core CPU); `--methods` searches only those and keeps the file's other methods where the
panels are the same.
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
from .profiles import PROFILES, Profile, get_profile

TUNED_DIR = Path(__file__).resolve().parent / "tuned"


def path(dataset: str, folder: Path = TUNED_DIR) -> Path:
    return Path(folder) / f"{dataset}.json"


def cells(profile: Profile, dataset: str, regimes=None) -> dict[str, list[int]]:
    """The removal sizes per regime the profile ranks with tuned cells on `dataset` (`regimes`: only these)."""
    from .test_forgetting import _reason, _sizes, _unstacked  # one rule for the cells run and the cells tuned

    spec, f = get_dataset(dataset), profile.forgetting
    runs = f.regimes_of(dataset, _unstacked(spec))
    wanted = [r for r in f.tuned_regimes if (regimes is None or r in regimes) and r in runs]
    out = {r: [s for s in _sizes(profile, spec, f.sizes) if _reason(profile, spec, r, s) is None] for r in wanted}
    return {r: sizes for r, sizes in out.items() if sizes}


def overlap(lab: Lab, dataset: str, regime: str, forgets: dict[int, list[int]]) -> dict[str, int]:
    """How many rows each validation forget set (by size) shares with the reported forget set of its regime and size."""
    from unlearning.data.forget_sets import select
    from unlearning.evaluation.audit import with_holdout

    prof = lab.profile.forgetting
    data = with_holdout(lab.data(lab.forgetting_cell(dataset)), prof.seed)
    return {f"n{size}": len(set(select(data, size, prof.seed, regime)[1].tolist()) & set(rows))
            for size, rows in forgets.items()}


# Points found by hand (issue 30, on digits panels of N = 16, by F / ceiling), scored beside each search on the same
# validation and re-score panels and never given to it: a search is checked against them (tests/test_searches.py).
REFERENCE_POINTS = {
    "scrub": {"lr": 2e-3, "epochs": 10, "msteps": 10, "alpha": 0.05, "weight_decay": 0.0},
    "salun": {"share": 0.5, "lr": 1e-3, "epochs": 1, "momentum": 0.9},
}


def score_references(panels, rescore, methods: dict, cap: int | None) -> None:
    """Each searched method's `REFERENCE_POINTS` point scored on the search's panels (`reference_point`)."""
    for method, entry in methods.items():
        if method in REFERENCE_POINTS and not entry.get("legacy"):
            values = REFERENCE_POINTS[method]            # set as fields: a hand point may lie outside the space

            def point(c, method=method, values=values):
                return c.with_method(method, **values).with_epoch_cap(cap)
            entry["reference_point"] = {"values": values, "validation": tuning.regime_score(panels, method, point),
                                        "rescore": tuning.regime_score(rescore, method, point, interval=True)}


PANEL_KEYS = ("profile", "subset", "objective", "utility_floor", "trials_per_method", "sampler_seed", "startup_trials",
              "rescore_top", "epoch_cap", "n_models", "validation_seed", "rescore_seed", "train_size", "test_size")
REGIME_KEYS = ("sizes", "forget", "rescore_forget")


def merged(old: dict | None, new: dict) -> dict:
    """`new`, with the methods of `old` it did not search kept where both searched the same panels the same way
    (`PANEL_KEYS`, and per regime `REGIME_KEYS`); else ValueError saying what differs (search every method again,
    or write elsewhere)."""
    if old is None:
        return new
    if "regimes" not in old:
        return carried(old, new)
    differ = [k for k in PANEL_KEYS if old.get(k) != new.get(k)]
    for regime, entry in new["regimes"].items():
        before = old.get("regimes", {}).get(regime)
        differ += [f"{regime} {k}" for k in REGIME_KEYS if before is not None and before.get(k) != entry.get(k)]
    if differ:
        raise ValueError(f"the saved search of {new['dataset']} ran on other panels or budget ({', '.join(differ)} "
                         "differ): search every method again (no --methods) or give --out another folder")
    regimes = {**old["regimes"]}
    for regime, entry in new["regimes"].items():
        kept = regimes.get(regime, {}).get("methods", {})
        regimes[regime] = {**entry, "methods": {**kept, **entry["methods"]}}
    return {**new, "regimes": regimes}


def carried(legacy: dict, new: dict) -> dict:
    """`new`, with each method of a legacy search (one canary panel, before per-regime tuning) that `new` did not
    search carried into every regime as it was: its entry marked `legacy`, with the objective and panel it was
    searched on (`tuning.LEGACY_STALE` methods are dropped: their points no longer describe them)."""
    old = tuning.regime_search(legacy, "canaries")["methods"]
    panel = {"legacy": True, "objective": legacy["objective"], "searched_regime": legacy["regime"],
             "searched_size": legacy["size"], "searched_n_models": legacy["n_models"]}
    regimes = {r: {**e, "methods": {**{m: {**v, **panel} for m, v in old.items() if m not in e["methods"]},
                                    **e["methods"]}} for r, e in new["regimes"].items()}
    return {**new, "regimes": regimes}


def tune_dataset(lab: Lab, dataset: str, args) -> dict:
    cell = Cell(dataset, 0, None, "forgetting")
    data = lab.data(cell)
    subset = args.train is not None or args.test is not None
    if subset:                                                    # a subset panel: the search on fewer rows
        data = data.subset(args.train, args.test, seed=0)
    config = lab.config(cell)
    cap = lab.scale(dataset, "forgetting").max_epochs
    shared, reshared, regimes, panel_seconds = {}, {}, {}, 0.0
    for regime, sizes in cells(lab.profile, dataset, args.regimes).items():
        sizes = [s for s in sizes if 2 * s <= data.n_train]
        if not sizes:                                             # a subset too small for every ranked size
            print(f"{dataset} {regime}: not tuned: no removal size fits {data.n_train} training rows", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        panels = tuning.validation_panels(data, config, regime, sizes, args.n_models, shared=shared)
        rescore = tuning.validation_panels(data, config, regime, sizes, args.n_models, tuning.RESCORE_SEED,
                                           shared=reshared)
        panel_seconds += time.perf_counter() - t0
        out = tuning.tune_regime(panels, rescore, args.methods, args.trials, progress=lambda s: print(s, flush=True),
                                 epoch_cap=cap)
        score_references(panels, rescore, out["methods"], cap)
        for entry in out["methods"].values():
            entry["provenance"] = provenance.tree()
        # a subset panel's rows are indices into the subset, not into the data the reported panels draw from
        forgets = dict(zip(sizes, out["forget"], strict=True))
        out["reported_overlap"] = None if subset else overlap(lab, dataset, regime, forgets)
        regimes[regime] = out
    return {"dataset": dataset, "profile": lab.profile.name, "subset": {"train": args.train, "test": args.test},
            **tuning.settings(), "trials_per_method": args.trials, "epoch_cap": cap, "n_models": args.n_models,
            "train_size": data.n_train, "test_size": len(data.x_test), "panel_seconds": panel_seconds,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "regimes": regimes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*", default=None, help=f"datasets (default: all: {', '.join(names())})")
    ap.add_argument("--bench-profile", default="paper", choices=list(PROFILES), help="the forgetting scale of data")
    ap.add_argument("--trials", type=int, default=tuning.TRIALS, help="trials per method (default %(default)s)")
    ap.add_argument("--n-models", type=int, default=tuning.N_MODELS, help="models per group (default %(default)s)")
    ap.add_argument("--regimes", nargs="*", default=None, choices=REGIMES,
                    help="only these regimes (default: the profile's tuned regimes)")
    ap.add_argument("--train", type=int, default=None, help="search on a seeded subset of this many training rows")
    ap.add_argument("--test", type=int, default=None, help="... and of this many test rows")
    ap.add_argument("--methods", nargs="*", default=None, help="methods (default: every tunable one)")
    ap.add_argument("--out", type=Path, default=TUNED_DIR, help="folder of the JSON files (default %(default)s)")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.n_models < 3:
        ap.error(f"--trials {args.trials} (>= 1), --n-models {args.n_models} (>= 3)")
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
        old = tuning.load(path(ds, args.out)) if args.methods or args.regimes else None   # keep what was not searched
        print(f"wrote {tuning.save(path(ds, args.out), merged(old, payload))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
