"""Reproducibility (issue 20, item 6): the same seeds give bit-identical weights in fresh processes on one machine;
records carry what moves the numbers (`unlearning.running.provenance`); the report names runs made from a dirty tree and
every table whose records mix CPU types or torch versions (`unlearning.bench.report.machines`).

The determinism test trains with the library's own entry points (`get_config`, `load_dataset`, `train_original`,
under the thread policy as `run_trial` does) in two fresh interpreters, each with its own PYTHONHASHSEED, and
compares every tensor of the state dicts with `torch.equal` (the max |difference| is named where one differs):
digits (embedded), a California subset and an MNIST subset (both from `$UNLEARNING_DATA_DIR`, else skipped with
the reason).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearning.data import DataUnavailableError, california, mnist
from unlearning.data.fetch import fetch, find_local
from unlearning.running import provenance
from unlearning.running.experiment import environment

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = os.environ.get("UNLEARNING_DATA_DIR") or None
COMMITTED = ROOT / "reports" / "runs"
# the lr sweep of 2026-11-29 (27 records: 9 lrs x 3 seeds, paper profile), once in the committed report: made from a
# dirty tree, on an Intel CPU, before provenance was saved
SWEEP = ROOT / "tests" / "data" / "runs_v2" / "0016_paper-lr-sweep.json"
# what each fresh process trains: loader options, a training subset (None: all rows), the epoch cap
TRAININGS = {
    "digits": {"loader": {}, "n_train": None, "epochs": 10},                            # 1,438 rows, 450 Adam steps
    "california": {"loader": {}, "n_train": 512, "epochs": 10},                         # 160 Adam steps
    "mnist": {"loader": {"train_size": 512, "test_size": 64}, "n_train": None, "epochs": 1},   # 8 AdaDelta steps
}
FILES = {"digits": [], "california": [california.FILE], "mnist": list(mnist.FILES.values())}
CHILD = """
import json, sys
import torch
from unlearning.running import provenance
from unlearning.training import threads
from unlearning import get_config
from unlearning.data.registry import load_dataset
from unlearning.training.train import train_original

plan, out = json.loads(sys.argv[1]), sys.argv[2]
result = {}
for name, how in plan.items():
    with threads.policy(name):                   # the thread count run_trial would train with
        data = load_dataset(name, seed=0, **how["loader"])
        if how["n_train"]:
            data = data.subset(n_train=how["n_train"], seed=0)
        config = get_config(name, seed=0, device="cpu").with_epoch_cap(how["epochs"])
        trained = train_original(data, config)
        result[name] = {"state": trained.model.state_dict(), "init": trained.init_state,
                        "epochs": trained.record.epochs, "steps": trained.record.steps,
                        "losses": trained.record.loss_history, "threads": torch.get_num_threads()}
result["provenance"] = provenance.collect("cpu")
torch.save(result, out)
"""


def _unavailable(name: str) -> str | None:
    """Why dataset `name`'s files cannot be read here without a download (None: they can)."""
    try:
        for spec in FILES[name]:
            if find_local(spec, DATA_DIR) is None:
                fetch(spec, DATA_DIR, allow_download=False)     # a verified cached copy, else it raises the reason
    except DataUnavailableError as err:
        return (f"real {name} data not available locally (on the project's machines: "
                f"UNLEARNING_DATA_DIR=/work/shared/datasets): {err}")
    return None


def _start(plan: dict, out: Path, hash_seed: str) -> subprocess.Popen:
    """A fresh interpreter training `plan` (see CHILD) into `out`, with its own PYTHONHASHSEED; never downloads."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "UNLEARNING_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(plan), str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, out: Path) -> dict:
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 0, f"the training process failed (exit {proc.returncode}):\n{err[-4000:]}"
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The same trainings in two fresh processes, run side by side (one thread each on the test machine):
    (first, second, why each skipped dataset is missing)."""
    missing = {name: why for name in TRAININGS if (why := _unavailable(name))}
    plan = {name: how for name, how in TRAININGS.items() if name not in missing}
    folder = tmp_path_factory.mktemp("reproducibility")
    outs = [folder / "a.pt", folder / "b.pt"]
    procs = [_start(plan, out, seed) for out, seed in zip(outs, ("1", "2"), strict=True)]
    first, second = (_finish(p, out) for p, out in zip(procs, outs, strict=True))
    return first, second, missing


