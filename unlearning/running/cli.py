"""`python -m unlearning` (or `unlearning-bench`): run the methods on one dataset and save the records.

The default is the suite's main job on embedded data: paper 000's synthetic
setup, four trials (the paper's Table 1 has four), every method, one removal.
`python -m unlearning recover PATH` keeps the trials of a temp file a killed save left.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import math
import re
import sys
import time
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from ..common import schema
from ..common.summary import CONFIDENCE, INTERVAL_NOTE, summary
from ..config import SEED_MAX, Config
from ..data import DataUnavailableError
from ..data.fetch import ENV_DATA_DIR
from ..data.registry import get_dataset, load_dataset, loader_options
from ..data.registry import names as dataset_names
from ..methods import METHODS
from ..methods.settings import get_config
from ..training import progress
from ..training.progress import clock
from .estimate import estimate
from .experiment import ORACLE, prepare, run_trial
from .runfile import EXIT_FALLBACK, EXIT_LOST, RunFile, recover, report_left

log = logging.getLogger("unlearning")

EPILOG = ("Each finished trial is saved at once (Ctrl-C keeps the finished ones); a save that fails (disk full, "
          "read-only folder) is retried after the next trial, and at the end the records go to a fallback file "
          "it names. Temp files a killed save left are reported, with the command that keeps them "
          "('python -m unlearning recover PATH'). Progress bars show on a terminal; -q turns them, the cost "
          f"estimate and the per-model lines off. Exit codes: 0 saved where asked; {EXIT_FALLBACK} saved only to "
          f"a fallback file (named); 2 bad options or data; {EXIT_LOST} some records could be saved nowhere "
          "(named); 130 interrupted.")
COLUMNS = ("seed", "method", "epochs", "steps", "converged", "seconds", "epoch_ratio", "weights_zeroed",
           "train_acc", "test_acc", "forget_acc", "test_mse", "d")
# The per-method summary: the mean and its interval (`unlearning.common.summary`, as in the report) of these over
# the trials, each number to SUMMARY_DIGITS significant digits.
SUMMARY = ("epochs", "steps", "seconds", "epoch_ratio", "weights_zeroed", "train_acc", "test_acc", "forget_acc",
           "test_mse", "d")
SUMMARY_DIGITS = 4
CAP, NOTHING = "*", "!"        # footnote markers: a cap-bound epoch ratio; weight pruning that zeroed no weight

# What a column means, printed under the table (the same words as the report's notes).
LEGEND = {
    "epochs": "epochs: passes over the training data the model cost; random_relabel makes none (0 by construction): "
              "it answers each removal request with one step, so its cost is in `steps` (one per request)",
    "seconds": "seconds: wall time of producing that model (the original's: training it)",
    "epoch_ratio": "epoch_ratio: epochs / the oracle's (naive_retrain); < 1 is cheaper than retraining; "
                   "none for the original, which removes nothing",
    "forget_acc": "forget_acc: accuracy on the removed points; the oracle's, which never saw them, is the target",
    "d": "d = (S to original - S to oracle) / |X| (paper 000): > 0 means closer to the retrained oracle than to "
         "the original model, i.e. more forgotten; higher is better",
}
MARKS = {
    CAP: f"{CAP} epoch cap: the method or its oracle stopped at the epoch cap without converging, so the ratio is "
         "bounded by the cap, not a measured convergence-time ratio",
    NOTHING: f"{NOTHING} pruned nothing: weight pruning zeroed no weight, so its model is only a bias reset and a "
             "fine-tune",
}

# The dataset loader option each flag sets: a flag applies to the datasets whose loader takes its option.
DATASET_FLAGS = {"train_size": "--train-size", "test_fraction": "--test-fraction", "data_dir": "--data-dir"}
# Python names in library messages -> the flag that sets them (`in_flag_names`).
FLAG_OF = {**DATASET_FLAGS, "max_epochs": "--max-epochs", "seed": "--seed", "device": "--device"}


def applies_to(option: str) -> list[str]:
    """The datasets whose loader takes `option` (a `**kwargs` loader takes any)."""
    return [n for n in dataset_names() if (takes := loader_options(n)) is None or option in takes]


def _loader_default(name: str, option: str) -> str:
    param = inspect.signature(get_dataset(name).loader).parameters.get(option)
    return "?" if param is None or param.default is param.empty else f"{param.default:g}"


def in_flag_names(message: str) -> str:
    """A library error message with the Python names of options the CLI sets written as their flags
    (`train_size=0` -> `--train-size=0`, `or None (...)` -> `or left out (...)`)."""
    for option, flag in FLAG_OF.items():
        message = re.sub(rf"(?<![\w.-]){option}=(?=\S)", f"{flag}=", message)
    return message.replace(" or None (", " or left out (").replace("(None = ", "(left out: ")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds '(default: X)' to an option's help unless the help says its default already, or X is None or
    False (an option left out, a flag off: its help says what that means)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


def _dataset_help(option: str, what: str) -> str:
    return f"{what}; applies to --dataset {', '.join(applies_to(option))}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m unlearning", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter, epilog=EPILOG)
    p.add_argument("--dataset", default="synthetic", choices=dataset_names(), metavar="NAME",
                   help="; ".join(f"{s.name}: {s.description}" + (f" (paper {s.paper})" if s.paper else "")
                                  for s in map(get_dataset, dataset_names())))
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, from: {', '.join(sorted(METHODS))} (default: all that apply)")
    p.add_argument("--removal-size", type=int, default=1, help="points to remove (1 is the paper's target)")
    p.add_argument("--trials", type=int, default=4, help="independent trials, seeds seed..seed+trials-1")
    p.add_argument("--seed", type=int, default=0, help="seed of the first trial")
    p.add_argument("--max-epochs", type=int, default=None, help="cap every training at N epochs (default: the "
                   "preset's cap)", metavar="N")
    p.add_argument("--train-size", type=int, default=None, metavar="N",
                   help=_dataset_help("train_size", "seeded training subset of N rows") + " (default: every row)")
    fractions = ", ".join(f"{n} {_loader_default(n, 'test_fraction')}" for n in applies_to("test_fraction"))
    p.add_argument("--test-fraction", type=float, default=None, metavar="F",
                   help=_dataset_help("test_fraction", "held-out fraction") + f" (default: {fractions})")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help=_dataset_help("data_dir", "local dataset folder")
                   + f" (default: ${ENV_DATA_DIR}, then the download cache, then a download)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N, ... (default: CUDA when present, else CPU)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="JSON file to create (never replaced; default: a new runs/<dataset>-<time>.json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, estimate or per-model lines")
    return p


def _check_ranges(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for flag in ("trials", "removal_size", "max_epochs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} {value}: must be >= 1")
    last = args.seed + args.trials - 1
    if args.seed < 0 or last > SEED_MAX:
        p.error(f"--seed {args.seed} with --trials {args.trials}: the trials' seeds {args.seed}..{last} "
                f"must lie in 0..{SEED_MAX}")
    for option, flag in DATASET_FLAGS.items():
        if getattr(args, option) is not None and args.dataset not in applies_to(option):
            p.error(f"{flag} does not apply to --dataset {args.dataset}; it applies to --dataset "
                    f"{' or '.join(applies_to(option))}")


def parse_args(argv=None) -> argparse.Namespace:
    p = _parser()
    args = p.parse_args(argv)
    _check_ranges(p, args)
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
    opts = {o: getattr(args, o) for o in DATASET_FLAGS if getattr(args, o) is not None}
    cfg = get_config(args.dataset, seed=seed, device=args.device, dataset_options=opts)
    return cfg.with_epoch_cap(args.max_epochs)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v, column: str = "", digits: int | None = None) -> str:
    """A cell: '-' for none, seconds as a duration, floats to 4 significant digits; with `digits`, rounded
    to that many significant digits and written without an exponent where it fits (1100, not 1.1e+03)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if column == "seconds":
        return clock(v)
    if isinstance(v, float):
        return f"{v:.4g}" if digits is None else f"{float(f'{v:.{digits}g}'):g}"
    return str(v)


