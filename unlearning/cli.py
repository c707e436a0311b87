"""`python -m unlearning` (or `unlearning-bench`): run the methods on one dataset and save the records.

The default is the suite's main job on embedded data: paper 000's synthetic
setup, four trials (the paper's Table 1 has four), every method, one removal.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

from . import schema
from .config import get_config
from .data import DataUnavailableError
from .datasets import get_dataset
from .datasets import names as dataset_names
from .experiment import environment, run_trial, save_json
from .methods import METHODS

COLUMNS = ("seed", "method", "epochs", "converged", "seconds", "epoch_ratio", "weights_zeroed",
           "train_acc", "test_acc", "forget_acc", "test_mse", "d")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m unlearning", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic", choices=dataset_names(), metavar="NAME",
                   help="; ".join(f"{n}: {get_dataset(n).description}"
                                  + (f" (paper {get_dataset(n).paper})" if get_dataset(n).paper else "")
                                  for n in dataset_names()))
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, from: {', '.join(sorted(METHODS))} (default: all that apply)")
    p.add_argument("--removal-size", type=int, default=1, help="points to remove (default 1, the paper's target)")
    p.add_argument("--trials", type=int, default=4, help="independent trials, seeds seed..seed+trials-1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's epoch cap")
    p.add_argument("--train-size", type=int, default=None, help="MNIST only: seeded training subset")
    p.add_argument("--test-fraction", type=float, default=None, help="California only: held-out fraction")
    p.add_argument("--data-dir", default=None, help="local dataset folder (else $UNLEARNING_DATA_DIR, then download)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    p.add_argument("--out", default=None, help="JSON file to write (default runs/<dataset>-<time>.json)")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error(f"--trials {args.trials}: must be >= 1")
    if args.methods:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in args.methods if m not in METHODS]
        if unknown:
            p.error(f"unknown method {unknown[0]!r}; allowed: {', '.join(sorted(METHODS))}")
    return args


def build_config(args, seed: int):
    opts = {"data_dir": args.data_dir}
    if args.train_size is not None:
        opts["train_size"] = args.train_size
    if args.test_fraction is not None:
        opts["test_fraction"] = args.test_fraction
    cfg = get_config(args.dataset, seed=seed, device=args.device, dataset_options=opts)
    return cfg.with_epoch_cap(args.max_epochs)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(records: list[dict]) -> str:
    """A plain-text table of the columns any record has."""
    cols = [c for c in COLUMNS if any(c in r for r in records)]
    rows = [[_fmt(r.get(c)) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(x.rjust(w) for x, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    records, configs = [], []
    started = time.time()
    try:
        for seed in range(args.seed, args.seed + args.trials):
            cfg = build_config(args, seed)
            configs.append(cfg.as_dict())
            for rec in run_trial(cfg, args.methods, args.removal_size):
                records.append(schema.finish(rec, trial=seed - args.seed + 1))
    except (ValueError, DataUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    save_json(out, {"schema": schema.FILE_SCHEMA, "record_schema_version": schema.SCHEMA_VERSION,
                    "dataset": args.dataset, "wall_seconds": time.time() - started,
                    "environment": environment(), "configs": configs, "records": records})
    print(format_table(records))
    print(f"\nsaved {len(records)} records to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
