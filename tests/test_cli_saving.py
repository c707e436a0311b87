"""`python -m unlearning` out of space, in a folder it cannot write, and killed mid-save: nothing finished is
lost without a word. A full disk is `os.write` raising ENOSPC on the save's temp file; a read-only or
forbidden folder is `os.open` (mkstemp) raising EROFS / EACCES there; a killed save is a real CLI process
sent SIGKILL while it saves."""

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toys import this_thread_only

from unlearning.common.files import abandoned_temps, create_json, save_json
from unlearning.running import cli, runfile

REPO = Path(__file__).resolve().parents[1]
FAST = ["--methods", "noop", "-q"]          # a synthetic trial with no method but the floor: two records


def _fail_in(monkeypatch, folders, code: int, times: float = float("inf")):
    """Make saving in `folders` fail with `code` (the first `times` attempts): ENOSPC when the temp file's
    bytes are written (a full disk), EROFS / EACCES when it is created (a read-only / forbidden folder).
    Returns the list of the paths that failed."""
    folders = [Path(f).resolve() for f in folders]
    failed = []

    def due(path: Path) -> bool:
        return path.parent.resolve() in folders and len(failed) < times

    if code == errno.ENOSPC:
        real = os.write

        def write(fd, data):
            st = os.fstat(fd)
            temps = [p for f in folders if f.is_dir() for p in f.glob(".*.tmp")]
            hit = next((p for p in temps if os.path.samestat(st, p.stat())), None)
            if hit is not None and due(hit):
                failed.append(hit)
                raise OSError(code, os.strerror(code))
            return real(fd, data)

        monkeypatch.setattr(os, "write", this_thread_only(write, real))
    else:
        real = os.open

        def open_(path, flags, *args, **kwargs):
            if Path(path).name.endswith(".tmp") and due(Path(path)):
                failed.append(Path(path))
                raise OSError(code, os.strerror(code), str(path))
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", this_thread_only(open_, real))
    return failed


@pytest.fixture
def fallbacks(tmp_path, monkeypatch):
    dirs = [tmp_path / "user-cache" / "runs", tmp_path / "system-tmp"]
    monkeypatch.setattr(runfile, "fallback_dirs", lambda: list(dirs))
    return dirs


