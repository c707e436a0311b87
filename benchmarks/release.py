"""One release: the paper profile run as shards at one clean commit, merged, `reports/` regenerated from that one
run and compared with the previous release.

    python -m benchmarks.release                          # the whole release (tox -e release is the same)
    python -m benchmarks.release --resume                 # after Ctrl-C or a killed shard: only what is missing
    python -m benchmarks.release --skip-stale-searches    # go on past stale searches (each named, with its command)

The steps, in order (docs/release.md):

1. **A clean tree** or nothing: the report names one commit, so uncommitted changes (tracked, or untracked and not
   ignored) stop the release (exit 2), each named.
2. **Stale searches**: a committed search (`benchmarks/tuned/<dataset>.json`) is stale for a method when the code of
   the module that registers the method changed since the commit the search recorded for it (its syntax tree less
   docstrings: comments, layout and reworded docstrings do not count; `code_of`). Stale ones are searched again with
   the settings they were made with (`python -m benchmarks.tune ...`, printed), then the release stops (exit 3):
   commit the new searches and release again, so the report still comes from one clean commit.
   `--skip-stale-searches` goes on with them as they are, each named with the command that would refresh it.
3. **The shards**, in the release's own checkout of its commit (a git worktree, `<folder>/tree`, made once and removed
   when the release is done): the checkout it was started from can move on meanwhile (edits, commits), the shards
   still run and record the released commit. The profile's cells split by pytest-split over the machine's CPUs
   (submitit's local executor, one single-threaded shard per CPU) or over Slurm where a controller answers
   (`benchmarks.cluster`'s launcher, balanced by `benchmarks/durations/<profile>.json`), with one progress line every
   `TICK_S` seconds: cells done and an ETA. Everything lands in the release folder
   (`.benchmarks/release/<commit>-<profile>/` unless `--folder`); Ctrl-C stops the shards and keeps every finished
   cell (the journal), `--resume` runs only what is missing (the release folder of the checkout's commit, else the
   one unfinished release of the profile) and the saved cells are the same bits either way.
4. **The report**: the shards are merged into the folder's `merged.json`; the previous release's runs are kept in the
   folder (`previous/`), the checkout's `reports/runs/` is replaced by the one merged run and the released commit's
   report generator (`python -m reports reports/runs --out reports`, run in the worktree) regenerates the checkout's
   report (a failure puts the previous runs back): commit it.
5. **What moved**: the history check's tracked figures of the previous runs against the new one (`history.moved`):
   each metric or cost that moved beyond its spread, is new or is gone, printed and saved as `moved.csv`.
6. **What it cost**: the wall time, each shard's, and each part's (module x dataset: the summed wall seconds of its
   cells, builds included, from each shard's JUnit XML), printed and saved in `release.json`; the cells' measured
   seconds become the profile's durations file (`--no-durations` keeps it), which balances the next release.

Exit status: 0 released; 1 a shard failed, the merge or the report found a problem (`reports/` is left as it was:
`--resume` reruns what failed); 2 bad usage or a dirty tree; 3 stale searches were searched again (commit them and
release again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from unlearning.bench.cluster.launch import FAILED, PENDING, RUNNING, Manifest, Resources, launch
from unlearning.common.files import restore_aside, save_json, swap_folder, temp_folder
from unlearning.running.provenance import git_state
from unlearning.training.progress import clock

from .cluster import durations, merge, missing_extra, pytest_args, status
from .profiles import PROFILES, get_profile

ROOT = Path(__file__).resolve().parent.parent
TUNED = "benchmarks/tuned"
REPORTS = "reports"
PROFILE = "paper"
TICK_S = 60.0              # one progress line a minute
ETA_AFTER = 0.03           # the ETA once this share of the recorded time left at the start is done
STALE_EXIT, DIRTY_EXIT = 3, 2


def say(line: str) -> None:
    print(line, flush=True)


# -- 1. a clean tree --------------------------------------------------------------------------------------------------
def dirty(root: Path) -> list[str]:
    """Why `root` cannot be released: its uncommitted paths (or that it is no git checkout)."""
    state = git_state(root)
    if state["git_commit"] is None:
        return [f"{root} is not a git checkout with a commit: a release names the commit it ran"]
    return list(state["git_changed_paths"] or []) if state["git_dirty"] else []


# -- 2. stale searches ------------------------------------------------------------------------------------------------
@dataclass
class Stale:
    """The methods of one dataset's committed search whose code changed since the commit each was searched at."""

    dataset: str
    path: Path
    methods: dict[str, str] = field(default_factory=dict)      # method -> why it is stale
    regimes: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        """The search that refreshes them, with the settings the file was searched with."""
        s, cmd = self.settings, [sys.executable, "-m", "benchmarks.tune", self.dataset]
        cmd += ["--bench-profile", str(s.get("profile") or PROFILE)]
        if s.get("trials_per_method"):
            cmd += ["--trials", str(s["trials_per_method"])]
        if s.get("n_models"):
            cmd += ["--n-models", str(s["n_models"])]
        for key in ("train", "test"):
            if (s.get("subset") or {}).get(key) is not None:
                cmd += [f"--{key}", str(s["subset"][key])]
        if self.regimes:
            cmd += ["--regimes", *self.regimes]
        return [*cmd, "--methods", *sorted(self.methods)]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def method_file(name: str, root: Path) -> str | None:
    """The module that registers method `name`, relative to `root` (None: not a registered method of this tree)."""
    import inspect

    from unlearning.methods import get_method

    try:
        path = Path(inspect.getsourcefile(get_method(name).fn)).resolve()
    except (ValueError, TypeError):
        return None
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:                     # a plug-in's method, outside this tree: not this release's code
        return None


