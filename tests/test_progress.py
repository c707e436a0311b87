"""Progress bars: silent by default (library, tests, benchmarks), labelled and with an ETA where shown."""

import io
import re
import sys

import pytest

from unlearning import get_config, run_trial
from unlearning.training import progress
from unlearning.training.progress import clock


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _trial(monkeypatch, show: bool, terminal: bool = True) -> str:
    screen = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress.showing(show), progress.labelled("synthetic trial 1/1"):
        run_trial(get_config("synthetic", seed=0), ["noop", "random_relabel", "weight_pruning"])
    return screen.getvalue()


def test_bars_name_dataset_trial_model_and_count_epochs(monkeypatch):
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0)         # draw every update, however fast the run
    shown = _trial(monkeypatch, show=True)
    for label in ("synthetic trial 1/1 original", "synthetic trial 1/1 oracle (naive_retrain)",
                  "synthetic trial 1/1 weight_pruning", "synthetic trial 1/1 random_relabel"):
        assert label in shown
    assert "/2000 epochs [" in shown and "1/1 requests [" in shown
    # tqdm's "[elapsed<remaining, ...]": that an ETA is drawn beside the loss, not how long the run took
    assert re.search(r"\[\d\d:\d\d<(\d\d:)?\d\d:\d\d, ", shown) and re.search(r", loss \d", shown)


def test_bars_are_silent_unless_asked_for_or_off_a_terminal(monkeypatch):
    assert _trial(monkeypatch, show=False) == ""
    assert _trial(monkeypatch, show=True, terminal=False) == ""


def test_labels_nest_and_unwind():
    with progress.labelled("mnist trial 2/4"):
        with progress.labelled("oracle"):
            assert progress.label() == "mnist trial 2/4 oracle"
        assert progress.label() == "mnist trial 2/4"
    assert progress.label() == ""


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (0.0042, "0.0042s"), (0.42, "0.42s"), (12.34, "12.3s"),
                                           (59.96, "1m00s"), (125, "2m05s"), (3725, "1h02m")])
def test_one_duration_format(seconds, text):
    assert clock(seconds) == text
