"""Smoke-profile cells as 3 shards on a real one-node Slurm, beside an unsharded run of the same cells, for
`tests/test_cluster_slurm.py`.

`SmokeOnSlurm.start()` is called when collection ends (`tests/conftest.py`): it starts the local Slurm
(`unlearning.bench.cluster.slurm.LocalSlurm`, ~10 s), then a background thread submits the shards through the launcher
(`unlearning.bench.cluster.launch`, one job array, one shard at a time: one core) and, after them, runs the same
benchmark session unsharded in one process with one thread. The rest of the test suite runs meanwhile on the other
core (it is single-threaded); the check is ordered last and `wait()`s for the thread. `stop()` cancels what is left,
shuts every daemon down and removes the folder.

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
import threading
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
        self._thread: threading.Thread | None = None

    def start(self) -> SmokeOnSlurm:
        if self.skip_reason is not None:
            return self
        try:
            self.cluster = slurm.LocalSlurm(self.folder / "slurm").start()
        except RuntimeError as exc:
            self.skip_reason = f"the local Slurm did not start: {exc}"
            return self
        for key in ("SLURM_CONF", "PATH"):          # sbatch / sacct, called by submitit, read them from here
            os.environ[key] = self.cluster.env[key]
        self._thread = threading.Thread(target=self._run, name="slurm-smoke", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.manifest = launch(self.folder / "sharded", SHARDS, [*RUN, *SPLIT], executor_kind="slurm",
                                   resources=RESOURCES, cwd=ROOT, say=self.lines.append, poll_s=3.0)
            with open(self.reference_log, "wb") as log:
                self.reference_code = subprocess.run(
                    [sys.executable, "-m", "pytest", *RUN, "--benchmark-json", str(self.reference),
                     "--benchmark-storage", str(self.folder / "unsharded-storage"), "-p", "no:cacheprovider"],
                    cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=log, stderr=subprocess.STDOUT,
                    check=False).returncode
        except BaseException as exc:           # handed to the test, which raises it
            self.error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def log_tail(self, path: Path, chars: int = 3000) -> str:
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"({path}: {exc})"

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()        # cancels the jobs first: the thread's wait then sees them end
        if self._thread is not None:
            self._thread.join(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
