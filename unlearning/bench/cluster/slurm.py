"""A real one-node Slurm cluster on localhost, for tests and for trying the launcher on one machine.

`LocalSlurm(folder)` starts, as root, Debian's daemons with every file of theirs in `folder` (nothing in /etc, /run
or /var is touched): `munged` (its own key and socket), MariaDB (`mariadbd`, no networking: its socket only) holding
the accounting database of `slurmdbd`, then `slurmctld` and `slurmd` for one node of this machine's CPUs and 90 % of
its memory, in one partition. Accounting is not optional here: submitit reads its jobs' states with `sacct`, which
answers only with `slurmdbd` behind it (without, every job stays UNKNOWN and a shard killed by Slurm is never seen
to end). `stop()` shuts every daemon down and waits for it; the context manager does both.

Slurm settings that make it work on one container-like machine: `ProctrackType=proctrack/linuxproc` and
`TaskPlugin=task/none` (no cgroups), `SelectTypeParameters=CR_CPU` (a shard's `--cpus-per-task` is counted against
the node's CPUs), the controller and the node at 127.0.0.1 on free ports. `task/none` pins nothing: a shard's
thread count comes from `$SLURM_CPUS_PER_TASK` (`unlearning.training.threads.budget`).

Packages (Debian): slurm-wlm, slurmdbd, munge, mariadb-server; `.ci/run` installs them. `missing()` says what is
not there (not root, a daemon's binary absent), so that a test can skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CLUSTER = "unlearning"
PARTITION = "local"
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
DAEMONS = ("munged", "mungekey", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sacctmgr",
           "sinfo", "scontrol")
START_SECONDS = 60.0          # the whole start; the bound, "in under a minute"
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def missing() -> str | None:
    """Why a local Slurm cannot start here (None: it can): not root, or a daemon's binary missing."""
    if os.geteuid() != 0:
        return "starting Slurm's daemons needs root (slurmd runs jobs as their user)"
    absent = [d for d in DAEMONS if _which(d) is None]
    if absent:
        return (f"{', '.join(absent)} not installed (Debian: apt-get install {' '.join(PACKAGES)}; "
                ".ci/run does this)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.9)
    return 1024


class LocalSlurm:
    """A one-node Slurm in `folder` (created; its old state is removed). `env` is what a client needs:
    `SLURM_CONF` (and PATH with the sbin folders)."""

    def __init__(self, folder: Path, cpus: int | None = None, memory_mb: int | None = None):
        self.folder = Path(folder).absolute()
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or _memory_mb()
        self.node = socket.gethostname().split(".")[0]
        self.ports = {"ctld": _free_port(), "slurmd": _free_port(), "dbd": _free_port()}
        self._db: subprocess.Popen | None = None
        self.started: list[str] = []

    # -- files ------------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "")
        extra = [p for p in SBIN if p not in path.split(os.pathsep)]
        return {**os.environ, "SLURM_CONF": str(self.path("slurm.conf")),
                "MYSQL_UNIX_PORT": str(self.path("mysql.sock")), "PATH": os.pathsep.join([path, *extra])}

    def slurm_conf(self) -> str:
        p, munge = self.path, self.path("munge.socket")
        return "\n".join([
            f"ClusterName={CLUSTER}", f"SlurmctldHost={self.node}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={munge}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/backfill",
            "MpiDefault=none", "ReturnToService=2", "JobAcctGatherType=jobacct_gather/linux",
            "AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=localhost",
            f"AccountingStoragePort={self.ports['dbd']}", f"AccountingStoragePass={munge}",
            f"StateSaveLocation={p('state')}", f"SlurmdSpoolDir={p('spool')}",
            f"SlurmctldPidFile={p('slurmctld.pid')}", f"SlurmdPidFile={p('slurmd.pid')}",
            f"SlurmctldLogFile={p('slurmctld.log')}", f"SlurmdLogFile={p('slurmd.log')}",
            f"SlurmctldPort={self.ports['ctld']}", f"SlurmdPort={self.ports['slurmd']}",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])

    def slurmdbd_conf(self) -> str:
        p = self.path
        return "\n".join([
            "AuthType=auth/munge", f"AuthInfo=socket={p('munge.socket')}", "DbdHost=localhost", "DbdAddr=127.0.0.1",
            f"DbdPort={self.ports['dbd']}", "SlurmUser=root", f"PidFile={p('slurmdbd.pid')}",
            f"LogFile={p('slurmdbd.log')}", "StorageType=accounting_storage/mysql", "StorageHost=localhost",
            "StorageUser=root", "StorageLoc=slurm_acct_db", ""])

    def _write(self) -> None:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        for sub in ("state", "spool", "db"):
            self.path(sub).mkdir(parents=True)
        self.path("slurm.conf").write_text(self.slurm_conf())
        dbd = self.path("slurmdbd.conf")          # slurmdbd reads it beside slurm.conf and wants it private
        dbd.write_text(self.slurmdbd_conf())
        dbd.chmod(0o600)

    # -- daemons ----------------------------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([_which(args[0]) or args[0], *args[1:]], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def _must(self, *args: str) -> None:
        done = self._run(*args)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}"
                               f"; logs in {self.folder}")

    def _until(self, what: str, ready, deadline: float) -> None:
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"local Slurm: {what} not ready within {START_SECONDS:.0f} s; logs in {self.folder}")
            time.sleep(0.2)

    def _munge(self) -> None:
        p = self.path
        self._must("mungekey", "--create", f"--keyfile={p('munge.key')}")
        self._must("munged", "--force", f"--socket={p('munge.socket')}", f"--key-file={p('munge.key')}",
                   f"--pid-file={p('munged.pid')}", f"--log-file={p('munged.log')}", f"--seed-file={p('munge.seed')}")
        self.started.append("munged")

    def _mariadb(self, deadline: float) -> None:
        p = self.path
        self._must("mariadb-install-db", "--no-defaults", f"--datadir={p('db')}", "--skip-test-db", "--user=root",
                   "--auth-root-authentication-method=socket")
        with open(p("mariadb.log"), "ab") as log:
            self._db = subprocess.Popen(
                [_which("mariadbd"), "--no-defaults", f"--datadir={p('db')}", f"--socket={p('mysql.sock')}",
                 "--skip-networking", "--user=root", f"--pid-file={p('mariadb.pid')}"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.started.append("mariadbd")
        self._until("MariaDB", lambda: p("mysql.sock").exists() or self._db.poll() is not None, deadline)
        if self._db.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({self._db.returncode}); see {p('mariadb.log')}")

    def _slurm(self, deadline: float) -> None:
        self._must("slurmdbd")
        self.started.append("slurmdbd")
        self._until("slurmdbd", lambda: self._run("sacctmgr", "-i", "add", "cluster", CLUSTER).returncode == 0,
                    deadline)
        self._must("slurmctld")
        self.started.append("slurmctld")
        self._must("slurmd")
        self.started.append("slurmd")
        self._until("the node", lambda: self._run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle", deadline)

    def start(self) -> LocalSlurm:
        """Write the configuration and start every daemon (RuntimeError naming the one that failed and where its
        log is; what started is stopped again)."""
        reason = missing()
        if reason:
            raise RuntimeError(f"local Slurm cannot start: {reason}")
        deadline = time.monotonic() + START_SECONDS
        self._write()
        try:
            self._munge()
            self._mariadb(deadline)
            self._slurm(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _pid(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.path(name).read_text().split()[0])
        return None

    def _kill(self, pidfile: str, timeout: float = 15.0) -> None:
        pid = self._pid(pidfile)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                os.kill(pid, 0)           # ProcessLookupError once it is gone
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld, slurmdbd, MariaDB and munged (each waited for)."""
        if {"slurmctld", "slurmd"} & set(self.started):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._run("scancel", "--full", "--user=root", timeout=10)
        for pidfile in ("slurmd.pid", "slurmctld.pid", "slurmdbd.pid"):
            self._kill(pidfile)
        if self._db is not None and self._db.poll() is None:
            self._db.terminate()
            try:
                self._db.wait(15)
            except subprocess.TimeoutExpired:
                self._db.kill()
                self._db.wait()
        elif self._db is None:                   # started by another process (`python -m ... start`)
            self._kill("mariadb.pid")
        self._kill("munged.pid")
        self.started.clear()

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m unlearning.bench.cluster.slurm start|stop FOLDER`: a one-node Slurm on localhost for trying the
    launcher (`start` prints the `export SLURM_CONF=...` its clients need); `stop` shuts down what `start` left
    running."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m unlearning.bench.cluster.slurm", description=main.__doc__)
    ap.add_argument("action", choices=("start", "stop"))
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cpus", type=int, default=None, help="the node's CPUs (default: this machine's)")
    args = ap.parse_args(argv)
    cluster = LocalSlurm(args.folder, cpus=args.cpus)
    try:
        if args.action == "start":
            cluster.start()
            print(f"export SLURM_CONF={cluster.path('slurm.conf')}")
        else:
            cluster.stop()
    except RuntimeError as exc:
        print(f"unlearning.bench.cluster.slurm: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
