"""The report generator (`unlearning.bench.report`, run as `python -m reports`) on real benchmark JSON.

One tiny real benchmark session (paper 000's synthetic trial 1 and the overhead
benchmarks) is run once per test session (test_report_faults.py reuses it); every other
input is derived from its JSON in Python (keys dropped, schema_version changed, text
truncated, records relabelled), so no result number is typed by hand. The papers' numbers
come from `unlearning.bench.report.paper`. The committed run under reports/runs (record schema
version 2) and a version-1 run under tests/data/runs_v1 are read too.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="the report generator needs the `report` extra: pip install -e '.[report]'")
for _extra in ("matplotlib", "seaborn", "tabulate", "jinja2"):
    pytest.importorskip(_extra, reason="the report generator needs the `report` extra: pip install -e '.[report]'")

from unlearning.bench.report import paper as P  # noqa: E402
from unlearning.bench.report.cli import main  # noqa: E402
from unlearning.bench.report.common import num  # noqa: E402
from unlearning.bench.report.load import default_input, load  # noqa: E402
from unlearning.bench.report.pipeline import generated  # noqa: E402
from unlearning.common.schema import SCHEMA_VERSION, VERSIONS, required  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER000 = str(ROOT / "benchmarks" / "test_paper000_weight_pruning.py")
OVERHEAD = str(ROOT / "benchmarks" / "test_overhead.py")
COMMITTED = ROOT / "reports" / "runs"
V1_RUNS = ROOT / "tests" / "data" / "runs_v1"      # a record-schema-1 run kept to test that readers still take it
READS = " or ".join(map(str, VERSIONS))
TABLE_FILES = ("paper000_table1", "paper000_california", "paper002_table1", "overhead", "ensemble")
LATEX_FILES = ("paper000_table1", "paper000_california", "paper002_table1")      # the papers' tables only
PAGES = ("README.md", "figures.md", "provenance.md")
FIGURES = ("paper002_figure1", "paper000_distance", "paper000_d", "paper000_loss")


# -- the real run, once per session --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory):
    """One folder per test session (the same path wherever the fixture is imported: test_report_faults too)."""
    folder = tmp_path_factory.getbasetemp() / "report-bench"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def real_path(pytester, bench_dir, monkeypatch) -> Path:
    """The JSON of one tiny real benchmark session; the session runs on first use only (cached in bench_dir)."""
    out = bench_dir / "run.json"
    if not out.exists():
        monkeypatch.delenv("BENCH_PROFILE", raising=False)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")       # tiny nets: extra threads only contend on a busy CPU
        partial = bench_dir / "partial.json"
        result = pytester.runpytest_subprocess(PAPER000, OVERHEAD, "-k", "synthetic and trial1 or overhead",
                                               f"--benchmark-json={partial}", "-p", "no:cacheprovider",
                                               "--rootdir", str(ROOT))
        result.assert_outcomes(passed=7)
        partial.rename(out)
    return out


@pytest.fixture
def real(real_path) -> dict:
    return json.loads(real_path.read_text())


def write(path: Path, run: dict) -> Path:
    path.write_text(json.dumps(run), encoding="utf-8")
    return path


def info(run: dict, method: str, table: str = "table1") -> dict:
    return next(b["extra_info"] for b in run["benchmarks"]
                if b["extra_info"].get("method") == method and b["extra_info"].get("table") == table)


def relabel(bench: dict, suffix: str, **extra) -> dict:
    """A copy of a benchmark record under a new identity (fullname) with some extra_info changed."""
    b = copy.deepcopy(bench)
    b["fullname"] += f"[{suffix}]"
    b["name"] += f"[{suffix}]"
    b["extra_info"].update(extra)
    return b


def rich(run: dict) -> dict:
    """Every table and figure fed, from the real records: a second trial, California, paper 002, grid."""
    out = copy.deepcopy(run)
    synth = [b for b in run["benchmarks"] if b["extra_info"]["table"] == "table1"]
    by = {b["extra_info"]["method"]: b for b in synth}
    new = [relabel(b, "t2", trial=2, seed=1) for b in synth]
    new += [relabel(b, "cal", table="california", dataset="california") for b in synth]
    new += [relabel(b, f"grid{n}-{seed}", paper="grid", table="grid", removal_size=n, seed=seed, trial=seed + 1)
            for b in synth for n in (1, 2) for seed in (0, 1)]
    for method, src, size in (("original", "naive_retrain", 0), ("naive_retrain", "naive_retrain", 1),
                              ("random_relabel", "weight_pruning", 1), ("naive_retrain", "naive_retrain", 2),
                              ("random_relabel", "weight_pruning", 2)):
        new.append(relabel(by[src], f"p002-{method}-{size}", paper="002", method=method, removal_size=size))
    wp = by["weight_pruning"]["extra_info"]
    for opt in ("adadelta", "adam"):
        new.append(relabel(by["weight_pruning"], f"fig1-{opt}", paper="002", table="figure1", optimizer=opt,
                           method="random_relabel", checkpoint_sizes=[1, 2],
                           checkpoint_test_acc=[wp["train_acc"], wp["test_acc"]]))
    out["benchmarks"] += new
    return out


def csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=False, dtype=str)


def run_main(capsys, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


# -- the tables, figures and README of the real run ------------------------------------------------------------
def test_real_run_tables_figures_and_readme(real, real_path, tmp_path, capsys):
    out = tmp_path / "report"
    rc, err = run_main(capsys, real_path, "--out", out)
    assert rc == 0, err
    check_real_table1(out, real)
    check_real_other_tables(out)
    check_real_figures_and_readme(out, real, real_path)


def check_real_table1(out: Path, real: dict):
    pruned, oracle, ft = info(real, "weight_pruning"), info(real, "naive_retrain"), info(real, "finetune")
    t1 = csv(out, "paper000_table1")
    assert list(t1["trial"]) == ["1", "2", "3", "4", "avg", "sd"]
    for key in P.P000_TABLE1_COLUMNS:
        assert {key, f"{key}_paper", f"{key}_delta"} <= set(t1.columns)
    assert {"finetune_epochs", "weights_zeroed", "mr_d", "hit_cap", "collapsed", "profile"} <= set(t1.columns)
    row1 = t1.iloc[0]
    assert float(row1["mr_epochs"]) == pruned["epochs"] and float(row1["mo_epochs"]) == oracle["epochs"]
    assert float(row1["epoch_ratio"]) == pytest.approx(pruned["epoch_ratio"], rel=1e-5)
    assert float(row1["mr_acc"]) == pytest.approx(pruned["train_acc"], rel=1e-5)
    assert float(row1["finetune_epochs"]) == ft["epochs"]
    assert float(row1["weights_zeroed"]) == pruned["weights_zeroed"]
    for trial, ref in P.P000_TABLE1.items():
        assert [float(x) for x in t1.iloc[trial - 1][[f"{k}_paper" for k in P.P000_TABLE1_COLUMNS]]] == list(ref)
    assert [float(t1.iloc[4][f"{k}_paper"]) for k in P.P000_TABLE1_COLUMNS] == list(P.P000_TABLE1_AVG)
    # trials 2-4 were not run: empty, never zero
    assert (t1.iloc[1:4][["mr_epochs", "mo_epochs", "epoch_ratio", "mr_acc", "finetune_epochs"]] == "").all().all()
    md = (out / "paper000_table1.md").read_text()
    assert md.splitlines()[0].startswith("**Paper 000, Table 1") and "profile: smoke — not the paper reproduction" in md
    assert "Trial(s) 2, 3, 4: not in this run" in md


def check_real_other_tables(out: Path):
    cal = csv(out, "paper000_california")
    assert list(cal["model"]) == ["m_o", "m_r", "m_c", "finetune"]
    assert [float(x) for x in cal["epochs_paper"][:2]] == [P.P000_CALIFORNIA["m_o"], P.P000_CALIFORNIA["m_r"]]
    assert float(cal["ratio_to_mc_paper"][0]) == P.P000_CALIFORNIA_MO_OVER_MC
    assert {"epochs_sd", "cap_hits", "s_to_control", "s_to_oracle", "d", "rule"} <= set(cal.columns)
    assert (cal["epochs"] == "").all() and (cal["epochs_delta"] == "").all()        # no California records

    t2 = csv(out, "paper002_table1")
    assert list(t2["row"]) == ["original", "naive 100", "relabel 100", "naive 600", "relabel 600"]
    assert [float(x) for x in t2["test_acc_paper"]] == [r[2] for r in P.P002_TABLE1]
    assert [float(x) for x in t2["forget_acc_paper"]] == [r[3] for r in P.P002_TABLE1]
    assert (t2["test_acc"] == "").all() and set(t2["n"]) == {"0"}

    oh = csv(out, "overhead")
    assert sorted(oh["benchmark"]) == ["fit_vs_bare_loop", "relabel_request_vs_step"]
    assert {"overhead_ratio", "overhead_target", "within_target", "bare_seconds"} <= set(oh.columns)
    ens = csv(out, "ensemble")                       # fit_many's own table, not mixed into the overhead one
    assert list(ens["k"]) == ["8", "32"] and list(ens["speedup_target"]) == ["5", "20"]
    assert all(float(v) > 0 for v in ens["speedup"]) and set(ens["within_target"]) <= {"yes", "no"}

    for name in TABLE_FILES:
        for ext in ("md", "csv"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
        assert "profile: smoke" in (out / f"{name}.md").read_text().splitlines()[0]
        assert (out / f"{name}.tex").exists() == (name in LATEX_FILES)
        if name in LATEX_FILES:
            assert "profile: smoke" in (out / f"{name}.tex").read_text()
    assert not (out / "grid.md").exists() and not (out / "torch_versions.md").exists()
    assert (out / "headline.csv").exists() and not (out / "headline.md").exists()        # the page shows it


def check_real_figures_and_readme(out: Path, real: dict, real_path: Path):
    pruned = info(real, "weight_pruning")
    for name in ("paper000_distance", "paper000_d", "paper000_loss"):
        assert (out / f"{name}.png").stat().st_size > 1000
    assert not (out / "paper002_figure1.png").exists()

    readme, figures, provenance = ((out / page).read_text() for page in PAGES)
    assert "**profile: smoke** — **not the paper reproduction**" in readme.splitlines()[2]
    assert "not drawn: the input holds no paper-002 Figure 1 records" in figures
    assert "no comparison-grid records in this run" in readme
    assert "m_o (naive retraining): the loss starts at" in figures      # m_o's curve is in the records now
    assert (out / "paper000_loss.png").stat().st_size > 0
    assert f"Our mean m_r/m_o epoch ratio is {num(pruned['epoch_ratio'])} (paper 0.5396" in readme
    assert real["machine_info"]["torch"] in readme and real_path.name in provenance
    assert real["commit_info"]["id"][:12] in readme and real["commit_info"]["id"][:12] in provenance
    assert "docs/choices.md" in provenance
    for name in TABLE_FILES:        # every table linked from the page, none shown there again
        assert f"[md]({name}.md)" in readme
        assert (out / f"{name}.md").read_text().splitlines()[2] not in readme


def test_tables_are_byte_stable(real_path, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_main(capsys, real_path, "--out", a)[0] == 0
    assert run_main(capsys, real_path, "--out", b)[0] == 0
    before = {p.name: p.read_bytes() for p in a.iterdir() if p.suffix != ".png"}
    assert len(before) == 2 * len(TABLE_FILES) + len(LATEX_FILES) + 1 + len(PAGES) + 1      # headline.csv, parquet
    assert before == {p.name: p.read_bytes() for p in b.iterdir() if p.suffix != ".png"}
    assert run_main(capsys, real_path, "--out", a)[0] == 0                    # again into the same folder
    assert before == {p.name: p.read_bytes() for p in a.iterdir() if p.suffix != ".png"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no temporary folder left


def test_every_table_and_figure_with_data_and_stale_files_removed(real, real_path, tmp_path, capsys):
    out = tmp_path / "report"
    src = write(tmp_path / "rich.json", rich(real))
    rc, err = run_main(capsys, src, "--out", out)
    assert rc == 0, err
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 1000
    grid = csv(out, "grid")
    assert list(grid.columns[:7]) == ["profile", "dataset", "method", "optimizer", "lr", "removal_size", "n"]
    assert {"seconds", "seconds_sd", "samples_processed", "speedup_vs_naive", "quality", "metric", "d", "d_sd"} \
        <= set(grid.columns)
    assert list(zip(grid["method"], grid["removal_size"], strict=True)) == [
        (m, n) for m in ("naive_retrain", "weight_pruning", "finetune") for n in ("1", "2")]
    assert set(grid["n"]) == {"2"} and set(grid["metric"]) == {"test acc %"}
    assert float(grid["seconds"][2]) == pytest.approx(info(real, "weight_pruning")["seconds"], rel=1e-5)
    t1 = csv(out, "paper000_table1")
    assert t1["mr_epochs"][1] == t1["mr_epochs"][0] and t1["mr_epochs"][5] == "0"       # two equal trials: sd 0
    cal = csv(out, "paper000_california")
    assert cal["n"][0] == "1" and float(cal["epochs"][2]) == info(real, "naive_retrain")["control_epochs"]
    t2 = csv(out, "paper002_table1")
    assert list(t2["row"]) == ["original", "naive 1", "relabel 1", "naive 2", "relabel 2"]
    assert list(t2["paper_row"]) == ["original", "naive 100", "relabel 100", "naive 600", "relabel 600"]
    assert float(t2["test_acc"][0]) == pytest.approx(100 * info(real, "naive_retrain")["test_acc"], rel=1e-5)
    assert "rows are matched by position" in (out / "paper002_table1.md").read_text()

    # the same folder from the tiny run: outputs it does not produce are removed, not left stale
    assert run_main(capsys, real_path, "--out", out)[0] == 0
    assert not (out / "grid.csv").exists() and not (out / "paper002_figure1.png").exists()
    assert all(generated(p.name) for p in out.iterdir())


def test_torch_versions_side_by_side(real, tmp_path, capsys):
    other = rich(real)
    other["machine_info"]["torch"] = "2.99.0"
    other["datetime"] = "2000-01-01T00:00:00+00:00"          # older: the main tables keep the real run's torch
    write(tmp_path / "a.json", rich(real))
    write(tmp_path / "b.json", other)
    out = tmp_path / "report"
    rc, err = run_main(capsys, tmp_path, "--out", out)
    assert rc == 0, err
    tv = csv(out, "torch_versions")
    torch = real["machine_info"]["torch"]
    versions = [f"torch {torch}", "torch 2.99.0"]
    assert list(tv.columns) == ["profile", "quantity", "paper", *(f"{v}{part}" for v in versions
                                                                  for part in ("", "_lo", "_hi"))]
    for part in ("", "_lo", "_hi"):                               # the same records under both versions
        assert (tv[f"torch 2.99.0{part}"] == tv[f"torch {torch}{part}"]).all()
    assert "000 synthetic: mean epoch ratio m_r/m_o" in set(tv["quantity"])
    assert f"torch {torch}" in (out / "paper000_table1.md").read_text().splitlines()[0]


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_truncated_file_is_named_and_the_rest_reported(real_path, tmp_path, capsys):
    bad = tmp_path / "truncated.json"
    bad.write_text(real_path.read_text()[:5000])
    out = tmp_path / "report"
    rc, err = run_main(capsys, bad, real_path, "--out", out)
    assert rc == 1
    assert f"{bad}: not valid JSON, truncated or malformed" in err
    readme = (out / "README.md").read_text()
    assert "truncated.json" in (out / "provenance.md").read_text().split("## Skipped input")[1]
    assert real_path.name in (out / "provenance.md").read_text() and "Some input was skipped" in readme


def test_foreign_and_other_schema_files(real, tmp_path, capsys):
    foreign = copy.deepcopy(real)
    for b in foreign["benchmarks"]:
        b["extra_info"] = {}
    newer = copy.deepcopy(real)
    for b in newer["benchmarks"]:
        b["extra_info"]["schema_version"] = SCHEMA_VERSION + 1
    f, n = write(tmp_path / "other_suite.json", foreign), write(tmp_path / "schema2.json", newer)
    out = tmp_path / "report"
    rc, err = run_main(capsys, f, n, "--out", out)
    assert rc == 2 and not out.exists()
    total = len(real["benchmarks"])
    assert f"{f}: {total} of {total} benchmarks have no extra_info.schema_version: not from this suite" in err
    assert f"{n}: {total} of {total} benchmarks have schema_version {SCHEMA_VERSION + 1}; this generator reads " \
           f"schema_version {READS}; skipped" in err
    assert "no usable benchmark records" in err

    mixed = copy.deepcopy(real)           # one file, two schema versions: the current one is used
    mixed["benchmarks"][0]["extra_info"]["schema_version"] = SCHEMA_VERSION + 1
    m = write(tmp_path / "mixed.json", mixed)
    rc, err = run_main(capsys, m, "--out", out)
    assert rc == 1 and f"{m}: 1 of {len(real['benchmarks'])} benchmarks have schema_version {SCHEMA_VERSION + 1}" in err
    assert (out / "README.md").exists()


def test_record_missing_a_key_and_method_not_run(real, tmp_path, capsys):
    broken = copy.deepcopy(real)
    pruned = next(b for b in broken["benchmarks"] if b["extra_info"]["method"] == "weight_pruning")
    del pruned["extra_info"]["epochs"]
    src = write(tmp_path / "dropped.json", broken)
    out = tmp_path / "report"
    rc, err = run_main(capsys, src, "--out", out)
    assert rc == 1 and f"{src}: record skipped: {pruned['name']} lacks epochs" in err
    t1 = csv(out, "paper000_table1")
    assert t1["mr_epochs"][0] == "" and t1["epoch_ratio"][0] == "" and t1["mo_epochs"][0] != ""
    assert "m_r (weight_pruning) has no record for trial(s) 1: its cells are empty." in \
        (out / "paper000_table1.md").read_text()

    no_ft = copy.deepcopy(real)       # a method not run at all: empty cells and a note, exit 0
    no_ft["benchmarks"] = [b for b in no_ft["benchmarks"] if b["extra_info"]["method"] != "finetune"]
    rc, err = run_main(capsys, write(tmp_path / "no_ft.json", no_ft), "--out", out)
    assert rc == 0, err
    t1 = csv(out, "paper000_table1")
    assert t1["finetune_epochs"][0] == "" and t1["finetune_epochs"][4] == "" and t1["mr_epochs"][0] != ""
    assert "finetune (finetune) has no record for trial(s) 1" in (out / "paper000_table1.md").read_text()


def test_profiles_never_mixed_and_paper_profile_not_flagged(real, tmp_path, capsys):
    as_paper = copy.deepcopy(real)
    for b in as_paper["benchmarks"]:
        b["extra_info"]["profile"] = "paper"
    p = write(tmp_path / "paper.json", as_paper)
    out = tmp_path / "report"
    rc, err = run_main(capsys, p, "--out", out)
    assert rc == 0, err
    readme = (out / "README.md").read_text()
    assert "not the paper reproduction" not in readme and "**profile: paper**" in readme
    s = write(tmp_path / "smoke.json", real)
    rc, err = run_main(capsys, s, p, "--out", out)
    n = len(real["benchmarks"])
    assert rc == 1 and f"{s}: {n} record(s) of profile smoke not used: this report shows profile paper" in err


def test_no_usable_input_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run([sys.executable, "-m", "reports", str(empty), str(tmp_path / "nope.json"),
                          "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2
    assert f"{empty}: folder holds no .json files" in res.stderr and "nope.json: no such file" in res.stderr
    assert "nothing written" in res.stderr and not (tmp_path / "out").exists()


def test_interrupted_generation_leaves_the_old_report(real, real_path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    assert run_main(capsys, real_path, "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from unlearning.bench.report import cli, figures

    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(figures, "FIGURES", (figures.paper000_distance, boom))
    with pytest.raises(KeyboardInterrupt):
        cli.main([str(write(tmp_path / "rich.json", rich(real))), "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "rich.json"]


def test_default_input_is_the_newest_run_and_schema_matches_the_benchmarks(real, real_path, tmp_path):
    folder = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    old, new = folder / "0001_a.json", folder / "0002_b.json"
    for p, t in ((old, 2_000_000_000), (new, 1_000_000_000)):
        p.write_text(real_path.read_text())
        os.utime(p, (t, t))
    assert default_input([tmp_path / ".benchmarks"]) == old       # newest by mtime, not by name
    # the benchmarks stamp records with unlearning.common.schema's current version, which the generator reads
    assert {b["extra_info"]["schema_version"] for b in real["benchmarks"]} == {SCHEMA_VERSION}
    assert SCHEMA_VERSION in VERSIONS


def test_a_failing_figure_is_reported_and_the_rest_written(real_path, tmp_path, capsys, monkeypatch):
    from unlearning.bench.report import figures

    def broken(df, ctx, folder):
        raise ValueError("unexpected series")
    broken.__name__ = "paper000_loss"
    monkeypatch.setattr(figures, "FIGURES", (figures.paper000_distance, broken))
    out = tmp_path / "report"
    rc, err = run_main(capsys, real_path, "--out", out)
    assert rc == 1 and "paper000_loss.png: figure not drawn: ValueError: unexpected series" in err
    assert (out / "paper000_distance.png").exists() and not (out / "paper000_loss.png").exists()
    figures_page = (out / "figures.md").read_text()
    assert "not drawn: the figure failed on this input (ValueError: unexpected series)" in figures_page


# -- record schema versions, the torch-free import, the missing extra ------------------------------------------------
def as_v2(bench: dict) -> dict:
    """A copy of a committed (version 1) record as version 2: with its nested `config` and `data_info`."""
    b = copy.deepcopy(bench)
    b["extra_info"].update(schema_version=2, config={"train": {"lr": 0.01, "epochs": {"cap": 100}}, "seed": 0},
                           data_info={"source": "test", "sizes": {"train": 10, "test": 5}})
    return b


def test_committed_v1_runs_and_a_v2_record_load(tmp_path, capsys):
    for folder, versions in ((V1_RUNS, [1]), (COMMITTED, [2])):
        runs = load([str(folder)])
        assert runs.problems == [] and runs.schema_versions == versions
        assert len(runs.records) == sum(r.records for r in runs.runs) > 0

    run = json.loads((V1_RUNS / "0012_paper-overhead.json").read_text())
    run["benchmarks"][1] = as_v2(run["benchmarks"][1])
    src = write(tmp_path / "mixed_versions.json", run)
    loaded = load([str(src)])
    assert loaded.problems == [] and loaded.schema_versions == [1, 2] and len(loaded.records) == 2
    cols = set(loaded.records.columns)
    assert {"config", "data_info"} <= cols             # one object column each, not exploded
    assert not [c for c in cols if c.startswith(("config.", "data_info.", "extra_info."))]
    assert loaded.records["config"].iloc[1]["train"]["epochs"] == {"cap": 100}
    rc, err = run_main(capsys, src, "--out", tmp_path / "report")
    assert rc == 0, err


def test_required_keys_follow_the_record_version(tmp_path, capsys):
    run = json.loads((V1_RUNS / "0012_paper-overhead.json").read_text())
    v1, v2 = run["benchmarks"]
    assert "data_info" not in required(1) and "data_info" in required(2)
    v2 = as_v2(v2)
    del v2["extra_info"]["data_info"]           # required since version 2: skipped, the key named
    del v1["extra_info"]["method"]              # required since version 1
    run["benchmarks"] = [v1, v2]
    src = write(tmp_path / "incomplete.json", run)
    rc, err = run_main(capsys, src, "--out", tmp_path / "report")
    assert rc == 2 and not (tmp_path / "report").exists()
    assert f"{src}: record skipped: {v1['name']} lacks method (see docs/schema.md)" in err
    assert f"{src}: record skipped: {v2['name']} lacks data_info (see docs/schema.md)" in err


def test_the_generator_imports_without_torch():
    res = subprocess.run([sys.executable, "-c",
                          "import unlearning.bench.report.cli, sys; assert 'torch' not in sys.modules"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


BLOCK = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["x", {src!r}, "--out", {out!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(("module", "blocked"), [("reports", "pandas"), ("unlearning.bench.report", "matplotlib"),
                                                  ("reports", "tabulate")])
def test_missing_report_extra_is_one_line_and_exit_2(tmp_path, module, blocked):
    code = BLOCK.format(blocked=blocked, module=module, src=str(COMMITTED), out=str(tmp_path / "out"))
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert res.stderr == ("reports: error: the report generator needs the 'report' extra "
                          f"(pip install 'unlearning-bench[report]'): No module named '{blocked}'\n")
    assert not (tmp_path / "out").exists()


def test_grid_speedups_leave_out_capped_runs_and_count_them():
    """A run that stopped at its epoch cap (or whose oracle did) measures the cap: its speed-up
    is left out of the cell's mean, and the cell says how many such records it holds."""
    import pandas as pd

    from unlearning.bench.report.tables.grid import _cell, capped_rows

    cell = pd.DataFrame({"removal_size": [50, 50, 50], "optimizer": ["adam"] * 3, "lr": [1e-3] * 3,
                         "speedup_vs_naive": [2.0, 10.0, 4.0], "hit_cap": [False, True, False],
                         "oracle_converged": [True, True, False], "seconds": [1.0, 2.0, 3.0],
                         "samples_processed": [1, 1, 1], "d": [0.0] * 3, "test_acc": [0.5] * 3})
    assert capped_rows(cell).tolist() == [False, True, True]
    row, _ = _cell(cell, 50, "adam", 1e-3, ("test_acc", "test acc %", 100))
    assert row["hit_cap"] == 2 and row["speedup_vs_naive"] == 2.0 and row["seconds"] == 2.0
    old = cell.drop(columns=["hit_cap", "oracle_converged"])          # records without the keys: nothing capped
    assert not capped_rows(old).any()
