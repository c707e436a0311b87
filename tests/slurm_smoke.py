"""Smoke-profile cells as 3 shards on a real one-node Slurm, beside an unsharded run of the same cells, for
`tests/test_cluster_slurm.py`.

`SmokeOnSlurm.start()` is called when collection ends (`tests/conftest.py`): it starts the local Slurm
(`unlearning.bench.cluster.slurm.LocalSlurm`, ~10 s), then a child process (this file run as a script) submits the
shards through the launcher (`unlearning.bench.cluster.launch`, one job array, one shard at a time: one core) and, after
them, runs the same benchmark session unsharded in one process with one thread. The rest of the test suite runs
meanwhile on the other core (it is single-threaded); the check is ordered last and `wait()`s for the child. `stop()`
cancels what is left, shuts every daemon down and removes the folder.

The child gets the environment as it was when collection ended, not the test process's own: tests monkeypatch
`UNLEARNING_DATA_DIR` and friends while they run, and a thread that read `os.environ` (for sbatch, or for the
unsharded run) at such a moment gave that run no data, so its California cells skipped while the shards' ran (CI,
stop 37).

The cells (`CELLS`): the smoke profile's forgetting, paper 000 and verdict cells without MNIST, ~42 s of recorded
cell time (benchmarks/durations/smoke.json) of the profile's 109 s. They hold every kind of shard content the check
needs: a lab's originals and oracles, forgetting panels whose main and sweep cells `shard_group` keeps together,
the verdict's simulations, cells cut between shards by pytest-split's duration-based chunks. The whole smoke
profile on Slurm (and again unsharded, for the comparison) cost CI 12 min 48 s, beside the in-process benchmark
session that runs those cells anyway; the excluded modules add no kind of content: MNIST's cells train the same
lab objects on a ConvNet (slower, not different for the merge), `test_grid.py` and the paper 002 module are
lab cells like paper 000's, and `test_threads.py` / `test_overhead.py` hold timings only (nothing to compare).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from unlearning.bench.cluster import slurm
from unlearning.bench.cluster.launch import Manifest, Resources, launch

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 3
CELLS = ("benchmarks/test_forgetting.py", "benchmarks/test_paper000_weight_pruning.py", "benchmarks/test_verdict.py",
         "-k", "not mnist")
RUN = (*CELLS, "--bench-profile", "smoke")
SPLIT = ("--splitting-algorithm", "duration_based_chunks", "--durations-path",
         str(ROOT / "benchmarks" / "durations" / "smoke.json"))
RESOURCES = Resources(cpus_per_task=1, mem_gb=3.0, timeout_min=30, parallelism=1)


PROGRESS = "progress.txt"     # the launcher's lines, one per line
REFERENCE_CODE = "unsharded.rc"


class SmokeOnSlurm:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="slurm-smoke-"))
        self.cluster: slurm.LocalSlurm | None = None
        self.skip_reason = slurm.missing()
        self.error: BaseException | None = None
        self.manifest: Manifest | None = None
        self.lines: list[str] = []
        self.reference = self.folder / "unsharded.json"
        self.reference_log = self.folder / "unsharded.log"
        self.reference_code: int | None = None
        self.driver_log = self.folder / "driver.log"
        self._child: subprocess.Popen | None = None

    def start(self) -> SmokeOnSlurm:
        if self.skip_reason is not None:
            return self
        try:
            self.cluster = slurm.LocalSlurm(self.folder / "slurm").start()
        except RuntimeError as exc:
            self.skip_reason = f"the local Slurm did not start: {exc}"
            return self
        env = dict(self.cluster.env)     # now, before any test patches the environment; sbatch / sacct read it
        with open(self.driver_log, "wb") as log:
            self._child = subprocess.Popen([sys.executable, __file__, str(self.folder)], cwd=ROOT, env=env,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self) -> None:
        if self._child is None:
            return
        code = self._child.wait()
        progress = self.folder / PROGRESS
        self.lines = progress.read_text().splitlines() if progress.exists() else []
        try:
            self.manifest = Manifest.load(self.folder / "sharded")
            self.reference_code = int((self.folder / REFERENCE_CODE).read_text())
        except (OSError, ValueError) as exc:
            self.error = RuntimeError(f"the sharded smoke driver ended with {code} before its results were written "
                                      f"({exc}); its log: {self.log_tail(self.driver_log)}")

    def log_tail(self, path: Path, chars: int = 3000) -> str:
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"({path}: {exc})"

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()        # cancels the jobs first: the driver's wait then sees them end
        if self._child is not None:
            try:
                self._child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def drive(folder: Path) -> None:
    """The child's work: the shards on Slurm, then the unsharded run; what the test reads goes to files in `folder`."""
    with open(folder / PROGRESS, "a", encoding="utf-8") as progress:
        def say(line: str) -> None:
            progress.write(line + "\n")
            progress.flush()

        launch(folder / "sharded", SHARDS, [*RUN, *SPLIT], executor_kind="slurm", resources=RESOURCES, cwd=ROOT,
               say=say, poll_s=3.0)
    with open(folder / "unsharded.log", "wb") as log:
        code = subprocess.run(
            [sys.executable, "-m", "pytest", *RUN, "--benchmark-json", str(folder / "unsharded.json"),
             "--benchmark-storage", str(folder / "unsharded-storage"), "-p", "no:cacheprovider"],
            cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=log, stderr=subprocess.STDOUT,
            check=False).returncode
    (folder / REFERENCE_CODE).write_text(str(code))


if __name__ == "__main__":
    drive(Path(sys.argv[1]))
