"""`python -m unlearning`: what a person running it sees, and that no finished result is ever lost."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toys import this_thread_only

from unlearning import get_config, run_trial
from unlearning.common.files import create_json, save_json
from unlearning.methods import METHODS
from unlearning.running import cli

REPO = Path(__file__).resolve().parents[1]
SAME = ("method", "epochs", "steps", "converged", "test_acc", "forget_acc", "d", "weights_zeroed")


def _sigint_as_at_a_terminal():
    """In the child before exec: SIGINT back to its default, so Python turns it into KeyboardInterrupt as it
    does at a terminal, even where this test run was started with SIGINT ignored (a background job of a shell
    without job control: Python keeps an ignored SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(tmp_path, *args, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}    # SIGABRT: every thread's stack
    return subprocess.Popen([sys.executable, "-m", "unlearning", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_sigint_as_at_a_terminal,
                            **kw)


def _interrupt(proc, timeout: float = 120) -> str:
    """Ctrl-C to `proc`, then its stderr once it exits; a child still running after `timeout` is aborted and the
    test fails with the Python stack of each of its threads (faulthandler), saying where it hung."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        err = proc.communicate(timeout=60)[1]
        pytest.fail(f"still running {timeout:g} s after Ctrl-C; its threads when aborted:\n{err[-6000:]}")


def _saved(folder: Path) -> list[Path]:
    return sorted(folder.glob("runs/*.json"))


def test_main_job_saves_every_trial_with_the_numbers_run_trial_gives(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--trials", "2"]) == 0
    (path,) = _saved(tmp_path)
    run = json.loads(path.read_text())
    assert (run["trials_done"], run["trials_asked"], run["complete"]) == (2, 2, True)
    assert len(run["configs"]) == 2 and {r["trial"] for r in run["records"]} == {1, 2}
    # the cost estimate's probe and the per-trial saving change no number
    direct = run_trial(get_config("synthetic", seed=1))
    saved = [r for r in run["records"] if r["trial"] == 2]
    assert [[r.get(k) for k in SAME] for r in saved] == [[r.get(k) for k in SAME] for r in direct]
    out = capsys.readouterr().out
    assert f"saved {len(run['records'])} records to {Path('runs') / path.name}" in out
    assert len(run["records"]) == 2 * (1 + len(METHODS))          # the original and every method, per trial
    assert "random_relabel makes none (0 by construction)" in out and "higher is better" in out


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        made = create_json(tmp_path / "a.json", {"x": 1})
        replaced = save_json(tmp_path / "a.json", {"x": 2})
    finally:
        os.umask(old)
    assert made == replaced
    assert made.stat().st_mode & 0o777 == mode


def test_a_taken_name_is_never_replaced(tmp_path):
    first = create_json(tmp_path / "run.json", {"run": 1}, unique=True)
    second = create_json(tmp_path / "run.json", {"run": 2}, unique=True)
    third = create_json(tmp_path / "run.json", {"run": 3}, unique=True)
    assert [p.name for p in (first, second, third)] == ["run.json", "run-2.json", "run-3.json"]
    assert [json.loads(p.read_text())["run"] for p in (first, second, third)] == [1, 2, 3]
    with pytest.raises(FileExistsError):
        create_json(tmp_path / "run.json", {"run": 4})
    assert json.loads(first.read_text())["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-2.json", "run-3.json", "run.json"]   # no temp left


def test_runs_started_in_the_same_second_keep_both_results(tmp_path, monkeypatch):
    """The fault: `runs/<dataset>-%Y%m%d-%H%M%S.json` from two runs finishing in the same second was one file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261129-120000")
    assert cli.main(["--trials", "1", "--methods", "noop", "-q"]) == 0
    assert cli.main(["--trials", "1", "--methods", "noop", "-q", "--seed", "5"]) == 0
    names = [p.name for p in _saved(tmp_path)]
    assert names == ["synthetic-20261129-120000-2.json", "synthetic-20261129-120000.json"]
    seeds = {json.loads(p.read_text())["records"][0]["seed"] for p in _saved(tmp_path)}
    assert seeds == {0, 5}


def test_concurrent_runs_each_get_their_own_file(tmp_path):
    procs = [_cli(tmp_path, "--trials", "1", "--methods", "noop", "-q", "--seed", str(s)) for s in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    files = _saved(tmp_path)
    assert len(files) == 2
    assert sorted(json.loads(f.read_text())["records"][0]["seed"] for f in files) == [0, 1]


def _wait_for(path: Path, proc, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} not written within {seconds}s"
        time.sleep(0.05)


def test_ctrl_c_keeps_the_finished_trials_and_says_so(tmp_path):
    out = tmp_path / "digits.json"
    proc = _cli(tmp_path, "--dataset", "digits", "--trials", "200", "--out", str(out))
    try:
        _wait_for(out, proc, 240)
        err = _interrupt(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    run = json.loads(out.read_text())
    assert run["complete"] is False and 1 <= run["trials_done"] < 200
    assert f"of the {run['trials_done']} finished trial(s) are in {out}" in err
    assert {r["trial"] for r in run["records"]} == set(range(1, run["trials_done"] + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["digits.json"]        # no temp file left behind


def test_ctrl_c_before_any_trial_finishes_saves_nothing(tmp_path):
    proc = _cli(tmp_path, "--dataset", "digits", "--trials", "1")
    try:
        deadline = time.monotonic() + 240
        while "expected cost here" not in (line := proc.stderr.readline()):
            assert line and time.monotonic() < deadline, proc.communicate()
        err = _interrupt(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: no trial had finished; nothing saved"
    assert not (tmp_path / "runs").exists()


def test_an_interrupted_save_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = create_json(tmp_path / "run.json", {"records": [1]})
    real = os.write

    def interrupted(fd, data):          # Ctrl-C halfway through writing the temp file
        real(fd, bytes(data)[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", this_thread_only(interrupted, real))
    with pytest.raises(KeyboardInterrupt):
        save_json(path, {"records": [1, 2]})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"records": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


@pytest.mark.parametrize("args, message", [
    (["--methods", ","], "--methods names no method"),
    (["--methods", " , "], "--methods names no method"),
    (["--methods", "retrain"], "unknown method 'retrain'"),
    (["--removal-size", "0"], "--removal-size 0: must be >= 1"),
    (["--trials", "0"], "--trials 0: must be >= 1"),
    (["--max-epochs", "0"], "--max-epochs 0: must be >= 1"),
    (["--seed", "-1"], "--seed -1 with --trials 4: the trials' seeds -1..2 must lie in 0..4294967295"),
    (["--seed", "4294967295", "--trials", "2"], "the trials' seeds 4294967295..4294967296 must lie in"),
    (["--train-size", "5"], "--train-size does not apply to --dataset synthetic; it applies to --dataset mnist"),
    (["--dataset", "california", "--train-size", "100"], "--train-size does not apply to --dataset california"),
    (["--test-fraction", "0.5"], "--test-fraction does not apply to --dataset synthetic; it applies to --dataset "
                                 "california or digits"),
    (["--data-dir", "."], "--data-dir does not apply to --dataset synthetic; it applies to --dataset california "
                          "or mnist"),
    (["--dataset", "digits", "--data-dir", "."], "--data-dir does not apply to --dataset digits"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_out_never_replaces_a_file(tmp_path, capsys):
    out = tmp_path / "kept.json"
    out.write_text('{"mine": true}')
    with pytest.raises(SystemExit):
        cli.main(["--out", str(out)])
    assert "exists: runs never replace a saved file" in capsys.readouterr().err
    assert out.read_text() == '{"mine": true}'


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: synthetic)", "(default: 4)", "(default: 1)", "(default: 0)"):
        assert default in text
    assert "Ctrl-C keeps the finished ones" in text


def test_the_estimate_says_what_it_timed():
    from unlearning import load_dataset
    from unlearning.running.estimate import estimate

    cfg = get_config("digits")
    est = estimate(load_dataset("digits"), cfg)
    assert est.train_epoch_seconds > 0 and math.isfinite(est.train_epoch_seconds)      # measured, not bounded
    assert est.training() == pytest.approx(est.train_epoch_seconds * cfg.train.convergence.max_epochs)
    line = est.line(4)
    assert line.startswith("expected cost here (one epoch timed now: ")
    assert "up to 500 epochs each" in line and "for 4" in line


@pytest.mark.parametrize("args, message", [
    (["--device", "mps"], "available here: cpu"),
    (["--device", "cpu:5"], "available here: cpu"),
    (["--device", "meta"], "available here: cpu"),
    (["--device", "meta"], "or left out (auto: "),
    (["--dataset", "digits", "--test-fraction", "1.5"], "--test-fraction=1.5 not allowed; use a number in (0, 1)"),
    (["--dataset", "california", "--test-fraction", "-1"], "--test-fraction=-1.0 not allowed"),
])
def test_options_that_do_not_fit_are_errors_naming_them(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*args, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
