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

from tqdm.contrib.logging import logging_redirect_tqdm

from . import progress, schema
from .config import Config, get_config
from .data import DataUnavailableError
from .data.fetch import ENV_DATA_DIR
from .datasets import get_dataset, load_dataset
from .datasets import names as dataset_names
from .estimate import estimate
from .experiment import create_json, environment, prepare, run_trial, save_json
from .methods import METHODS
from .progress import clock

log = logging.getLogger("unlearning")

EPILOG = ("Each finished trial is saved at once (Ctrl-C keeps the finished ones). Progress bars show on a terminal; "
          "-q turns them, the cost estimate and the per-model lines off.")
COLUMNS = ("seed", "method", "epochs", "steps", "converged", "seconds", "epoch_ratio", "weights_zeroed",
           "train_acc", "test_acc", "forget_acc", "test_mse", "d")

# What a column means, printed under the table (the same words as the report's notes).
LEGEND = {
    "epochs": "epochs: passes over the training data the model cost; random_relabel makes none (0 by construction): "
              "it answers each removal request with one step, so its cost is in `steps` (one per request)",
    "seconds": "seconds: wall time of producing that model (the original's: training it)",
    "epoch_ratio": "epoch_ratio: epochs / the oracle's (naive_retrain); < 1 is cheaper than retraining",
    "forget_acc": "forget_acc: accuracy on the removed points; the oracle's, which never saw them, is the target",
    "d": "d = (S to original - S to oracle) / |X| (paper 000): > 0 means closer to the retrained oracle than to "
         "the original model, i.e. more forgotten; higher is better",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m unlearning", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=EPILOG)
    p.add_argument("--dataset", default="synthetic", choices=dataset_names(), metavar="NAME",
                   help="; ".join(f"{n}: {get_dataset(n).description}"
                                  + (f" (paper {get_dataset(n).paper})" if get_dataset(n).paper else "")
                                  for n in dataset_names()))
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, from: {', '.join(sorted(METHODS))} (default: all that apply)")
    p.add_argument("--removal-size", type=int, default=1, help="points to remove (1 is the paper's target)")
    p.add_argument("--trials", type=int, default=4, help="independent trials, seeds seed..seed+trials-1")
    p.add_argument("--seed", type=int, default=0, help="seed of the first trial")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's epoch cap")
    p.add_argument("--train-size", type=int, default=None, help="MNIST only: seeded training subset")
    p.add_argument("--test-fraction", type=float, default=None, help="California and digits: held-out fraction")
    p.add_argument("--data-dir", default=None, help=f"local dataset folder (else ${ENV_DATA_DIR}, then download)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, ... (default: CUDA when present, else CPU)")
    p.add_argument("--out", default=None,
                   help="JSON file to create (never replaced; default: a new runs/<dataset>-<time>.json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, estimate or per-model lines")
    args = p.parse_args(argv)
    for flag in ("trials", "removal_size"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be >= 1")
    if args.methods is not None:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        if not args.methods:
            p.error(f"--methods names no method; give one or more of: {', '.join(sorted(METHODS))} "
                    "(or leave it out for all that apply)")
        unknown = [m for m in args.methods if m not in METHODS]
        if unknown:
            p.error(f"unknown method {unknown[0]!r}; allowed: {', '.join(sorted(METHODS))}")
    if args.out is not None and Path(args.out).exists():
        p.error(f"--out {args.out} exists: runs never replace a saved file; choose another name or move it")
    return args


def build_config(args, seed: int):
    opts = {"data_dir": args.data_dir}
    if args.train_size is not None:
        opts["train_size"] = args.train_size
    if args.test_fraction is not None:
        opts["test_fraction"] = args.test_fraction
    cfg = get_config(args.dataset, seed=seed, device=args.device, dataset_options=opts)
    return cfg.with_epoch_cap(args.max_epochs)


def _fmt(v, column: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if column == "seconds":
        return clock(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(records: list[dict]) -> str:
    """A plain-text table of the columns any record has, and what its columns mean."""
    cols = [c for c in COLUMNS if any(c in r for r in records)]
    rows = [[_fmt(r.get(c), c) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(x.rjust(w) for x, w in zip(cells, widths, strict=True))  # noqa: E731
    notes = [LEGEND[c] for c in cols if c in LEGEND]
    return "\n".join([line(cols), line(["-" * w for w in widths]), *map(line, rows), "", *notes])


class RunFile:
    """The run's JSON file: created when the first trial finishes (a fresh name, never replacing a file),
    rewritten atomically after each later one, so an interrupt keeps every finished trial."""

    def __init__(self, args, total: int):
        self.args, self.total, self.path = args, total, None
        self.records, self.configs, self.started = [], [], time.time()

    def add(self, config: dict, records: list[dict]) -> Path:
        self.configs.append(config)
        self.records += records
        payload = {"schema": schema.FILE_SCHEMA, "record_schema_version": schema.SCHEMA_VERSION,
                   "dataset": self.args.dataset, "trials_done": len(self.configs), "trials_asked": self.total,
                   "complete": len(self.configs) == self.total, "wall_seconds": time.time() - self.started,
                   "environment": environment(), "configs": self.configs, "records": self.records}
        if self.path is None:
            default = Path("runs") / f"{self.args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}.json"
            self.path = create_json(self.args.out or default, payload, unique=self.args.out is None)
        else:
            save_json(self.path, payload)
        return self.path


def run(args, configs: list[Config], saved: RunFile) -> None:
    """Every trial, saved as it finishes; the expected cost first, a line after each trial."""
    total = len(configs)
    data = load_dataset(args.dataset, seed=configs[0].seed, **configs[0].dataset_options)
    prepare(configs[0], args.methods, args.removal_size, data)      # every check before the estimate
    if not args.quiet:
        log.info(estimate(data, configs[0]).line(total))
    for k, cfg in enumerate(configs, start=1):
        t0 = time.perf_counter()
        with progress.labelled(f"{args.dataset} trial {k}/{total}"):
            records = run_trial(cfg, args.methods, args.removal_size, data=data if k == 1 else None)
        path = saved.add(cfg.as_dict(), [schema.finish(r, trial=k) for r in records])
        took = time.perf_counter() - t0
        left = f", ~{clock(took * (total - k))} left" if k < total else ""
        log.info("trial %d/%d done in %s (%d records saved to %s)%s", k, total, clock(took), len(records), path, left)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    saved = None
    try:
        configs = [build_config(args, seed) for seed in range(args.seed, args.seed + args.trials)]
        saved = RunFile(args, len(configs))
        with progress.showing(not args.quiet), logging_redirect_tqdm():
            run(args, configs, saved)
    except (ValueError, DataUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = len(saved.configs) if saved else 0
        where = f"{len(saved.records)} records of the {done} finished trial(s) are in {saved.path}" if done \
            else "no trial had finished; nothing saved"
        print(f"\ninterrupted: {where}", file=sys.stderr)
        return 130
    print(format_table(saved.records))
    print(f"\nsaved {len(saved.records)} records to {saved.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