def differences(a: dict, b: dict) -> list[str]:
    """Every tensor of two state dicts that is not bit-identical, with its max |difference|."""
    assert a.keys() == b.keys()
    return [f"{k}: max |diff| {float((a[k].double() - b[k].double()).abs().max()):.3g}"
            for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("name", list(TRAININGS))
def test_the_same_seed_trains_bit_identical_weights_in_two_fresh_processes(two_processes, name):
    first, second, missing = two_processes
    if name in missing:
        pytest.skip(missing[name])
    a, b = first[name], second[name]
    assert a["epochs"] == TRAININGS[name]["epochs"] and a["steps"] > 0
    assert (a["epochs"], a["steps"], a["threads"]) == (b["epochs"], b["steps"], b["threads"])
    assert differences(a["init"], b["init"]) == []
    assert differences(a["state"], b["state"]) == [], f"{name}: weights differ between two fresh processes"
    assert a["losses"] == b["losses"]
    same = [k for k in provenance.KEYS if not k.startswith("git_")]       # (colleagues may edit the tree meanwhile)
    assert {k: first["provenance"][k] for k in same} == {k: second["provenance"][k] for k in same}


def test_differences_names_each_tensor_that_differs_with_its_largest_gap():
    a = {"w": torch.zeros(3), "b": torch.ones(2)}
    b = {"w": torch.tensor([0.0, 1e-6, -3e-3]), "b": torch.ones(2)}
    assert differences(a, b) == ["w: max |diff| 0.003"]


# -- provenance ------------------------------------------------------------------------------------------------------
def test_provenance_has_every_key_with_its_type():
    facts = provenance.collect()
    assert list(facts) == list(provenance.KEYS)
    json.dumps(facts)                                            # flat and JSON-safe
    for key in ("cpu_model", "cpu_capability", "torch", "numpy", "device", "device_name"):
        assert isinstance(facts[key], str) and facts[key], key
    assert facts["torch"] == torch.__version__ and facts["threads"] == torch.get_num_threads()
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(facts["cpu_flags"], list) and facts["cpu_flags"] == provenance.isa_flags(facts["cpu_flags"])
    assert all(isinstance(v, str) or v is None for v in (facts["onednn"], facts["mkl"], facts["blas"],
                                                           facts["cpu_vendor"], facts["cpu_signature"]))
    assert facts["onednn"] is None or facts["onednn"][0].isdigit()
    assert isinstance(facts["isa_env"], dict)
    assert facts["git_dirty"] in (True, False, None) and (facts["git_commit"] is None) == (facts["git_dirty"] is None)


def test_provenance_reads_threads_and_isa_variables_at_each_call(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        facts = provenance.collect()
    finally:
        torch.set_num_threads(before)
    assert facts["isa_env"] == {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    assert facts["threads"] == 1


def test_the_cli_run_file_carries_provenance():
    env = environment()
    assert set(env[provenance.KEY]) == set(provenance.KEYS) and env["torch"] == env[provenance.KEY]["torch"]


X86 = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma smep avx512f avx512_bf16 amx_tile amx_bf16 avx_vnni f16c

processor\t: 1
model name\t: another
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes sha1 sve sve2 bf16 i8mm asimddp
CPU implementer\t: 0x41
CPU variant\t: 0x0
CPU part\t: 0xd4f
"""


def test_cpuinfo_of_x86_and_arm_gives_model_signature_and_the_isa_flags_that_matter():
    x86 = provenance._proc_cpuinfo(X86)
    assert x86 == {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "cpu_vendor": "GenuineIntel",
                   "cpu_signature": "family 6, model 143, stepping 8",
                   "cpu_flags": ["amx_bf16", "amx_tile", "avx", "avx2", "avx512_bf16", "avx512f", "avx_vnni", "f16c",
                                 "fma", "sse4_1", "sse4_2"]}         # smep is a security feature, not an ISA
    arm = provenance._proc_cpuinfo(ARM)
    assert arm["cpu_flags"] == ["asimd", "asimddp", "bf16", "i8mm", "sve", "sve2"]
    assert arm["cpu_signature"] == "implementer 0x41, part 0xd4f, variant 0x0" and arm["cpu_vendor"] == "0x41"
    # py-cpuinfo's fields (what older runs' machine_info.cpu holds) give the same signature
    assert provenance.signature({"family": 6, "model": 143, "stepping": 8}) == "family 6, model 143, stepping 8"
    assert provenance.signature({}) is None


def test_build_versions_from_torch_config_text():
    text = ("  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64\n"
            "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release")
    assert provenance.build_versions(text) == {"onednn": "3.12.0", "mkl": "2024.2", "blas": "mkl"}
    arm = "  - oneDNN v3.7.1 (Git Hash 8d263e6)\n  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release"
    assert provenance.build_versions(arm) == {"onednn": "3.7.1", "mkl": None, "blas": "open"}
    assert provenance.build_versions("") == {"onednn": None, "mkl": None, "blas": None}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=m",
                           *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_of_a_fresh_repository_its_commits_and_changes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert provenance.git_state(repo) == provenance.NO_TREE                  # not a checkout: all None
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    state = provenance.git_state(repo)
    assert state == {"git_commit": None, "git_dirty": True, "git_changes": 1, "git_changed_paths": ["a.py"]}
    (repo / "b c.py").write_text("y = 2\n")                                 # a space in the name
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    clean = provenance.git_state(repo)
    assert clean == {"git_commit": _git(repo, "rev-parse", "HEAD"), "git_dirty": False, "git_changes": 0,
                     "git_changed_paths": []}
    (repo / "a.py").write_text("x = 3\n")                                   # modified
    _git(repo, "mv", "b c.py", "d.py")                                       # renamed (two paths in the entry)
    (repo / ".gitignore").write_text("*.log\n")                              # untracked
    (repo / "run.log").write_text("ignored\n")                               # ignored: no change
    dirty = provenance.git_state(repo)
    assert dirty["git_commit"] == clean["git_commit"] and dirty["git_dirty"] is True
    assert dirty["git_changed_paths"] == [".gitignore", "a.py", "d.py"] and dirty["git_changes"] == 3


def test_git_state_never_fails(tmp_path, monkeypatch):
    broken, ok = tmp_path / "broken", tmp_path / "ok"
    broken.mkdir()
    (broken / ".git").write_text("gitdir: /nowhere\n")                      # a broken worktree link: git refuses
    assert provenance.git_state(broken) == provenance.NO_TREE
    _git(tmp_path, "init", "-q", "ok")
    assert provenance.git_state(ok)["git_dirty"] is False
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))                     # no git at all
    assert provenance.git_state(ok) == provenance.NO_TREE


def test_git_state_of_this_checkout_matches_git():
    if not (ROOT / ".git").exists():
        pytest.skip("the suite does not run from a git checkout")
    assert provenance.ROOT == ROOT                    # the package's own idea of its checkout (its depth in it)
    state = provenance.tree()
    assert state["git_commit"] == _git(ROOT, "rev-parse", "HEAD")
    porcelain = _git(ROOT, "status", "--porcelain", "--untracked-files=normal")
    assert state["git_dirty"] == bool(porcelain)


# -- the report ------------------------------------------------------------------------------------------------------
pd = pytest.importorskip("pandas", reason="the report generator needs the `report` extra: pip install -e '.[report]'")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

from unlearning.bench.report import machines  # noqa: E402
from unlearning.bench.report.cli import main  # noqa: E402
from unlearning.bench.report.load import load  # noqa: E402


def sweep() -> dict:
    """The old lr-sweep run (`SWEEP`), made from a dirty tree without provenance (saved before it was recorded)."""
    return json.loads(SWEEP.read_text())


def split(run: dict, second, datetime: str = "2026-12-01T10:00:00.000000+00:00") -> tuple[dict, dict]:
    """Two runs from one: the records `second(extra_info)` picks go to a later run; the rest stay."""
    a, b = copy.deepcopy(run), copy.deepcopy(run)
    a["benchmarks"] = [x for x in run["benchmarks"] if not second(x["extra_info"])]
    b["benchmarks"] = [x for x in run["benchmarks"] if second(x["extra_info"])]
    b["datetime"] = datetime
    return a, b


def with_provenance(run: dict, **facts) -> dict:
    """`run` with a machine_info.provenance as `unlearning.running.provenance.collect` writes it, `facts` changed."""
    out = copy.deepcopy(run)
    out["machine_info"]["provenance"] = {**provenance.collect("cpu"), **facts}
    return out


def save(folder: Path, name: str, run: dict) -> str:
    path = folder / name
    path.write_text(json.dumps(run), encoding="utf-8")
    return str(path)


def test_runs_without_provenance_load_from_machine_info_cpu(tmp_path):
    intel_run, amd_run = split(sweep(), lambda info: info["seed"] == 2)    # the third seeds as if made on AMD
    amd_run["machine_info"]["cpu"].update(brand_raw="AMD EPYC", vendor_id_raw="AuthenticAMD", family=26, model=2,
                                          flags=[f for f in amd_run["machine_info"]["cpu"]["flags"] if "amx" not in f])
    loaded = load([save(tmp_path, "intel.json", intel_run), save(tmp_path, "amd.json", amd_run)])
    by_name = {r.name: r for r in loaded.runs}
    intel, amd = by_name["intel.json"], by_name["amd.json"]
    assert amd.cpu_type == "AMD EPYC (family 26, model 2, stepping 1)"
    assert intel.cpu_type == "Intel(R) Xeon(R) Processor (family 6, model 167, stepping 1)"
    assert "amx_tile" in intel.cpu_flags and "amx_tile" not in amd.cpu_flags
    assert amd.cpu_capability is None and amd.kernels == intel.kernels == "not recorded"
    assert sorted(r.name for r in loaded.dirty) == ["amd.json", "intel.json"]


def test_the_committed_report_is_one_clean_release_run():
    loaded = load([str(COMMITTED)])
    [run] = loaded.runs                                  # one release run (python -m benchmarks.release)
    assert run.name.startswith("release-") and run.name.endswith("-paper.json")
    assert run.cpu_capability and run.kernels != "not recorded"
    assert loaded.dirty == [] and loaded.mixed == []     # one commit, one machine


def test_a_dirty_run_is_named_with_its_changed_paths_and_a_clean_one_is_not(tmp_path, capsys):
    clean, changed = split(sweep(), lambda info: info["seed"] == 2)
    clean["commit_info"]["dirty"] = False
    clean = with_provenance(clean, git_dirty=False, git_changes=0, git_changed_paths=[])
    # pytest-benchmark's `git describe --dirty` misses untracked files; provenance's git status does not
    changed["commit_info"]["dirty"] = False
    changed = with_provenance(changed, git_dirty=True, git_changes=23,
                              git_changed_paths=[f"unlearning/m{i:02}.py" for i in range(20)])
    a, b = save(tmp_path, "clean.json", clean), save(tmp_path, "changed.json", changed)
    out = tmp_path / "report"
    rc = main([a, b, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err                                        # used: a dirty run is named, never skipped
    assert f"reports: warning: made from a dirty tree (uncommitted changes): {b}; provenance.md names them" in err
    readme = (out / "README.md").read_text()
    head, provenance_section = readme.split("## The papers' numbers")[0], (out / "provenance.md").read_text()
    assert f"**Made from a dirty tree** (uncommitted changes): `{b}`." in head
    commit = changed["commit_info"]["id"][:12]
    assert (f"- `{b}`: commit {commit}, dirty by provenance.git_dirty; 23 uncommitted paths: unlearning/m00.py, "
            f"unlearning/m01.py") in provenance_section
    assert "unlearning/m19.py and 3 more" in provenance_section
    assert f"`{a}`:" not in provenance_section and a not in head
    one_cpu = "Every group of records (a paper's table on one dataset) comes from runs of one CPU type"
    assert one_cpu in provenance_section


def test_an_old_dirty_run_is_named_by_commit_info():
    loaded = load([str(SWEEP)])
    [line] = machines.dirty_lines(loaded.runs)
    assert line == (f"`{SWEEP}`: commit 0cbba485f3e9, dirty by commit_info.dirty; "
                    "which paths were uncommitted is not recorded")


def test_cells_averaging_runs_of_different_cpu_types_are_named(tmp_path, capsys):
    intel, amd = split(sweep(), lambda info: info["seed"] == 2)           # each lr's third seed on another CPU
    amd["machine_info"]["cpu"].update(brand_raw="AMD EPYC", vendor_id_raw="AuthenticAMD", family=25, model=1)
    a, b = save(tmp_path, "intel.json", intel), save(tmp_path, "amd.json", amd)
    out = tmp_path / "report"
    rc = main([a, b, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    what = (f"CPU type (AMD EPYC (family 25, model 1, stepping 1): {b}; Intel(R) Xeon(R) Processor (family 6, model "
            f"167, stepping 1): {a})")
    note = (f"paper 002 table lr_sweep, mnist: 9 cells average records of runs that differ in {what}: "
            "`test_lr_sweep[mnist-relabel-adadelta-0.001-n600]`, ")
    assert f"reports: warning: records of different CPU types or torch versions meet in {note}" in err
    assert "and 4 more" in err                                 # 5 cells named, the other 4 counted
    readme = (out / "README.md").read_text()
    assert ("**Mixed machines:** 1 group of records averages or compares runs of different CPU types or torch "
            "versions") in readme.split("## The papers' numbers")[0]
    assert f"- {note}" in (out / "provenance.md").read_text()
    # the table still averages the three seeds: the note says what they mix
    assert set(pd.read_csv(out / "paper002_lr_sweep.csv")["n"]) == {3}


def test_a_table_whose_cells_each_come_from_one_cpu_but_whose_rows_compare_two_is_named(tmp_path):
    one, other = split(sweep(), lambda info: info["lr"] == 1e-3)          # one lr (all its seeds) on another CPU
    other = with_provenance(other, cpu_model="Intel(R) Xeon(R) Processor", cpu_signature="family 6, model 167, "
                            "stepping 1", cpu_capability="AVX512")
    one = with_provenance(one, cpu_model="Intel(R) Xeon(R) Processor", cpu_signature="family 6, model 167, "
                          "stepping 1", cpu_capability="AVX2")               # the same CPU, torch forced to AVX2
    loaded = load([save(tmp_path, "one.json", one), save(tmp_path, "other.json", other)])
    [mixed] = loaded.mixed
    assert mixed.cells == [] and list(mixed.differs) == ["dispatched ISA"]
    assert str(mixed) == (f"paper 002 table lr_sweep, mnist: each cell's records come from one kind of run, but the "
                          f"cells compared in its rows come from runs that differ in dispatched ISA (AVX2: "
                          f"{tmp_path / 'one.json'}; AVX512: {tmp_path / 'other.json'})")


def test_records_of_two_torch_versions_are_never_averaged_and_a_frame_that_mixes_them_is_named(tmp_path):
    old, new = split(sweep(), lambda info: info["seed"] == 2)
    new["machine_info"]["torch"] = "2.14.0+cpu"
    loaded = load([save(tmp_path, "old.json", old), save(tmp_path, "new.json", new)])
    assert set(loaded.by_torch) == {"2.13.0+cpu", "2.14.0+cpu"}            # one frame per version: never one mean
    assert loaded.mixed == [] and set(loaded.records["run.torch"]) == {"2.14.0+cpu"}
    both = pd.concat(loaded.by_torch.values(), ignore_index=True)         # a frame that does mix them is named
    [mixed] = machines.mixed(both)
    assert list(mixed.differs) == ["torch"] and len(mixed.cells) == 9


def test_a_cell_is_a_benchmark_id_without_its_seed_and_trial():
    assert machines.cell_id("benchmarks/test_grid.py::test_grid[digits-noop-adam-0.001-n50-seed1]") == \
        "test_grid[digits-noop-adam-0.001-n50]"
    assert machines.cell_id("b/t.py::test_paper000[synthetic-weight_pruning-trial3-seed2]") == \
        "test_paper000[synthetic-weight_pruning]"
    assert machines.cell_id("b/t.py::test_lr[mnist-1e-05-seeded]") == "test_lr[mnist-1e-05-seeded]"
    assert machines.cell_id("b/t.py::test_overhead") == "test_overhead"


def test_a_provenance_that_is_not_an_object_skips_its_run_and_says_why(tmp_path):
    good, bad = split(sweep(), lambda info: info["seed"] == 2)
    bad["machine_info"]["provenance"] = "AMD EPYC"
    loaded = load([save(tmp_path, "good.json", good), save(tmp_path, "bad.json", bad)])
    assert [r.name for r in loaded.runs] == ["good.json"]
    assert [str(p) for p in loaded.problems] == [f"{tmp_path / 'bad.json'}: skipped: malformed run metadata: "
                                                 "'machine_info.provenance' is a string, not an object"]
