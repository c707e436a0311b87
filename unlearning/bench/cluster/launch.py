"""Run one pytest benchmark session as N shards through submitit: a Slurm job array, or submitit's local executor.

Each shard is pytest-split's `--splits N --group k` of the same command, run by `run_shard` on its node in a fresh
Python process (`python -m pytest ...`, its own lab: nothing is shared between shards but the files below). One
launch folder holds everything:

- `launch.json`: the manifest (`Manifest`): the command, the resources, and per shard its job id, attempts, state,
  exit status and wall seconds; rewritten atomically after every change, so an interrupted launcher loses nothing;
- `shard-<k>.json`: the shard's saved run (pytest-benchmark JSON, with `bench_shard`: `unlearning.bench.shards`);
- `shard-<k>.log`: the shard's pytest output; `submitit/`: submitit's own files (its pickles and stdout/stderr);
- `storage/`: the shards' pytest-benchmark storage and journal (`benchmarks/journal.py`): a resubmitted shard runs
  with `--bench-resume`, so the cells its first attempt finished are not run again.

`launch` submits the shards (all, or with `resubmit` only those not passed), then `wait`s with one line per change
(`shards: 1 passed, 2 running, 0 pending, 0 failed of 3`). A shard passed when pytest exited 0 and its JSON exists;
any other exit status, an exception, or a Slurm end without a result (TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL)
is failed, with the reason in the manifest.

submitit's gotchas handled here:

- the local executor kills a job after `timeout_min`, which defaults to 2 minutes: it is always given (`Resources`);
- the local executor runs every job at once and has no array parallelism: its shards share the machine's cores;
- submitit learns a Slurm job's state from `sacct`; without accounting (slurmdbd) every job stays UNKNOWN and one
  killed by Slurm never reads as done: `wait` gives up after `unknown_grace` seconds of UNKNOWN with no result;
- submitit's own `sacct` refresh backs off to once per 10 minutes as jobs age, so states lag: `wait` refreshes them
  every `SACCT_EVERY` seconds (one `sacct` call for the whole array; a job's result file is checked every poll);
- submitit pickles the function by reference: `run_shard` is a module-level function of an installed package;
- Slurm does not pin threads under `TaskPlugin=task/none`: each shard gets OMP_NUM_THREADS = its CPUs, which the
  suite's thread policy reads (`unlearning.training.threads.budget`), as it reads $SLURM_CPUS_PER_TASK.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..shards import LAUNCH_ENV, write_json

EXECUTORS = ("auto", "slurm", "local")
MANIFEST = "launch.json"
PASSED, FAILED, RUNNING, PENDING = "passed", "failed", "running", "pending"
SACCT_EVERY = 30.0
STOP_GRACE_S = 60.0      # an interrupted shard's pytest gets this long to write its JUnit XML and saved run
SLURM_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE")


@dataclass(frozen=True)
class Resources:
    """What one shard asks for: Slurm's --cpus-per-task, --mem, --time, --partition, and how many shards may run
    at once (the array's %parallelism; None: all)."""

    cpus_per_task: int = 1
    mem_gb: float = 4.0
    timeout_min: int = 60
    partition: str | None = None
    parallelism: int | None = None

    def __post_init__(self):
        for name in ("cpus_per_task", "timeout_min"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {getattr(self, name)!r}")
        if not self.mem_gb > 0:
            raise ValueError(f"mem_gb must be > 0, not {self.mem_gb!r}")
        if self.parallelism is not None and (type(self.parallelism) is not int or self.parallelism < 1):
            raise ValueError(f"parallelism must be a whole number >= 1 or None, not {self.parallelism!r}")


@dataclass(frozen=True)
class ShardTask:
    """One shard's command, as the node runs it."""

    group: int
    splits: int
    folder: str
    cwd: str
    pytest_args: tuple[str, ...]
    cpus: int
    launch: str
    resume: bool = False
    attempt: int = 1

    @property
    def json_path(self) -> Path:
        return Path(self.folder) / f"shard-{self.group}.json"

    @property
    def log_path(self) -> Path:
        return Path(self.folder) / f"shard-{self.group}.log"

    @property
    def junit_path(self) -> Path:
        """pytest's JUnit XML of this attempt: every cell's wall seconds, setup (what the lab builds) included."""
        return Path(self.folder) / f"shard-{self.group}.attempt-{self.attempt}.xml"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pytest", *self.pytest_args, "--splits", str(self.splits), "--group",
                str(self.group), "--benchmark-json", str(self.json_path), "--benchmark-storage",
                str(Path(self.folder) / "storage"), "--junitxml", str(self.junit_path), "-p", "no:cacheprovider",
                *(["--bench-resume"] if self.resume else [])]


def run_shard(task: ShardTask) -> dict:
    """Run one shard (on its node): pytest in a fresh process, its output appended to the shard's log. Returns its
    exit status, wall seconds, node and whether it saved its JSON. Interrupted, it waits up to `STOP_GRACE_S` for
    pytest (which the same Ctrl-C stops after its cell) to write what it has, rather than killing it at once."""
    env = {**os.environ, "OMP_NUM_THREADS": str(task.cpus), LAUNCH_ENV: task.launch}
    started = time.time()
    with open(task.log_path, "ab") as log:
        log.write(f"$ {' '.join(task.command())}\n".encode())
        log.flush()
        proc = subprocess.Popen(task.command(), cwd=task.cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = proc.wait()
        except BaseException:          # interrupted (Ctrl-C reaches pytest too): let it finish its saves, then stop
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return {"group": task.group, "returncode": code, "seconds": time.time() - started, "node": socket.gethostname(),
            "json": task.json_path.exists()}


@dataclass
class ShardState:
    group: int
    state: str = PENDING
    job_id: str | None = None
    attempts: int = 0
    returncode: int | None = None
    seconds: float | None = None
    node: str | None = None
    reason: str = ""


@dataclass
class Manifest:
    """The launch folder's `launch.json`."""

    folder: Path
    launch: str
    splits: int
    executor: str
    resources: Resources
    pytest_args: tuple[str, ...]
    cwd: str
    shards: dict[int, ShardState] = field(default_factory=dict)

    @classmethod
    def new(cls, folder: Path, splits: int, executor: str, resources: Resources, pytest_args, cwd: Path) -> Manifest:
        if type(splits) is not int or splits < 1:
            raise ValueError(f"the number of shards must be a whole number >= 1, not {splits!r}")
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
        return cls(Path(folder).absolute(), uuid.uuid4().hex[:12], splits, executor, resources, tuple(pytest_args),
                   str(Path(cwd).absolute()), {k: ShardState(k) for k in range(1, splits + 1)})

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = Path(folder) / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path} not found: {folder} is not a launch folder (nothing to resubmit)") from None
        raw["shards"] = {int(k): ShardState(**v) for k, v in raw["shards"].items()}
        raw["resources"] = Resources(**raw["resources"])
        raw["pytest_args"] = tuple(raw["pytest_args"])
        return cls(folder=Path(folder).absolute(), **{k: v for k, v in raw.items() if k != "folder"})

    def save(self) -> None:
        data = dataclasses.asdict(self)
        data["folder"] = str(self.folder)
        data["shards"] = {str(k): v for k, v in data["shards"].items()}
        write_json(data, self.folder / MANIFEST)

    def task(self, group: int, resume: bool) -> ShardTask:
        return ShardTask(group, self.splits, str(self.folder), self.cwd, self.pytest_args,
                         self.resources.cpus_per_task, self.launch, resume, self.shards[group].attempts + 1)

    def counts(self) -> dict[str, int]:
        states = [s.state for s in self.shards.values()]
        return {name: states.count(name) for name in (PASSED, RUNNING, PENDING, FAILED)}

    def line(self, elapsed: float) -> str:
        c = self.counts()
        return (f"shards: {c[PASSED]} passed, {c[RUNNING]} running, {c[PENDING]} pending, {c[FAILED]} failed "
                f"of {self.splits} · {elapsed:.0f} s")

    @property
    def shard_files(self) -> list[Path]:
        return [self.folder / f"shard-{k}.json" for k in sorted(self.shards)]


def executor(manifest: Manifest, jobs: int):
    """submitit's executor for the manifest's kind, with its resources (the local executor's timeout too)."""
    import submitit

    res = manifest.resources
    kind = None if manifest.executor == "auto" else manifest.executor
    ex = submitit.AutoExecutor(folder=manifest.folder / "submitit" / "%j", cluster=kind)
    params = {"timeout_min": res.timeout_min, "cpus_per_task": res.cpus_per_task, "mem_gb": res.mem_gb,
              "name": f"bench-{manifest.launch}"}
    if ex.cluster == "slurm":
        params["slurm_array_parallelism"] = res.parallelism or jobs
        if res.partition:
            params["slurm_partition"] = res.partition
    ex.update_parameters(**params)
    manifest.executor = ex.cluster            # "auto" resolved: slurm where sbatch is found, else local
    return ex


def submit(manifest: Manifest, groups: list[int]) -> list:
    """Submit `groups` as one job array (resubmitted ones resume from the journal); record their job ids."""
    ex = executor(manifest, len(groups))
    tasks = [manifest.task(k, resume=manifest.shards[k].attempts > 0) for k in groups]
    jobs = ex.map_array(run_shard, tasks)
    for k, job in zip(groups, jobs, strict=True):
        s = manifest.shards[k]
        s.job_id, s.attempts, s.state, s.returncode, s.seconds, s.reason = str(job.job_id), s.attempts + 1, PENDING, \
            None, None, ""
    manifest.save()
    return jobs


def _finish(state: ShardState, job, json_path: Path) -> None:
    """A job that is done: passed when pytest exited 0 and saved its JSON; else failed, with the reason."""
    try:
        result = job.result()
    except Exception as exc:               # submitit's UncompletedJobError / FailedJobError, or the job's own error
        state.state, state.reason = FAILED, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        return
    state.returncode, state.seconds, state.node = result["returncode"], result["seconds"], result["node"]
    if result["returncode"] == 0 and json_path.exists():
        state.state = PASSED
    else:
        state.state = FAILED
        state.reason = (f"pytest exited {result['returncode']}" if result["returncode"] != 0 else
                        "pytest exited 0 but saved no JSON") + f"; see shard-{state.group}.log"


def _poll(manifest: Manifest, jobs: dict[int, object], unknown_since: dict[int, float], grace: float) -> bool:
    """Update every unfinished shard's state; True when something changed."""
    changed = False
    for k, job in list(jobs.items()):
        s = manifest.shards[k]
        slurm = str(getattr(job, "state", "UNKNOWN"))
        if job.done() or slurm in SLURM_ENDED or slurm.startswith("NO PROCESS"):     # the last: a local job lost
            _finish(s, job, manifest.folder / f"shard-{k}.json")
            del jobs[k]
            changed = True
            continue
        if slurm == "UNKNOWN" and time.monotonic() - unknown_since.setdefault(k, time.monotonic()) > grace:
            s.state, s.reason = FAILED, (f"its state stayed UNKNOWN for {grace:.0f} s with no result: no Slurm "
                                         "accounting (sacct) to tell what became of it?")
            del jobs[k]
            changed = True
            continue
        new = RUNNING if slurm in ("RUNNING", "COMPLETING") or (slurm == "UNKNOWN" and manifest.executor == "local") \
            else PENDING
        changed |= new != s.state
        s.state = new
    return changed


def wait(manifest: Manifest, jobs: dict[int, object], say: Callable[[str], None] = print, poll_s: float = 2.0,
         unknown_grace: float = 600.0, tick: Callable[[float], str | None] | None = None,
         tick_s: float = 30.0) -> Manifest:
    """Wait for `jobs` ({group: submitit job}), saying one progress line per change (and, with `tick`, its line
    every `tick_s` seconds: `tick(elapsed)`, e.g. cells done and an ETA); the manifest says the rest. `jobs` is
    emptied as they end: after an interruption it holds the unfinished ones."""
    started = refreshed = ticked = time.monotonic()
    unknown_since: dict[int, float] = {}
    say(manifest.line(0))
    while jobs:
        watcher = getattr(next(iter(jobs.values())), "watcher", None)        # local jobs have one without sacct
        if manifest.executor == "slurm" and watcher is not None and time.monotonic() - refreshed > SACCT_EVERY:
            watcher.update()                    # one sacct call for every job of the array
            refreshed = time.monotonic()
        if _poll(manifest, jobs, unknown_since, unknown_grace):
            manifest.save()
            say(manifest.line(time.monotonic() - started))
        if tick is not None and jobs and time.monotonic() - ticked >= tick_s:
            ticked = time.monotonic()
            if line := tick(ticked - started):
                say(line)
        if jobs:
            time.sleep(poll_s)
    return manifest


def interrupted(manifest: Manifest, jobs: dict[int, object]) -> None:
    """The launcher was interrupted (Ctrl-C) while `jobs` ran: local jobs are stopped (SIGINT: pytest ends its cell's
    journal line or none, never half of one) and their shards marked failed, so that `resubmit` resumes them from
    the journal; Slurm jobs go on (the manifest keeps them running: `resubmit --force` after they end or are
    cancelled). The manifest is saved either way."""
    for k, job in jobs.items():
        if manifest.executor == "local":
            try:
                job.cancel()
            except Exception:            # already gone
                pass
            s = manifest.shards[k]
            s.state, s.reason = FAILED, "interrupted (Ctrl-C): resubmit resumes it from the journal"
    manifest.save()


def launch(folder: Path, splits: int, pytest_args, *, executor_kind: str = "auto", resources: Resources | None = None,
           cwd: Path | None = None, resubmit: bool = False, force: bool = False, say: Callable[[str], None] = print,
           poll_s: float = 2.0, tick: Callable[[float], str | None] | None = None, tick_s: float = 30.0,
           besides: tuple[str, ...] = ()) -> Manifest:
    """Submit a benchmark session as `splits` shards (or, with `resubmit`, the not-passed shards of the launch in
    `folder`) and wait for them. The folder must be new or empty unless resubmitting (`besides`: names the caller
    keeps in it). A shard the manifest last saw
    pending or running (a launcher interrupted while waiting: its jobs, Slurm's or local, go on) is resubmitted
    only with `force`, so that two jobs never write one shard's files. Interrupted (Ctrl-C) while waiting, it stops
    the local jobs, saves the manifest (`interrupted`) and raises KeyboardInterrupt."""
    folder = Path(folder).absolute()
    if resubmit:
        manifest = Manifest.load(folder)
        groups = [k for k, s in sorted(manifest.shards.items()) if s.state != PASSED]
        if not groups:
            say(f"every shard of {folder} passed: nothing to resubmit")
            return manifest
        live = [f"{k} (job {manifest.shards[k].job_id})" for k in groups
                if manifest.shards[k].state in (PENDING, RUNNING) and manifest.shards[k].job_id]
        if live and not force:
            raise ValueError(f"shards {', '.join(live)} were last seen {PENDING} or {RUNNING}: they may still run "
                             "(cancel them, e.g. scancel JOB, or wait), then resubmit with --force")
    else:
        if folder.exists() and any(p.name not in besides for p in folder.iterdir()):
            raise ValueError(f"{folder} is not empty: give a new folder, or --resubmit to rerun its failed shards")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = Manifest.new(folder, splits, executor_kind, resources or Resources(), pytest_args, cwd or Path.cwd())
        groups = list(range(1, splits + 1))
        manifest.save()
    jobs = submit(manifest, groups)
    say(f"submitted shards {', '.join(map(str, groups))} of {manifest.splits} as job array "
        f"{jobs[0].job_id.split('_')[0]} ({manifest.executor}); folder {folder}")
    running = dict(zip(groups, jobs, strict=True))
    try:
        return wait(manifest, running, say, poll_s, tick=tick, tick_s=tick_s)
    except KeyboardInterrupt:
        interrupted(manifest, running)
        raise