def code_of(root: Path, commit: str, source: str) -> str | None:
    """What of `source` at `commit` can change what a method does: its syntax tree without docstrings (comments and
    layout are not in it), so that a reworded docstring leaves a search fresh. None where the file was absent."""
    import ast

    shown = _git(root, "show", f"{commit}:{source}")
    if shown.returncode != 0:
        return None
    tree = ast.parse(shown.stdout)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body and \
                isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
                isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def stale_searches(root: Path = ROOT, folder: str = TUNED) -> list[Stale]:
    """Every committed search with a stale method (module docstring, step 2), by dataset."""
    found = []
    for path in sorted((root / folder).glob("*.json")):
        search = json.loads(path.read_text(encoding="utf-8"))
        regimes = search.get("regimes") or {search.get("regime") or "canaries": search}
        stale = Stale(search.get("dataset") or path.stem, path, settings=search)
        for regime, entry in regimes.items():
            for method, result in entry.get("methods", {}).items():
                commit = (result.get("provenance") or {}).get("git_commit")
                source = method_file(method, root)
                if source is None:
                    continue
                if not commit:
                    why = "its search recorded no commit"
                elif _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
                    why = f"its search's commit {commit[:12]} is not in this clone"
                elif code_of(root, commit, source) != code_of(root, "HEAD", source):
                    why = f"{source} changed since {commit[:12]}"
                else:
                    continue
                stale.methods.setdefault(method, why)
                if "regimes" in search and regime not in stale.regimes:
                    stale.regimes += (regime,)
        if stale.methods:
            found.append(stale)
    return found