def _shown(record: dict, column: str):
    """The value a table shows: none for the original's epoch ratio (it removes nothing)."""
    return None if column == "epoch_ratio" and record.get("method") == "original" else record.get(column)


def footnotes(records: list[dict]) -> list[dict[str, str]]:
    """For each record, {column: marker} of its cells that need a footnote: a cap-bound epoch ratio (the
    method hit the epoch cap, or its oracle did and the method trained at all), a weight pruning that
    zeroed nothing. The oracle's cap comes from the trial's naive_retrain row, else from `oracle_converged`."""
    oracle_cap = {r.get("trial"): bool(r.get("hit_cap")) for r in records if r.get("method") == ORACLE}
    marks = []
    for r in records:
        oracle = oracle_cap.get(r.get("trial"), r.get("oracle_converged") is False)
        m = {}
        if _shown(r, "epoch_ratio") is not None and (r.get("hit_cap") or (oracle and r.get("epochs"))):
            m["epoch_ratio"] = CAP
        if r.get("weights_zeroed") == 0:
            m["weights_zeroed"] = NOTHING
        marks.append(m)
    return marks


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(header)]
    line = lambda cells: "  ".join(x.rjust(w) for x, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def _summary_cell(group: list[tuple[dict, dict]], column: str) -> str:
    """"mean [lo, hi]" of `column` over the group's trials (`unlearning.common.summary.summary`, the report's own:
    its interval cut at the column's range), just the mean for one value; markers of any trial after it."""
    s = summary([v for r, _ in group if _number(v := _shown(r, column))], key=column)
    if not s.n:
        return "-"
    shown = (_fmt(x, column, SUMMARY_DIGITS) for x in (s.mean, s.lo, s.hi))
    text = next(shown) if math.isnan(s.lo) else "{} [{}, {}]".format(*shown)
    return text + "".join(sorted({m[column] for _, m in group if column in m}))


def _converged(group: list[tuple[dict, dict]]) -> str:
    flags = [r["converged"] for r, _ in group if r.get("converged") is not None]
    return f"{sum(map(bool, flags))}/{len(flags)}" if flags else "-"


def summary_table(records: list[dict], marks: list[dict[str, str]]) -> list[str]:
    """One row per method: trials, how many converged, and each column's mean [lo, hi] over the trials, [lo, hi] its
    `CONFIDENCE` interval as the report computes it (markers: in at least one trial)."""
    groups: dict[str, list] = {}
    for r, m in zip(records, marks, strict=True):
        groups.setdefault(r.get("method"), []).append((r, m))
    cols = [c for c in SUMMARY if any(_number(_shown(r, c)) for r in records)]
    rows = [[str(name), str(len(g)), _converged(g), *(_summary_cell(g, c) for c in cols)] for name, g in groups.items()]
    return _grid(["method", "trials", "converged", *cols], rows)


def _trials(records: list[dict]) -> int:
    return len({r.get("trial", r.get("seed")) for r in records})


def _summary_legend(records: list[dict]) -> str:
    trials = _trials(records)
    if trials < 2:
        return ("one trial: no per-method summary, and no interval (with --trials 2 or more, a table of each "
                f"method's mean and {CONFIDENCE:.0%} interval follows the trials')")
    return (f"per method, over {trials} trials: mean [lo, hi], as in the report's tables; {INTERVAL_NOTE} converged"
            ": trials that met the convergence rule / trials with one; a marker in a summary cell means at least one "
            "trial")


def format_table(records: list[dict]) -> str:
    """The per-trial table of the columns any record has, the per-method summary under it, and what
    their columns and markers mean."""
    marks = footnotes(records)
    cols = [c for c in COLUMNS if any(c in r for r in records)]
    rows = [[_fmt(_shown(r, c), c) + m.get(c, "") for c in cols] for r, m in zip(records, marks, strict=True)]
    used = sorted({mark for m in marks for mark in m.values()}, key=list(MARKS).index)
    notes = [LEGEND[c] for c in cols if c in LEGEND] + [_summary_legend(records)] + [MARKS[k] for k in used]
    summary = [*summary_table(records, marks), ""] if _trials(records) > 1 else []
    return "\n".join([*_grid(cols, rows), "", *summary, *notes])


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
        ok = saved.add(cfg.as_dict(), [schema.finish(r, trial=k) for r in records])
        took = time.perf_counter() - t0
        left = f", ~{clock(took * (total - k))} left" if k < total else ""
        where = f"saved to {saved.path}" if ok else "not saved yet"
        log.info("trial %d/%d done in %s (%d records %s)%s", k, total, clock(took), len(records), where, left)


def _interrupted(saved: RunFile) -> int:
    if saved.pending:
        where = saved.rescue()[1]
    elif saved.configs:
        where = f"{len(saved.records)} records of the {len(saved.configs)} finished trial(s) are in {saved.path}"
    else:
        where = "no trial had finished; nothing saved"
    print(f"\ninterrupted: {where}", file=sys.stderr)
    return 130


def recover_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m unlearning recover",
        description="Keep the trials of temp files that killed saves left (.NAME.XXXXXXXX.tmp beside a run file): "
                    "saved as NAME when that is free or holds fewer trials of the same run, else as a new "
                    "<stem>-recovered.json (never replacing another run's file); then the temp file is removed. "
                    "Exit 0 when every PATH was kept, 2 when one could not be (torn, not such a file).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a temp file a run reported")
    worst = 0
    for path in p.parse_args(argv).paths:
        code, message = recover(path)
        print(message, file=sys.stderr if code else sys.stdout)
        worst = max(worst, code)
    return worst


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["recover"]:
        return recover_main(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    saved = RunFile(args.dataset, args.trials, args.out)
    try:
        with progress.showing(not args.quiet), logging_redirect_tqdm():
            report_left(saved.target.parent)
            configs = [build_config(args, seed) for seed in range(args.seed, args.seed + args.trials)]
            run(args, configs, saved)
    except (ValueError, DataUnavailableError) as exc:
        print(f"error: {in_flag_names(str(exc))}", file=sys.stderr)
        if saved.pending:
            print(saved.rescue()[1], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(saved)
    except BaseException:
        if saved.pending:                  # a crash: the finished trials go somewhere first
            print(saved.rescue()[1], file=sys.stderr)
        raise
    code, note = saved.rescue() if saved.pending else (0, "")
    print(format_table(saved.records))
    if code:
        print(f"\n{note}", file=sys.stderr)
    else:
        print(f"\nsaved {len(saved.records)} records to {saved.path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
