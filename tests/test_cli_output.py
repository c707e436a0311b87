"""What `python -m unlearning` prints: the per-trial table, the per-method summary under it (mean [lo, hi], the
report's 95 % interval: `unlearning.common.summary`), the markers for a weight pruning that zeroed nothing and for
epoch ratios bound by the cap, no epoch ratio for the original, `--help` without doubled defaults, errors in flag
names."""

import re

import numpy as np
import pytest
from scipy import stats

from unlearning import get_config
from unlearning.common.summary import INTERVAL_NOTE
from unlearning.config import SEED_MAX
from unlearning.running import cli


def _rec(trial, method, epochs=10, **kw):
    base = {"seed": trial - 1, "trial": trial, "method": method, "epochs": epochs, "steps": epochs,
            "converged": True, "hit_cap": False, "seconds": 0.5, "epoch_ratio": epochs / 20, "train_acc": 1.0,
            "test_acc": 0.9, "forget_acc": 1.0, "d": 0.1, "oracle_converged": True}
    return {**base, **kw}


def _trial(trial, *, zeroed=3, d=0.1, oracle_cap=False, pruning_cap=False):
    cap = {"hit_cap": True, "converged": False}
    return [_rec(trial, "original", 30, epoch_ratio=1.5),
            _rec(trial, "naive_retrain", 20, epoch_ratio=1.0, **(cap if oracle_cap else {})),
            _rec(trial, "noop", 0, steps=0, converged=None, epoch_ratio=0.0, oracle_converged=not oracle_cap),
            _rec(trial, "weight_pruning", 20 if pruning_cap else 5, weights_zeroed=zeroed, d=d,
                 epoch_ratio=(20 if pruning_cap else 5) / 20, **(cap if pruning_cap else {}))]


def _rows(text: str, method: str) -> list[list[str]]:
    """The cells of every line whose method cell is `method` (both tables), split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()
            if re.search(rf"(^|\s){method}(\s|$)", line)]


def _column(text: str, header_start: str, name: str, method: str) -> str:
    """The cell of column `name` in the row of `method` of the table whose header line starts with `header_start`."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.strip().startswith(header_start))
    header = re.split(r"\s{2,}", lines[top].strip())
    for line in lines[top + 2:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        if method in cells:
            return cells[header.index(name)]
    raise AssertionError(f"no row {method!r} under {header_start!r}")


def _g4(v: float) -> str:
    """A summary number as the CLI prints it: 4 significant digits, no exponent where it fits."""
    return f"{float(f'{v:.4g}'):g}"


def test_the_summary_gives_each_methods_mean_and_95_percent_t_interval():
    ds = [0.1, 0.4, 0.25]
    records = [r for t, d in enumerate(ds, start=1) for r in _trial(t, d=d)]
    text = cli.format_table(records)
    lo, hi = stats.t.interval(0.95, len(ds) - 1, loc=sum(ds) / 3, scale=stats.sem(ds))
    assert lo < 0.1 and _column(text, "method", "d", "weight_pruning") == f"0.25 [{_g4(lo)}, {_g4(hi)}]"
    assert _column(text, "method", "trials", "weight_pruning") == "3"
    assert _column(text, "method", "converged", "weight_pruning") == "3/3"
    assert _column(text, "method", "converged", "noop") == "-"            # no convergence rule
    assert _column(text, "method", "test_acc", "noop") == "0.9 [0.9, 0.9]"          # no spread: the point
    assert f"per method, over 3 trials: mean [lo, hi], as in the report's tables; {INTERVAL_NOTE}" in text


def test_the_summary_interval_is_cut_at_the_columns_range():
    acc = [1.0, 0.99, 1.0]                         # t reaches above 1; an accuracy cannot
    records = [{**r, "train_acc": a} for t, a in enumerate(acc, start=1) for r in _trial(t)]
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(acc), scale=stats.sem(acc))
    assert hi > 1 and _column(cli.format_table(records), "method", "train_acc", "weight_pruning") \
        == f"{_g4(np.mean(acc))} [{_g4(lo)}, 1]"


def test_one_trial_has_no_summary_and_says_there_is_no_interval():
    text = cli.format_table(_trial(1))
    assert " [" not in text and "trials  converged" not in text
    assert "one trial: no per-method summary, and no interval" in text


def test_a_value_missing_in_some_trials_is_averaged_over_the_others():
    records = [*_trial(1, d=0.2), *_trial(2, d=float("nan")), *_trial(3, d=0.4)]
    # two values: the bootstrap interval, their range (INTERVAL_NOTE says so)
    assert _column(cli.format_table(records), "method", "d", "weight_pruning") == "0.3 [0.2, 0.4]"
    one = [*_trial(1, d=0.2), *_trial(2, d=float("nan"))]
    assert _column(cli.format_table(one), "method", "d", "weight_pruning") == "0.2"       # one value: no interval


