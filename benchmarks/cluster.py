"""Run the benchmarks as shards on a Slurm cluster (or with submitit's local executor) and merge them.

    python -m benchmarks.cluster run runs/smoke-3 --bench-profile smoke --shards 3        # submit, wait, merge
    python -m benchmarks.cluster run runs/paper --bench-profile paper -- benchmarks/test_forgetting.py
    python -m benchmarks.cluster resubmit runs/paper                                      # the failed shards only
    python -m benchmarks.cluster merge runs/paper                                         # -> runs/paper/merged.json
    python -m reports runs/paper/merged.json --out report                                 # the report

`run` splits the benchmark session (default `benchmarks/`, or the pytest arguments after `--`) into pytest-split's
`--splits N` groups, balanced by the profile's recorded durations (`benchmarks/durations/<profile>.json`, see
docs/clusters.md), submits them as one job array through submitit (`unlearning.bench.cluster.launch`) with the
profile's resources (`profiles.Cluster`, each overridable), waits with one progress line per change, and merges
the shards' runs (`unlearning.bench.shards`) into `<folder>/merged.json`. Exit status: 0 every shard passed and the
merge is whole; 1 a shard failed or the merge found a problem (each named; `resubmit` reruns the failed shards, resuming
from their journal); 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearning.bench import shards
from unlearning.bench.cluster.launch import EXECUTORS, FAILED, Manifest, Resources, launch

from .profiles import ENV, PROFILES, get_profile

DURATIONS = Path(__file__).resolve().parent / "durations"
ALGORITHM = "duration_based_chunks"      # consecutive chunks of the collected order: cells that share a model stay


def durations(profile: str) -> Path:
    return DURATIONS / f"{profile}.json"


def pytest_args(profile: str, extra: list[str], algorithm: str = ALGORITHM) -> list[str]:
    """The shards' pytest arguments: the paths (default benchmarks/), the profile, pytest-split's durations and
    algorithm."""
    args = list(extra) or ["benchmarks/"]
    args += ["--bench-profile", profile, "--splitting-algorithm", algorithm]
    if durations(profile).exists():
        args += ["--durations-path", str(durations(profile))]
    return args


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="submit a profile as shards, wait, merge")
    run.add_argument("folder", type=Path, help="the launch folder (new or empty)")
    run.add_argument("--bench-profile", default=None, help=f"{', '.join(PROFILES)} (default: ${ENV} or smoke)")
    run.add_argument("--shards", type=int, default=None, help="number of shards (default: the profile's)")
    run.add_argument("--executor", choices=EXECUTORS, default="auto",
                     help="slurm, local (submitit's, no Slurm) or auto (slurm where sbatch is found)")
    run.add_argument("--cpus", type=int, default=None, help="CPUs per shard (default: the profile's)")
    run.add_argument("--mem-gb", type=float, default=None, help="memory per shard (default: the profile's)")
    run.add_argument("--timeout-min", type=int, default=None, help="wall-time limit per shard (default: the profile's)")
    run.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default)")
    run.add_argument("--parallelism", type=int, default=None, help="shards running at once (default: all)")
    run.add_argument("--algorithm", default=ALGORITHM, help=f"pytest-split's algorithm (default {ALGORITHM})")
    for name, help_ in (("resubmit", "rerun the launch's failed shards, resuming from their journal"),
                        ("merge", "merge a launch folder's shards into <folder>/merged.json"),
                        ("status", "print a launch folder's shards")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("folder", type=Path)
        if name == "resubmit":
            p.add_argument("--force", action="store_true",
                           help="also resubmit shards last seen pending or running (after an interrupted launcher)")
    return ap


def resources(profile, args) -> Resources:
    c = profile.cluster
    return Resources(cpus_per_task=args.cpus or c.cpus_per_task, mem_gb=args.mem_gb or c.mem_gb,
                     timeout_min=args.timeout_min or c.timeout_min, partition=args.partition,
                     parallelism=args.parallelism)


def status(manifest: Manifest) -> list[str]:
    """One line per shard: state, attempts, exit status, wall seconds, node, reason."""
    lines = [f"{manifest.folder}: launch {manifest.launch}, {manifest.splits} shards, {manifest.executor}"]
    for k, s in sorted(manifest.shards.items()):
        secs = f"{s.seconds:.0f} s" if s.seconds is not None else "-"
        lines.append(f"  shard {k}: {s.state} (job {s.job_id}, attempt {s.attempts}, exit {s.returncode}, {secs}"
                     f"{', ' + s.node if s.node else ''}){' · ' + s.reason if s.reason else ''}")
    return lines


def merge(manifest: Manifest) -> int:
    """Merge the launch's shard files into merged.json; print the problems and the duplicated work; the exit code."""
    files = [p for p in manifest.shard_files if p.exists()]
    missing = [p.name for p in manifest.shard_files if not p.exists()]
    out = manifest.folder / "merged.json"
    if not files:
        print(f"benchmarks.cluster: no shard saved a run in {manifest.folder}; nothing merged", file=sys.stderr)
        return 1
    run, problems = shards.merge(files, out)
    dup = run["machine_info"][shards.SHARDS]["duplicated_work"]
    print(f"merged {len(files)} shard file(s), {len(run['benchmarks'])} cells, into {out}; duplicated work "
          f"{dup['seconds']:.1f} s of {dup['built_seconds']:.1f} s of untimed builds ({len(dup['items'])} items "
          "built in more than one shard)")
    for line in [f"{name} not saved" for name in missing] + problems:
        print(f"benchmarks.cluster: {line}", file=sys.stderr)
    return 1 if problems or missing else 0


def missing_extra() -> str | None:
    """Why the launcher cannot run: a package of the `cluster` extra missing (None: both there)."""
    import importlib.util

    absent = [name for name in ("pytest_split", "submitit") if importlib.util.find_spec(name) is None]
    return (f"{', '.join(absent)} not installed: the launcher needs the 'cluster' extra "
            "(pip install -e '.[cluster]')") if absent else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.command in ("run", "resubmit") and (why := missing_extra()):
        print(f"benchmarks.cluster: error: {why}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            profile = get_profile(args.bench_profile)
            manifest = launch(args.folder, args.shards or profile.cluster.shards,
                              pytest_args(profile.name, extra, args.algorithm), executor_kind=args.executor,
                              resources=resources(profile, args))
        elif args.command == "resubmit":
            manifest = launch(args.folder, 0, (), resubmit=True, force=args.force)
        else:
            manifest = Manifest.load(args.folder)
    except ValueError as exc:
        print(f"benchmarks.cluster: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(status(manifest)))
    if args.command == "status":
        return 1 if any(s.state == FAILED for s in manifest.shards.values()) else 0
    return merge(manifest)


if __name__ == "__main__":
    sys.exit(main())