def _run_file(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json")) if folder.is_dir() else []


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


FAULTS = [(errno.ENOSPC, "No space left on device (ENOSPC)"), (errno.EROFS, "Read-only file system (EROFS)"),
          (errno.EACCES, "Permission denied (EACCES)")]


@pytest.mark.parametrize("code, words", FAULTS)
def test_a_failed_save_is_one_line_and_the_next_trial_saves_every_record(tmp_path, monkeypatch, capsys, fallbacks,
                                                                        code, words):
    monkeypatch.chdir(tmp_path)
    failed = _fail_in(monkeypatch, [tmp_path / "runs"], code, times=1)
    assert cli.main(["--trials", "2", *FAST]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(failed) == 1
    (path,) = _run_file(tmp_path / "runs")
    (line,) = _lines(err)
    assert line == (f"could not save to {Path('runs') / path.name}: {words}; the 2 records of trial 1 (seed 0) "
                    "kept in memory; saving again after the next trial")
    run = json.loads(path.read_text())
    assert run["trials_done"] == 2 and {r["trial"] for r in run["records"]} == {1, 2}
    assert not any(d.exists() for d in fallbacks)
    assert not list((tmp_path / "runs").glob(".*.tmp"))


@pytest.mark.parametrize("code, words", FAULTS)
def test_when_every_save_fails_the_records_go_to_a_fallback_file_it_names(tmp_path, monkeypatch, capsys, fallbacks,
                                                                         code, words):
    monkeypatch.chdir(tmp_path)
    _fail_in(monkeypatch, [tmp_path / "runs"], code)
    assert cli.main(["--trials", "2", *FAST]) == runfile.EXIT_FALLBACK
    captured = capsys.readouterr()
    (made,) = _run_file(fallbacks[0])
    assert not _run_file(tmp_path / "runs")
    last = _lines(captured.err)[-1]
    assert last.startswith(f"could not save to runs{os.sep}synthetic-") and words in last
    assert last.endswith(f"all 4 records of the 2 finished trial(s) are in {made} instead")
    assert len(_lines(captured.err)) == 3          # one line per failed trial, then where the records are
    run = json.loads(made.read_text())
    assert run["trials_done"] == 2 and len(run["records"]) == 4
    assert "saved 4 records" not in captured.out and "noop" in captured.out      # the table is still printed


def test_the_second_fallback_is_used_when_the_first_fails_too(tmp_path, monkeypatch, capsys, fallbacks):
    monkeypatch.chdir(tmp_path)
    _fail_in(monkeypatch, [tmp_path / "runs", fallbacks[0]], errno.ENOSPC)
    assert cli.main(["--trials", "1", *FAST]) == runfile.EXIT_FALLBACK
    (made,) = _run_file(fallbacks[1])
    assert made.name.startswith("unlearning-bench-synthetic-")
    assert f"are in {made} instead" in capsys.readouterr().err
    assert json.loads(made.read_text())["trials_done"] == 1


def test_when_the_fallbacks_fail_too_it_says_exactly_what_was_lost(tmp_path, monkeypatch, capsys, fallbacks):
    monkeypatch.chdir(tmp_path)
    real_write = os.write
    saves = []

    def write(fd, data):        # trial 1 saves; from trial 2 on, every disk is full
        if data[:1] == b"{":
            saves.append(fd)
            if len(saves) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", this_thread_only(write, real_write))
    assert cli.main(["--trials", "3", *FAST]) == runfile.EXIT_LOST
    (path,) = _run_file(tmp_path / "runs")
    last = _lines(capsys.readouterr().err)[-1]
    name = Path("runs") / path.name
    assert last.startswith("lost: the 4 records of trials 2-3 (seeds 1, 2) could be written nowhere (")
    for where in (name, fallbacks[0] / path.name, fallbacks[1] / f"unlearning-bench-{path.name}"):
        assert f"{where}: No space left on device (ENOSPC)" in last
    assert last.endswith(f"; {name} holds trial 1 (2 records)")
    assert json.loads(path.read_text())["trials_done"] == 1       # the file that was saved is intact
    assert not any(_run_file(d) for d in fallbacks)
    assert not list(tmp_path.rglob("*.tmp"))


def test_ctrl_c_after_a_failed_save_still_saves_the_finished_trials(tmp_path, monkeypatch, capsys, fallbacks):
    monkeypatch.chdir(tmp_path)
    _fail_in(monkeypatch, [tmp_path / "runs"], errno.EROFS)
    real = cli.run_trial
    calls = []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "run_trial", interrupted_second)
    assert cli.main(["--trials", "3", *FAST]) == 130
    (made,) = _run_file(fallbacks[0])
    last = _lines(capsys.readouterr().err)[-1]
    assert last.startswith("interrupted: could not save to ") and last.endswith(f"are in {made} instead")
    assert json.loads(made.read_text())["trials_done"] == 1


def test_a_failed_save_leaves_the_saved_file_as_it_was_and_no_temp_file(tmp_path, monkeypatch):
    path = create_json(tmp_path / "run.json", {"records": [1]})
    _fail_in(monkeypatch, [tmp_path], errno.ENOSPC)
    with pytest.raises(OSError) as exc:
        save_json(path, {"records": [1, 2]})
    assert exc.value.errno == errno.ENOSPC
    assert json.loads(path.read_text()) == {"records": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_the_cause_is_the_systems_words_and_the_errors_name():
    assert runfile.cause(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == "No space left on device (ENOSPC)"
    assert runfile.cause(FileExistsError(errno.EEXIST, "File exists", "x.json")) == "File exists (EEXIST)"
    assert runfile.cause(OSError("no errno")) == "no errno"


# --- a killed save ------------------------------------------------------------------------------------------

# A CLI run that stalls in its second save (trial 2's) at `point` and says so by creating the file `stalled`:
# `fsync`: the temp file is complete (valid JSON); `write`: half of it is written (torn).
STALLING = """
import os, sys, time
from pathlib import Path
from unlearning.running import cli
point, real, seen = sys.argv[1], {"fsync": os.fsync, "write": os.write}, []
def stall(*args):
    seen.append(1)
    if len(seen) == 2:
        if point == "write":
            fd, data = args
            real["write"](fd, bytes(data)[: len(data) // 2])
        else:
            real["fsync"](*args)
        Path("stalled").touch()
        time.sleep(600)
    return real[point](*args)
setattr(os, point, stall)
sys.exit(cli.main(["--trials", "3", "--methods", "noop", "-q"]))
"""


def _kill_mid_save(folder: Path, point: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", STALLING, point], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (folder / "stalled").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the save did not stall within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL


def test_the_next_run_finds_a_killed_save_and_offers_the_command_that_keeps_it(tmp_path, monkeypatch, capsys):
    _kill_mid_save(tmp_path, "fsync")
    (path,) = _run_file(tmp_path / "runs")
    (temp,) = (tmp_path / "runs").glob(".*.tmp")
    assert temp.name.startswith(f".{path.name}.")
    assert json.loads(path.read_text())["trials_done"] == 1

    monkeypatch.chdir(tmp_path)
    assert cli.main(["--trials", "1", *FAST]) == 0
    warning = _lines(capsys.readouterr().err)[0]
    rel = Path("runs") / temp.name
    assert warning.startswith(f"{rel}: a temp file left by a save that was killed, holding 4 records of 2 trial(s) "
                              "(seeds 0, 1; 2 of 3 asked) of the synthetic run started ")
    assert f"meant for {Path('runs') / path.name} (which holds 1 trial(s)); keep them with: " in warning
    command = shlex.split(warning.rsplit("keep them with: ", 1)[1])
    assert command[:4] == ["python", "-m", "unlearning", "recover"]
    assert temp.exists()                            # reported, never deleted silently

    assert cli.main(command[3:]) == 0
    assert capsys.readouterr().out.strip() == f"kept 4 records of 2 trial(s) in {Path('runs') / path.name}; " \
                                              f"removed {rel}"
    run = json.loads(path.read_text())
    assert run["trials_done"] == 2 and {r["trial"] for r in run["records"]} == {1, 2}
    assert not temp.exists()
    assert len(_run_file(tmp_path / "runs")) == 2   # the file of the second run, untouched


def test_a_torn_temp_file_is_reported_as_such_and_kept(tmp_path, monkeypatch, capsys):
    _kill_mid_save(tmp_path, "write")
    (temp,) = (tmp_path / "runs").glob(".*.tmp")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--trials", "1", *FAST]) == 0
    warning = _lines(capsys.readouterr().err)[0]
    rel = Path("runs") / temp.name
    assert warning.startswith(f"{rel}: a temp file left by a save that was killed, torn: not valid JSON (")
    assert warning.endswith(f"no trial can be read from it: inspect it, or delete it (rm {rel})")
    assert cli.main(["recover", str(rel)]) == 2
    assert "nothing done" in capsys.readouterr().err and temp.exists()


def _left(folder: Path, payload: dict, target: str = "run.json") -> Path:
    """A temp file as a killed save leaves it: the save's own temp file, its publishing step never run."""
    folder.mkdir(parents=True, exist_ok=True)

    def killed(src, dst):
        raise KeyboardInterrupt        # stands in for SIGKILL before the rename; the temp removal is skipped below

    made = []
    real_unlink = Path.unlink

    def keep(self, missing_ok=False):
        if self.name.endswith(".tmp"):
            made.append(self)
            return None
        return real_unlink(self, missing_ok=missing_ok)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", killed)
        mp.setattr(Path, "unlink", keep)
        with pytest.raises(KeyboardInterrupt):
            save_json(folder / target, payload)
    (temp,) = made
    return temp


def _run_payload(trials: int, run_id: str = "abc", asked: int = 4) -> dict:
    return {"schema": "unlearning-bench/run/1", "run_id": run_id, "started": "2026-12-01T07:00:00+0000",
            "dataset": "synthetic", "trials_done": trials, "trials_asked": asked,
            "configs": [{"seed": s} for s in range(trials)],
            "records": [{"trial": t + 1, "method": m} for t in range(trials) for m in ("original", "noop")]}


def test_a_temp_file_a_running_save_holds_is_not_reported(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    temp = _left(tmp_path, _run_payload(1))
    fd = os.open(temp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)             # what a save in progress holds
        assert abandoned_temps(tmp_path) == []
    finally:
        os.close(fd)
    (left,) = abandoned_temps(tmp_path)
    assert left.path == temp and left.target == tmp_path / "run.json" and left.payload["trials_done"] == 1


def test_recover_never_replaces_another_runs_file(tmp_path, capsys):
    (tmp_path / "run.json").write_text(json.dumps(_run_payload(3, run_id="other")))
    temp = _left(tmp_path, _run_payload(2))
    assert cli.main(["recover", str(temp)]) == 0
    assert f"kept 4 records of 2 trial(s) in {tmp_path / 'run-recovered.json'}" in capsys.readouterr().out
    assert json.loads((tmp_path / "run.json").read_text())["run_id"] == "other"
    assert json.loads((tmp_path / "run-recovered.json").read_text())["trials_done"] == 2
    assert not temp.exists()


def test_recover_into_a_free_name(tmp_path, capsys):
    temp = _left(tmp_path, _run_payload(1))
    assert cli.main(["recover", str(temp)]) == 0
    assert json.loads((tmp_path / "run.json").read_text())["trials_done"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_temp_file_killed_after_its_link_is_a_spare_name(tmp_path, capsys):
    temp = _left(tmp_path, _run_payload(1))
    os.link(temp, tmp_path / "run.json")            # create_json had linked it when the kill came
    (left,) = abandoned_temps(tmp_path)
    assert left.also == tmp_path / "run.json"
    assert "after it had saved the same content as" in runfile.describe_left(left)
    assert cli.main(["recover", str(temp)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    assert json.loads((tmp_path / "run.json").read_text())["trials_done"] == 1


def test_recover_refuses_what_is_not_a_left_temp_file(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    assert cli.main(["recover", str(tmp_path / "run.json"), str(tmp_path / "gone.tmp")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'run.json'}: not a temp file a killed save left" in err
    assert f"{tmp_path / 'gone.tmp'}: no such file" in err


def test_left_temp_files_are_looked_for_beside_out(tmp_path, monkeypatch, capsys):
    temp = _left(tmp_path / "elsewhere", _run_payload(1))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--trials", "1", *FAST, "--out", str(tmp_path / "elsewhere" / "new.json")]) == 0
    assert f"{temp}: a temp file left by a save that was killed" in capsys.readouterr().err


def test_the_fallback_folders_are_the_user_cache_then_the_temp_folder(tmp_path, monkeypatch):
    import tempfile

    if sys.platform != "linux":
        pytest.skip("XDG_CACHE_HOME places the user cache on Linux only")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert runfile.fallback_dirs() == [tmp_path / "cache" / "unlearning-bench" / "runs", tmp_path / "tmp"]