def test_the_original_row_has_no_epoch_ratio():
    records = [*_trial(1), *_trial(2)]
    text = cli.format_table(records)
    assert _column(text, "seed", "epoch_ratio", "original") == "-"
    assert _column(text, "method", "epoch_ratio", "original") == "-"
    assert _column(text, "seed", "epochs", "original") == "30"
    assert "none for the original, which removes nothing" in text


def test_weight_pruning_that_zeroed_nothing_is_flagged():
    records = [*_trial(1, zeroed=0), *_trial(2, zeroed=4)]
    text = cli.format_table(records)
    assert [row[_rows(text, "seed")[0].index("weights_zeroed")] for row in _rows(text, "weight_pruning")[:2]] \
        == ["0!", "4"]
    assert _column(text, "method", "weights_zeroed", "weight_pruning") == "2 [0, 4]!"
    assert ("! pruned nothing: weight pruning zeroed no weight, so its model is only a bias reset and a fine-tune"
            in text)
    plain = cli.format_table([*_trial(1), *_trial(2)])
    assert "pruned nothing" not in plain and "!" not in plain


def test_ratios_bound_by_the_epoch_cap_are_marked():
    text = cli.format_table([*_trial(1, oracle_cap=True), *_trial(2, pruning_cap=True), *_trial(3)])
    at = _rows(text, "seed")[0].index("epoch_ratio")
    ratio = lambda method: [cells[at] for cells in _rows(text, method)[:3]]  # noqa: E731
    assert ratio("naive_retrain") == ["1*", "1", "1"]         # the oracle hit the cap in trial 1
    assert ratio("weight_pruning") == ["0.25*", "1*", "0.25"]   # its oracle's cap (1), its own (2)
    assert ratio("noop") == ["0", "0", "0"]                    # 0 epochs: exact whatever the oracle did
    assert _column(text, "method", "epoch_ratio", "weight_pruning").endswith("*")
    assert "* epoch cap: the method or its oracle stopped at the epoch cap without converging" in text
    assert "epoch cap" not in cli.format_table([*_trial(1), *_trial(2)])


def test_without_the_oracles_row_its_cap_comes_from_oracle_converged():
    records = [r for r in _trial(1, oracle_cap=True) if r["method"] != "naive_retrain"]
    for r in records:
        r["oracle_converged"] = False
    marks = cli.footnotes(records)
    assert [m.get("epoch_ratio") for m in marks] == [None, None, "*"]      # original, noop (0 epochs), pruning


def test_the_main_job_prints_the_summary_under_the_trials(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--trials", "2", "--methods", "noop,weight_pruning", "-q"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    trials_header = next(i for i, x in enumerate(lines) if x.strip().startswith("seed"))
    summary_header = next(i for i, x in enumerate(lines) if x.strip().startswith("method  trials"))
    assert trials_header < summary_header
    assert len(_rows(out, "weight_pruning")) == 3                 # two trials, one summary row
    assert " [" in _column(out, "method", "test_acc", "original")


def test_help_states_each_default_once_and_none_as_none():
    text = cli._parser().format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    for action in cli._parser()._actions:
        if action.option_strings and action.dest != "help":
            rendered = cli.HelpFormatter("x")._get_help_string(action)
            assert rendered.count("default:") <= 1, rendered
    flat = " ".join(text.split())
    for phrase in ("(default: all that apply)", "(default: synthetic)", "(default: 4)", "(default: the preset's cap)",
                   "applies to --dataset mnist (default: every row)",
                   "applies to --dataset california, digits (default: california 0, digits 0.2)",
                   "applies to --dataset california, mnist (default: $UNLEARNING_DATA_DIR"):
        assert phrase in flat


def test_a_flag_applies_where_the_loader_takes_its_option():
    assert cli.applies_to("data_dir") == ["california", "mnist"]
    assert cli.applies_to("train_size") == ["mnist"]
    assert cli.applies_to("test_fraction") == ["california", "digits"]
    cli.parse_args(["--dataset", "mnist", "--data-dir", ".", "--train-size", "100"])   # accepted: no load yet


def test_library_messages_keep_python_names_and_the_cli_writes_flags():
    with pytest.raises(ValueError, match=r"^max_epochs=0: must be an integer >= 1$") as exc:
        get_config("synthetic").with_epoch_cap(0)
    assert cli.in_flag_names(str(exc.value)) == "--max-epochs=0: must be an integer >= 1"
    assert cli.in_flag_names(f"seed={SEED_MAX + 1}: x; split_seed=3; data_dir= in Python; the data_dir argument") \
        == f"--seed={SEED_MAX + 1}: x; split_seed=3; data_dir= in Python; the data_dir argument"
    assert cli.in_flag_names("train_size=0 out of range; allowed 1..60000 (None = all 60000)") \
        == "--train-size=0 out of range; allowed 1..60000 (left out: all 60000)"
