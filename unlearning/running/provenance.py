"""What moves the numbers on this machine: the CPU and the instruction set torch dispatches to, the versions of
torch and of the kernel libraries it calls (oneDNN, MKL), numpy, the thread count, the device, and the git tree the
code runs from (commit, uncommitted changes).

The same seeds give bit-identical weights where the CPU type (the ISA torch dispatches to), the torch version and
the thread count agree (`tests/test_reproducibility.py` trains in two fresh processes and compares); elsewhere they
agree only within seed noise: oneDNN and MKL choose their kernels per CPU, so float rounding differs, and the
difference grows with every step (docs/determinism.md).

`collect()` is what a benchmark run saves as `machine_info["provenance"]` (`benchmarks/conftest.py`) and the CLI's
run file as `environment["provenance"]` (`unlearning.running.experiment.environment`); the report reads it from there.
Its keys (`KEYS`) are flat and JSON-safe. The static facts are read once per process (the CPU, the library
versions, the git tree: one `git status` the first time); the thread count and the device are read on each call.

This module imports no torch at load time: the report generator (torch-free) takes `KEY` and `isa_flags` from it.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

KEY = "provenance"            # machine_info["provenance"] (benchmark runs), environment["provenance"] (CLI run files)
CHANGED_SHOWN = 20            # uncommitted paths named (the count says how many there are)
# the key -> what it holds (docs/determinism.md)
KEYS = {
    "cpu_model": "the CPU's model name (/proc/cpuinfo 'model name', else py-cpuinfo's brand, else the platform's)",
    "cpu_vendor": "the CPU's vendor id (GenuineIntel, AuthenticAMD, ...), where known",
    "cpu_signature": "what tells CPUs of one model name apart (a hypervisor may show 'AMD EPYC' for several): x86 "
                     "'family F, model M, stepping S', Arm 'implementer I, part P, variant V'; None where not known",
    "cpu_flags": "the ISA flags the kernels are chosen by (`ISA_FLAG`), as the OS reports them, sorted",
    "cpu_capability": "the ISA torch's own kernels dispatch to (torch.backends.cpu.get_cpu_capability(): AVX2, "
                      "AVX512, DEFAULT, ...)",
    "isa_env": "environment variables set that force or cap an ISA (`ISA_ENV`), by name",
    "torch": "torch.__version__",
    "onednn": "the oneDNN (MKL-DNN) version torch was built with; None without it",
    "mkl": "the MKL version torch was built with; None without it",
    "blas": "the BLAS torch was built with (its BLAS_INFO: mkl, open, accelerate, ...)",
    "numpy": "numpy.__version__",
    "threads": "torch.get_num_threads() when this was read (each record carries the count its model trained with)",
    "device": "the device models run on by default (unlearning.training.models.resolve_device)",
    "device_name": "the CUDA device's name; 'cpu' on a CPU",
    "git_commit": "the commit of the git checkout the code runs from; None when it runs from no checkout",
    "git_dirty": "True when that checkout has uncommitted changes (tracked, or untracked and not ignored); None "
                 "without one",
    "git_changes": "how many paths are uncommitted; None without a checkout",
    "git_changed_paths": f"the first {CHANGED_SHOWN} uncommitted paths, sorted; None without a checkout",
}
# ISA flags that decide which kernels oneDNN, MKL and ATen run (x86: SSE4, AVX*, FMA, F16C, AMX*; Arm: ASIMD,
# SVE*, SME*, BF16, I8MM)
ISA_FLAG = re.compile(r"^(sse4_[12]|avx\w*|fma4?|f16c|amx\w*|asimd\w*|sve\w*|sme(?!p)\w*|bf16|i8mm)$")   # not smep
# environment variables that force or cap the ISA of ATen's, oneDNN's and MKL's kernels, or MKL's reproducibility mode
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")
ROOT = Path(__file__).resolve().parents[2]       # the source checkout, where the package runs from one
GIT_TIMEOUT = 10.0                               # seconds; a git that takes longer gives no tree facts (None)
NO_TREE = {"git_commit": None, "git_dirty": None, "git_changes": None, "git_changed_paths": None}


def isa_flags(flags: Iterable[str] | None) -> list[str]:
    """The flags of `flags` that kernels are chosen by (`ISA_FLAG`), lower-cased, sorted, each once."""
    return sorted({f.lower() for f in flags or () if isinstance(f, str) and ISA_FLAG.match(f.lower())})


# -- the CPU ---------------------------------------------------------------------------------------------------------
# the CPUID fields that make up `cpu_signature`: x86 (/proc/cpuinfo and py-cpuinfo), Arm (/proc/cpuinfo)
SIGNATURES = ((("cpu family", "family"), ("model", "model"), ("stepping", "stepping")),
              (("cpu implementer", "implementer"), ("cpu part", "part"), ("cpu variant", "variant")))


def signature(fields: dict) -> str | None:
    """"family 25, model 1, stepping 1" (x86) or "implementer 0x41, part 0xd0c, variant 0x3" (Arm) from the fields
    of /proc/cpuinfo or py-cpuinfo (lower-case names; py-cpuinfo's are 'family', 'model', 'stepping')."""
    for names in SIGNATURES:
        parts = []
        for proc, short in names:
            value = fields.get(proc, fields.get(short))
            if value is not None and str(value).strip():
                parts.append(f"{short} {str(value).strip()}")
        if parts:
            return ", ".join(parts)
    return None


def _proc_cpuinfo(text: str) -> dict:
    """The first processor's model, vendor, signature and flags from the text of /proc/cpuinfo (x86 'flags', Arm
    'Features')."""
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return {"cpu_model": fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or None,
            "cpu_vendor": fields.get("vendor_id") or fields.get("cpu implementer") or None,
            "cpu_signature": signature({k: v for k, v in fields.items() if k != "model" or v.isdigit()}),
            "cpu_flags": isa_flags((fields.get("flags") or fields.get("features") or "").split())}


def _py_cpuinfo() -> dict | None:
    """The same from py-cpuinfo (installed with pytest-benchmark), where it is installed; it takes ~0.2 s."""
    try:
        import cpuinfo
        info = cpuinfo.get_cpu_info()
    except Exception:            # not installed, or it failed on this platform: the caller falls back
        return None
    return {"cpu_model": info.get("brand_raw") or None, "cpu_vendor": info.get("vendor_id_raw") or None,
            "cpu_signature": signature(info), "cpu_flags": isa_flags(info.get("flags"))}


@functools.cache
def cpu() -> dict:
    """This machine's CPU: model, vendor and ISA flags (read once per process)."""
    try:
        found = _proc_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:              # not Linux
        found = None
    if not found or not found["cpu_model"]:
        found = _py_cpuinfo() or found or {"cpu_model": None, "cpu_vendor": None, "cpu_signature": None,
                                           "cpu_flags": []}
    return {**found, "cpu_model": found["cpu_model"] or platform.processor() or platform.machine() or None}


# -- torch and its libraries -----------------------------------------------------------------------------------------
def _version(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


def build_versions(config: str) -> dict:
    """oneDNN, MKL and BLAS of torch's build, from the text of `torch.__config__.show()` (None for what it lacks)."""
    return {"onednn": _version(r"(?:oneDNN|MKL-DNN)\s+v?(\d[\w.]*)", config),
            "mkl": _version(r"Math Kernel Library Version\s+(\d[\w.]*)", config),
            "blas": _version(r"BLAS_INFO=(\w+)", config)}


@functools.cache
def libraries() -> dict:
    """torch's version and dispatched ISA, the libraries it was built with, numpy's version (once per process)."""
    import numpy
    import torch

    try:
        shown = torch.__config__.show()
    except Exception:            # a build that cannot describe itself: the versions are unknown, not a failure
        shown = ""
    versions = build_versions(shown)
    if not torch.backends.mkldnn.is_available():
        versions["onednn"] = None
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__, **versions,
            "numpy": numpy.__version__}


# -- the git tree ----------------------------------------------------------------------------------------------------
def _changed_path(entry: str) -> str | None:
    """The path of one `git status --porcelain=v2` entry (None for a header line)."""
    kind = entry[:1]
    fields = {"1": 8, "2": 9, "u": 10}         # space-separated fields before the path (porcelain v2)
    if kind in fields:
        return entry.split(" ", fields[kind])[-1]
    return entry[2:] if kind == "?" else None


def parse_status(out: str) -> dict:
    """Commit and uncommitted paths from `git status --porcelain=v2 --branch -z` output."""
    entries, commit, changed = iter(out.split("\0")), None, []
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            commit = oid if re.fullmatch(r"[0-9a-f]{40,64}", oid) else None      # "(initial)": no commit yet
        elif (path := _changed_path(entry)) is not None:
            changed.append(path)
            if entry.startswith("2 "):
                next(entries, None)            # a rename's original path follows as its own entry
    changed.sort()
    return {"git_commit": commit, "git_dirty": bool(changed), "git_changes": len(changed),
            "git_changed_paths": changed[:CHANGED_SHOWN]}


def git_state(root: Path | str) -> dict:
    """The commit of the git checkout at `root` and its uncommitted changes (`NO_TREE`, all None, when `root` is no
    checkout's top folder, git is missing, refuses or takes over `GIT_TIMEOUT`). One `git status`; it takes no
    index lock (`--no-optional-locks`), so it never blocks a commit running beside it."""
    root = Path(root)
    if not (root / ".git").exists():            # a folder, or a file for worktrees and submodules
        return dict(NO_TREE)
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        res = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain=v2", "--branch",
                              "-z", "--untracked-files=normal"], capture_output=True, text=True, env=env,
                             timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return dict(NO_TREE)
    return parse_status(res.stdout) if res.returncode == 0 else dict(NO_TREE)


@functools.cache
def tree() -> dict:
    """`git_state` of the checkout this package runs from, read once per process (the first call: call it when a
    run starts, so later edits to the tree are not taken for the code that ran)."""
    return git_state(ROOT)


# -- everything ------------------------------------------------------------------------------------------------------
def _device(device) -> tuple[str, str]:
    import torch

    from ..training.models import resolve_device

    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return str(dev), name


def collect(device=None) -> dict:
    """Every fact of `KEYS`, for this process now (`device`: as `resolve_device` takes it; None: the default)."""
    import torch

    dev, name = _device(device)
    facts = {**cpu(), **libraries(), "isa_env": {k: os.environ[k] for k in ISA_ENV if os.environ.get(k)},
             "threads": torch.get_num_threads(), "device": dev, "device_name": name, **tree()}
    return {k: facts[k] for k in KEYS}