# -- 3. the shards, with a progress line ------------------------------------------------------------------------------
def collect(args: list[str], root: Path = ROOT) -> list[str]:
    """The node ids pytest collects for the release (`args`: the shards' pytest arguments, no split)."""
    keep = [a for i, a in enumerate(args) if a not in ("--splitting-algorithm", "--durations-path")
            and (i == 0 or args[i - 1] not in ("--splitting-algorithm", "--durations-path"))]
    out = subprocess.run([sys.executable, "-m", "pytest", *keep, "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=root, capture_output=True, text=True, check=False)
    return [line.strip() for line in out.stdout.splitlines() if "::" in line and not line.startswith(" ")]


def journaled(folder: Path) -> set[str]:
    """The cells the shards' journals hold (finished cells, whichever attempt)."""
    done: set[str] = set()
    for path in (folder / "storage").glob("*/journal/*.jsonl"):
        for line in path.read_bytes().split(b"\n"):
            try:
                done.add(json.loads(line)["fullname"])
            except (ValueError, KeyError, TypeError):       # a torn last line: not a cell (the journal says so)
                continue
    return done


class Eta:
    """The release's progress line: cells done of all, and the time left, from the recorded durations of the cells
    done in this session (a cell without a recorded duration counts as their mean)."""

    def __init__(self, cells: list[str], recorded: dict[str, float], folder: Path):
        self.cells, self.folder = cells, folder
        known = [recorded[c] for c in cells if c in recorded]
        mean = sum(known) / len(known) if known else 1.0
        self.expected = {c: recorded.get(c, mean) for c in cells}
        self.before = journaled(folder) & set(cells)

    def line(self, elapsed: float) -> str:
        done = journaled(self.folder) & set(self.cells)
        now = sum(self.expected[c] for c in done - self.before)
        left = sum(self.expected[c] for c in self.cells if c not in done)
        # the pace needs a few percent of the expected time done: a session's first cells carry its builds
        eta = (f"~{clock(elapsed * left / now)} left" if now >= ETA_AFTER * (now + left) else
               f"ETA after {ETA_AFTER:.0%} of the recorded time")
        return f"release: {len(done)}/{len(self.cells)} cells · {clock(elapsed)} this session · {eta}"


def resolve_executor(kind: str) -> str:
    """`auto`: Slurm where `sbatch` is found and its controller answers (`sinfo`), else submitit's local executor."""
    if kind != "auto":
        return kind
    if shutil.which("sbatch") and shutil.which("sinfo"):
        try:
            if subprocess.run(["sinfo", "-h"], capture_output=True, timeout=15, check=False).returncode == 0:
                return "slurm"
        except (OSError, subprocess.SubprocessError):
            pass
    return "local"


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def lost_local_shards(manifest: Manifest) -> list[str]:
    """A local launch whose launcher died: its shards last seen pending or running whose process is gone are marked
    failed (so `--resume` reruns them); those still alive are returned (the release must not run them twice)."""
    alive = []
    for k, s in manifest.shards.items():
        if s.state in (PENDING, RUNNING) and manifest.executor == "local":
            try:
                os.kill(int(s.job_id), 0)
                alive.append(f"shard {k} (pid {s.job_id})")
            except (ProcessLookupError, ValueError, TypeError):
                s.state, s.reason = FAILED, "its process is gone (the launcher was stopped)"
            except PermissionError:
                alive.append(f"shard {k} (pid {s.job_id})")
    manifest.save()
    return alive


# -- 6. what it cost --------------------------------------------------------------------------------------------------
def junit_seconds(folder: Path) -> list[tuple[str, int, float, bool]]:
    """(node id, attempt, wall seconds, run) of every cell in the shards' JUnit XML files (`run`: not skipped)."""
    out = []
    for path in sorted(folder.glob("shard-*.attempt-*.xml")):
        attempt = int(path.stem.rsplit("-", 1)[-1])
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:                       # an attempt killed before pytest wrote it
            continue
        for case in root.iter("testcase"):
            node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
            skipped = case.find("skipped") is not None
            out.append((node, attempt, float(case.get("time") or 0.0), not skipped))
    return out


def part(node: str) -> str:
    """A cell's part of the release: its module and, where its id starts with one, its dataset."""
    module, _, name = node.partition("::")
    first = name.partition("[")[2].split("-")[0].rstrip("]")
    return f"{Path(module).stem.removeprefix('test_')} {first}".strip()


def costs(folder: Path) -> dict:
    """Each part's cells and summed wall seconds (every attempt's: work an interruption threw away counts), and each
    cell's seconds where it ran (its last attempt that ran it: the durations of the next release)."""
    parts: dict[str, dict] = defaultdict(lambda: {"cells": 0, "seconds": 0.0})
    cell: dict[str, float] = {}
    for node, _attempt, seconds, ran in junit_seconds(folder):
        p = parts[part(node)]
        p["seconds"] += seconds
        if ran:
            p["cells"] += 1 if node not in cell else 0
            cell[node] = seconds
    return {"parts": dict(sorted(parts.items(), key=lambda kv: -kv[1]["seconds"])), "cells": cell}


# -- the release ------------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.release", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-profile", default=PROFILE, choices=list(PROFILES), help="the profile (default: paper)")
    ap.add_argument("--folder", type=Path, default=None,
                    help="the release folder (default .benchmarks/release/<commit>-<profile>)")
    ap.add_argument("--resume", action="store_true",
                    help="go on with the release folder's launch: only what is missing")
    ap.add_argument("--skip-stale-searches", action="store_true", help="go on past stale searches, each named")
    ap.add_argument("--shards", type=int, default=None,
                    help="shards (default: one per CPU locally, the profile's on Slurm)")
    ap.add_argument("--executor", choices=("auto", "local", "slurm"), default="auto",
                    help="local (submitit's), slurm, or auto: slurm where its controller answers")
    ap.add_argument("--reports", type=Path, default=ROOT / REPORTS, help="the report folder (default: reports/)")
    ap.add_argument("--no-durations", action="store_true",
                    help="keep benchmarks/durations/<profile>.json as it is (default: the release's cell times)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if why := missing_extra():
        print(f"release: error: {why}", file=sys.stderr)
        return DIRTY_EXIT
    profile = get_profile(args.bench_profile)
    try:
        found = release_of(args, profile.name)
        if isinstance(found, int):
            return found
        folder, commit = found
        tree = worktree(ROOT, commit, folder)
    except ValueError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return DIRTY_EXIT
    summary_path = folder / SUMMARY
    started = time.time()
    try:
        manifest = run_shards(args, extra, profile, folder, tree)
    except ValueError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return DIRTY_EXIT
    except KeyboardInterrupt:
        record_session(summary_path, started, interrupted=True)
        print(f"\nrelease: interrupted; every finished cell is kept. Go on with: python -m benchmarks.release "
              f"--resume --folder {folder}", file=sys.stderr)
        return 130
    summary = record_session(summary_path, started, interrupted=False)
    say("\n".join(status(manifest)))
    if merge(manifest) != 0:
        print("release: error: not every shard passed: reports/ is left as it was; rerun what failed with "
              f"--resume --folder {folder}", file=sys.stderr)
        return 1
    spent = costs(folder)
    summary.update(executor=manifest.executor, shards=manifest.splits,
                   shard_seconds={k: s.seconds for k, s in manifest.shards.items()}, parts=spent["parts"])
    save_json(summary_path, summary)
    say(cost_lines(summary))
    if not args.no_durations and spent["cells"]:
        save_json(durations(profile.name), dict(sorted({**_recorded(tree, profile.name), **spent["cells"]}.items())))
        say(f"release: recorded {len(spent['cells'])} cell durations in {durations(profile.name).relative_to(ROOT)}")
    run_name = f"release-{commit[:12]}-{profile.name}.json"
    previous = keep_previous(args.reports / "runs", folder / "previous")
    if (code := regenerate(folder / "merged.json", run_name, args.reports, folder / "previous", tree)) != 0:
        return code
    code = report_moved(previous, args.reports / "runs" / run_name, folder)
    finish(summary_path, tree)
    return code


def release_of(args, profile: str) -> tuple[Path, str] | int:
    """The release folder and the commit it releases: a resumed release's (read back from its folder), or a new one's
    (steps 1-2: a clean tree, stale searches; an exit status where they stop it). ValueError: bad usage."""
    if args.resume:
        folder = (args.folder or unfinished(ROOT, profile)).absolute()
        return folder, begun(folder)["commit"]
    if changed := dirty(ROOT):
        print(f"release: error: the tree has {len(changed)} uncommitted change(s): commit or stash them; a release "
              "names one clean commit:\n" + "\n".join(f"  {p}" for p in changed), file=sys.stderr)
        return DIRTY_EXIT
    commit = git_state(ROOT)["git_commit"]
    folder = (args.folder or releases(ROOT) / f"{commit[:12]}-{profile}").absolute()
    if (folder / "launch.json").exists():
        raise ValueError(f"{folder} holds a release already: --resume goes on with it (or remove the folder)")
    stale = stale_searches(ROOT)
    if stale and (code := refresh(stale, skip=args.skip_stale_searches)) is not None:
        return code
    begin(folder, commit, profile, stale)
    return folder, commit


# -- the release's folder and its own checkout ------------------------------------------------------------------------
TREE = "tree"
SUMMARY = "release.json"


def summary_of(folder: Path) -> dict:
    """The release folder's `release.json` ({} where there is none yet)."""
    path = folder / SUMMARY
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def releases(root: Path) -> Path:
    return root / ".benchmarks" / "release"


def begin(folder: Path, commit: str, profile: str, stale: list[Stale]) -> None:
    """The release folder's `release.json` as the release starts: what it releases (read back by `--resume`)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_json(folder / SUMMARY, {"commit": commit, "profile": profile, "sessions": [],
                                 "stale_searches_skipped": {s.dataset: s.methods for s in stale}})


def begun(folder: Path) -> dict:
    """The `release.json` of a release started in `folder` (ValueError: none, or one made before it recorded its
    commit)."""
    summary = summary_of(folder)
    if not (folder / "launch.json").exists() or not summary:
        raise ValueError(f"{folder} holds no release to resume (no launch.json or {SUMMARY})")
    if not summary.get("commit"):
        raise ValueError(f"{folder / SUMMARY} names no commit: a release started by an older version of this command; "
                         "start it again (remove the folder)")
    return summary


def unfinished(root: Path, profile: str) -> Path:
    """The release `--resume` goes on with: the folder of the checkout's commit where it holds an unfinished release,
    else the one unfinished release of `profile` (ValueError: none, or several: `--folder` chooses)."""
    head = git_state(root)["git_commit"] or ""
    found = [p.parent for p in sorted(releases(root).glob(f"*-{profile}/launch.json"))
             if not summary_of(p.parent).get("released")]
    mine = [f for f in found if head and f.name == f"{head[:12]}-{profile}"]
    if mine or len(found) == 1:
        return (mine or found)[0]
    if not found:
        raise ValueError(f"no unfinished release of profile {profile} in {releases(root)} to resume")
    raise ValueError(f"{len(found)} unfinished releases of profile {profile}: choose one with --folder: "
                     + ", ".join(str(f) for f in found))


def worktree(root: Path, commit: str, folder: Path) -> Path:
    """The release's own checkout of `commit` (`<folder>/tree`, a detached git worktree, reused when resuming), and
    this process's environment pointed at it: the shards import its code, downloads stay in the checkout's cache."""
    from unlearning.data.fetch import ENV_CACHE_DIR, cache_dir

    tree = folder / TREE
    if tree.exists():
        head = _git(tree, "rev-parse", "HEAD").stdout.strip()
        if head != commit:
            raise ValueError(f"{tree} is at {head[:12] or 'no commit'}, not the release's {commit[:12]}: remove it "
                             "(git worktree remove --force) and --resume")
    else:
        _git(root, "worktree", "prune")
        made = _git(root, "worktree", "add", "--detach", str(tree), commit)
        if made.returncode != 0:
            raise ValueError(f"could not make the release's worktree {tree}: {made.stderr.strip()}")
    os.environ.setdefault(ENV_CACHE_DIR, str(cache_dir()))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    return tree


def finish(summary_path: Path, tree: Path) -> None:
    """The release is done: marked so in `release.json` (`--resume` passes it by), its worktree removed."""
    save_json(summary_path, {**summary_of(summary_path.parent), "released": True})
    remove_worktree(ROOT, tree)


def remove_worktree(root: Path, tree: Path) -> None:
    if _git(root, "worktree", "remove", "--force", str(tree)).returncode != 0:
        say(f"release: could not remove the worktree {tree}: remove it with git worktree remove --force")


def refresh(stale: list[Stale], skip: bool) -> int | None:
    """Name each stale search with its command; search them again unless `skip` (then the exit status: commit them and
    release again), else None: go on."""
    for s in stale:
        print(f"release: stale search {s.path.relative_to(ROOT)}: "
              + "; ".join(f"{m}: {why}" for m, why in sorted(s.methods.items()))
              + f"\n  refresh: {' '.join(s.command()[1:])}", file=sys.stderr)
    if skip:
        return None
    for s in stale:
        say(f"release: searching again: {' '.join(s.command()[1:])}")
        if subprocess.run(s.command(), cwd=ROOT, check=False).returncode != 0:
            print(f"release: error: the search of {s.dataset} failed", file=sys.stderr)
            return 1
    say(f"release: stale searches refreshed: commit {TUNED}/ and run the release again")
    return STALE_EXIT


def run_shards(args, extra: list[str], profile, folder: Path, tree: Path) -> Manifest:
    """Launch the release's shards in `tree` (or, with --resume, what is missing of them) and wait, with the progress
    line."""
    if args.resume:
        manifest = Manifest.load(folder)
        if live := lost_local_shards(manifest):
            raise ValueError(f"{', '.join(live)} still run: wait for them or stop them, then --resume")
        eta = Eta(collect(list(manifest.pytest_args), tree), _recorded(tree, profile.name), folder)
        return launch(folder, 0, (), resubmit=True, force=True, say=say, tick=eta.line, tick_s=TICK_S)
    executor = resolve_executor(args.executor)
    splits = args.shards or (cpus() if executor == "local" else profile.cluster.shards)
    here = str(durations(profile.name))
    test_args = [str(tree_durations(tree, profile.name)) if a == here else a for a in pytest_args(profile.name, extra)]
    eta = Eta(collect(test_args, tree), _recorded(tree, profile.name), folder)
    say(f"release: {len(eta.cells)} cells of profile {profile.name} as {splits} shard(s) ({executor}); "
        f"folder {folder}")
    c = profile.cluster
    return launch(folder, splits, test_args, executor_kind=executor, say=say, tick=eta.line, tick_s=TICK_S,
                  cwd=tree, besides=(SUMMARY, TREE),
                  resources=Resources(cpus_per_task=c.cpus_per_task, mem_gb=c.mem_gb, timeout_min=c.timeout_min))


def tree_durations(tree: Path, profile: str) -> Path:
    """The released commit's durations file of `profile` (in its worktree)."""
    return tree / durations(profile).relative_to(ROOT)


def _recorded(tree: Path, profile: str) -> dict[str, float]:
    """The released commit's recorded cell durations of `profile`."""
    path = tree_durations(tree, profile)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def record_session(path: Path, started: float, interrupted: bool) -> dict:
    """Add this invocation's wall seconds to the release's `release.json` (a resumed release: one entry each)."""
    summary = {"sessions": [], **summary_of(path.parent)}
    summary["sessions"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                                "seconds": time.time() - started, "interrupted": interrupted})
    summary["wall_seconds"] = sum(s["seconds"] for s in summary["sessions"])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_json(path, summary)
    return summary


def cost_lines(summary: dict) -> str:
    lines = [f"release: {clock(summary['wall_seconds'])} wall in {len(summary['sessions'])} session(s), "
             f"{summary['shards']} shard(s) ({summary['executor']}): "
             + ", ".join(f"shard {k} {clock(s or 0)}" for k, s in sorted(summary["shard_seconds"].items())),
             "release: each part's cells and wall seconds (summed over shards, builds included):"]
    lines += [f"  {name:40s} {p['cells']:5d} cells {clock(p['seconds']):>9s}" for name, p in summary["parts"].items()]
    return "\n".join(lines)


def keep_previous(runs: Path, previous: Path) -> list[Path]:
    """The previous release's runs, copied once into the release folder (a resumed release keeps the first copy)."""
    if not previous.exists():
        tmp = previous.with_name(previous.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
            shutil.copy2(path, tmp / path.name)
        os.replace(tmp, previous)
    return sorted(previous.glob("*.json"))


def regenerate(merged: Path, run_name: str, reports: Path, previous: Path, tree: Path = ROOT) -> int:
    """`reports/runs/` becomes the one merged run and the report is regenerated from it; a failed report puts the
    previous runs back from their copy in the release folder (`previous`; the report generator itself replaces its
    pages all at once or not at all).

    The released commit's generator writes the report in its own worktree's `reports/`, a copy of `reports` (its
    links to `docs/` and the run's file name are then a checkout's, as committed), which then replaces `reports`."""
    runs = reports / "runs"
    replace_runs(runs, [merged], run_name)
    in_tree = tree.resolve() != ROOT.resolve()
    staged = tree / REPORTS if in_tree else reports
    if in_tree:                     # the checkout's report as it now is: the generator's own checks see it
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(reports, staged)
    code = subprocess.run([sys.executable, "-m", "unlearning.bench.report", os.path.relpath(staged / "runs", tree),
                           "--out", os.path.relpath(staged, tree)], cwd=tree, check=False).returncode
    if code == 0:
        if in_tree:
            tmp, aside = temp_folder(reports)
            shutil.copytree(staged, tmp, dirs_exist_ok=True)
            swap_folder(tmp, reports, aside)
            restore_aside(tmp, aside, reports)
        say(f"release: {reports} regenerated from {runs / run_name}")
        return 0
    print(f"release: error: the report generator exited {code}: the previous runs are put back", file=sys.stderr)
    replace_runs(runs, sorted(previous.glob("*.json")))
    return 1


def replace_runs(runs: Path, files: list[Path], name: str | None = None) -> None:
    """Make `runs` hold exactly `files` (the first named `name`, if given): filled beside it, swapped in by rename."""
    runs.parent.mkdir(parents=True, exist_ok=True)
    tmp, aside = temp_folder(runs)
    for i, path in enumerate(files):
        shutil.copy2(path, tmp / (name if name and i == 0 else path.name))
    swap_folder(tmp, runs, aside)
    restore_aside(tmp, aside, runs)


def report_moved(previous: list[Path], current: Path, folder: Path, shown: int = 40) -> int:
    """The history check's figures of the previous release against this one: what moved, printed and saved."""
    from unlearning.bench.report.history import figures, moved
    from unlearning.bench.report.load import load

    if not previous:
        say("release: no previous release's runs to compare with")
        return 0
    try:
        rows, common = moved(figures(load([str(p) for p in previous])), figures(load([str(current)])))
    except ValueError as exc:
        print(f"release: the comparison with the previous release failed: {exc}", file=sys.stderr)
        return 1
    rows.to_csv(folder / "moved.csv", index=False)
    counts = rows["change"].value_counts().to_dict() if len(rows) else {}
    say(f"release: against the previous release ({len(previous)} run(s)): {common} figures in both, "
        + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) + f" (all in {folder / 'moved.csv'})")
    for _, r in rows.head(shown).iterrows():
        say(f"  {r['change']:20s} {r['kind']:6s} {r['figure']}: {r['before']:.4g} -> {r['after']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
