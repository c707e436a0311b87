"""The benchmark harness, run as a user would: a tiny pytest-benchmark session in a subprocess."""

import json
from pathlib import Path

import pytest

from benchmarks.profiles import PROFILES, get_profile
from unlearning.common.schema import REQUIRED as SCHEMA_KEYS
from unlearning.common.schema import SCHEMA_VERSION
from unlearning.running import provenance

ROOT = Path(__file__).resolve().parents[1]
PAPER000 = str(ROOT / "benchmarks" / "test_paper000_weight_pruning.py")


def run_bench(pytester, *args):
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-rs")


def test_tiny_session_saves_every_schema_key(pytester, tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_PROFILE", raising=False)
    out = tmp_path / "run.json"
    result = run_bench(pytester, PAPER000, "-k", "synthetic and trial1", f"--benchmark-json={out}")
    result.assert_outcomes(passed=3)
    run = json.loads(out.read_text())
    assert run["machine_info"]["bench_profile"] == "smoke"
    assert run["machine_info"]["torch"] and "threads" in run["machine_info"]
    assert list(run["machine_info"][provenance.KEY]) == list(provenance.KEYS)      # what moves the numbers
    assert run["machine_info"]["bench_complete"] is True          # every collected cell ran (benchmarks.journal)
    assert run["machine_info"]["bench_cells"] == {"done": 3, "collected": 3}
    by_method = {b["extra_info"]["method"]: b["extra_info"] for b in run["benchmarks"]}
    assert set(by_method) == {"naive_retrain", "weight_pruning", "finetune"}
    for info in by_method.values():
        assert set(SCHEMA_KEYS) <= set(info)
        assert info["schema_version"] == SCHEMA_VERSION and info["paper"] == "000" and info["table"] == "table1"
        assert info["dataset"] == "synthetic" and info["removal_size"] == 1 and info["trial"] == 1
        assert info["optimizer"] == "adam" and info["lr"] == 1e-3 and info["profile"] == "smoke"
        assert info["seconds"] > 0 and info["steps"] == info["epochs"]        # full batch: one step an epoch
        assert 0 <= info["test_acc"] <= 1 and info["oracle_epochs"] == by_method["naive_retrain"]["epochs"]
    oracle = by_method["naive_retrain"]
    assert oracle["s_to_oracle"] == 0 and oracle["epoch_ratio"] == 1
    pruned = by_method["weight_pruning"]
    assert len(pruned["d_series"]) == pruned["epochs"] + 1 and pruned["weights_zeroed"] >= 0
    for info in by_method.values():          # throughput against the GEMM peak measured at the start
        assert info["matmul_gflops"] == run["machine_info"]["matmul_gflops"] > 0
        assert info["flops_per_sample"] == 30.0          # 1->3->1, as FlopCounterMode counts forward + backward
        assert info["train_gflops"] == pytest.approx(30.0 * info["samples_processed"] / info["seconds"] / 1e9)
        assert info["peak_fraction"] == pytest.approx(info["train_gflops"] / info["matmul_gflops"])
    # one live line per cell in place of its dot: none glued to pytest's dots or its [ nn%]
    lines = [line for line in result.outlines if "] test_paper000[" in line]
    assert len(lines) == 3 and lines[0].startswith("[1/3] test_paper000[synthetic-naive_retrain")
    assert "so far, ~" in lines[-1] and lines[-1].endswith("~0s left")
    assert all(line.startswith("[") for line in lines)
    assert any(line.endswith("benchmarks/test_paper000_weight_pruning.py ") for line in result.outlines)
    for b in run["benchmarks"]:
        assert b["stats"]["rounds"] == 1


@pytest.mark.parametrize("flag, shown", [("-q", False), ("-v", True)])
def test_live_lines_follow_pytest_verbosity(pytester, monkeypatch, flag, shown):
    monkeypatch.delenv("BENCH_PROFILE", raising=False)
    result = run_bench(pytester, PAPER000, "-k", "synthetic and trial1 and naive", "--benchmark-disable", flag)
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if "] test_paper000[" in line]
    assert bool(lines) == shown
    if shown:       # under -v after pytest's own PASSED line
        at = result.outlines.index(lines[0])
        assert result.outlines[at - 1].endswith("PASSED [100%]") and lines[0].startswith("[1/1] ")


def test_unknown_profile_names_the_allowed_ones(pytester):
    result = run_bench(pytester, PAPER000, "--bench-profile", "huge", "--collect-only")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown benchmark profile 'huge'; allowed: smoke, quick, paper*"])
    with pytest.raises(ValueError, match="allowed: smoke, quick, paper"):
        get_profile("huge")


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("BENCH_PROFILE", "paper")
    assert get_profile().name == "paper" and get_profile("smoke").name == "smoke"
    paper = PROFILES["paper"]
    # a spread wherever the release can afford one (benchmarks/profiles.py says what each cost); California at 3
    # trials: its seed 0 never reaches the paper's threshold, so fewer could show no convergence at all
    assert len(paper.grid.seeds) >= 3 and len(paper.paper000.trials["synthetic"]) >= 3
    assert len(paper.paper000.trials["california"]) >= 3
    # paper 002's parts share Table 1's full-MNIST originals: Figure 1 and the lr sweep train none of their own
    p002 = paper.paper002
    assert set(p002.sweep_seeds) <= set(p002.seeds) and set(p002.figure1_seeds) <= set(p002.seeds)
    # the verdict's error rates are measured at the N of every group the audit judges (stacked and MNIST's)
    f = paper.forgetting
    assert {f.n_models, f.n_models_unstacked} <= {n for n, m, _ in f.error_settings if m in f.sizes}


def test_missing_data_skips_with_the_reason(pytester, tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("UNLEARNING_DATA_DIR", str(empty))
    monkeypatch.setenv("UNLEARNING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UNLEARNING_OFFLINE", "1")
    result = run_bench(pytester, PAPER000, "-k", "california and naive", "--benchmark-disable")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*california data unavailable*UNLEARNING_DATA_DIR*housing.tgz*"])


def test_progress_estimates_what_is_left_from_finished_cells_of_the_same_kind():
    from types import SimpleNamespace

    from benchmarks.conftest import Progress
    from unlearning.training.progress import clock

    progress = Progress(config=None)
    ids = ["m.py::t[a-x-1]", "m.py::t[a-x-2]", "m.py::t[b-y-1]", "m.py::t[b-y-2]", "m.py::u[c-1]"]
    progress.items = [SimpleNamespace(nodeid=i) for i in ids]
    assert Progress.groups(ids[0]) == ("m.py::t[a-x", "m.py::t")
    progress.done.add(ids[0])
    progress.seconds = {"m.py::t[a-x": [10.0]}
    assert progress.estimate() == 40.0          # a-x-2 like a-x; b-y by t's mean; u by every cell's mean
    progress.done.add(ids[2])
    progress.seconds["m.py::t[b-y"] = [2.0]
    assert progress.estimate() == 10.0 + 2.0 + 6.0
    assert clock(59.96) == "1m00s" and clock(3725) == "1h02m" and clock(float("nan")) == "?"
    assert [clock(s) for s in (0, 0.0042, 0.42, 5.123, 12.34)] == ["0s", "0.0042s", "0.42s", "5.12s", "12.3s"]


def test_forgetting_cells_run_tuned_points_beside_presets_and_shrink_where_the_model_does_not_stack(monkeypatch):
    """Tuned cells where a saved search has the method; the MNIST ConvNet's cells cut to the profile's
    sizes, regimes and settings for unstacked models."""
    import dataclasses

    from benchmarks import test_forgetting as tf

    searched = {"methods": {"random_relabel": {"best": {"lr": 0.01}}, "finetune": {"best": {}}}}
    monkeypatch.setattr(tf.tuning, "load", lambda path: searched)
    base = PROFILES["paper"]
    p = dataclasses.replace(base, forgetting=dataclasses.replace(
        base.forgetting, sizes=(20, 100), sizes_unstacked=(20,), regimes_unstacked=("canaries",),
        settings_unstacked=("tuned",), tuned_regimes=("random", "canaries")))
    ids = [c.id for c in tf.cases(p)]
    assert "digits-random-n100-random_relabel" in ids and "digits-random-n100-random_relabel-tuned" in ids
    assert "digits-classwise-n20-random_relabel" in ids and "digits-classwise-n20-random_relabel-tuned" not in ids
    mnist = [i for i in ids if i.startswith("mnist-")]
    assert mnist and all(i.startswith("mnist-canaries-n20-") for i in mnist)
    assert "mnist-canaries-n20-random_relabel-tuned" in mnist and "mnist-canaries-n20-random_relabel" not in mnist
    assert "mnist-canaries-n20-noop" in mnist and "mnist-canaries-n20-scrub" in mnist     # no search: preset


def test_the_paper_grid_runs_the_baselines_on_fewer_mnist_cells_than_the_papers_methods():
    from benchmarks import test_grid as tg

    ids = [c.id for c in tg.dataset_cases(PROFILES["paper"], "mnist")]
    salun = [i for i in ids if i.startswith("mnist-salun-")]
    assert sorted(salun) == ["mnist-salun-sgd-0.013-n100-seed0", "mnist-salun-sgd-0.013-n600-seed0"]
    finetune = sorted(i for i in ids if i.startswith("mnist-finetune-"))
    assert len(finetune) == 2 * 3 and {i.split("-")[-2] for i in finetune} == {"n100", "n600"}     # every seed
    assert len([c.id for c in tg.dataset_cases(PROFILES["paper"], "digits") if "-salun-" in c.id]) == 12 * 3


def test_a_profile_may_give_each_dataset_its_own_forget_regimes():
    """`Forgetting.regimes_by_dataset`: main, sweep and tuned cells alike (the smoke profile: one regime each)."""
    from benchmarks import test_forgetting as tf
    from benchmarks import tune

    smoke = PROFILES["smoke"]
    assert smoke.forgetting.regimes_of("digits", unstacked=False) == ("canaries",)
    assert smoke.forgetting.regimes_of("a_plugin_dataset", unstacked=False) == smoke.forgetting.regimes
    assert PROFILES["paper"].forgetting.regimes_of("mnist", unstacked=True) == ("random",)
    regimes = {c.id.split("-")[0]: c.id.split("-")[1] for c in [*tf.cases(smoke), *tf.sweep_cases(smoke)]}
    assert regimes == {"synthetic": "classwise", "digits": "canaries", "california": "random", "mnist": "random"}
    assert list(tune.cells(smoke, "digits")) == ["canaries"] and tune.cells(smoke, "mnist") == {}


def test_scales_are_the_benchmarks_table_and_a_dataset_without_an_entry_runs_at_full_size():
    """Each dataset's size per profile and part lives in `benchmarks/profiles.SCALES` (not in the installed spec)."""
    from benchmarks.profiles import PARTS, SCALES, Scale
    from unlearning.data.registry import DatasetSpec, names

    assert "scales" not in DatasetSpec.__dataclass_fields__
    assert set(SCALES) <= set(names())
    for dataset, profiles in SCALES.items():
        assert set(profiles) <= set(PROFILES), dataset
        assert all(set(parts) <= set(PARTS) for parts in profiles.values()), dataset
    smoke = PROFILES["smoke"]
    assert smoke.scale("mnist", "grid") == Scale(train=1000, test=500, max_epochs=1)
    assert smoke.scale("digits", "grid") == Scale() == smoke.scale("a_plugin_dataset", "paper")
    with pytest.raises(ValueError, match=r"unknown benchmark part 'train'; allowed: paper, grid, forgetting"):
        smoke.scale("mnist", "train")


def test_a_cell_is_one_frozen_key_and_its_data_carries_the_spec():
    from benchmarks.lab import Cell, Lab
    from unlearning.data.registry import get_dataset

    cell = Cell("synthetic", 1, 2, "grid")
    assert hash(cell) == hash(Cell("synthetic", 1, 2, "grid")) and cell.originals == Cell("synthetic", 1, None, "grid")
    with pytest.raises(AttributeError):
        cell.seed = 2
    lab = Lab(PROFILES["smoke"])
    data = lab.data(cell)
    assert data.spec is get_dataset("synthetic") and lab.data(cell.with_seed(1)) is data    # cached per draw
    assert lab.data(cell.with_seed(2)) is not data                                          # a new draw per seed
    assert lab.config(cell).seed == 1 and lab.forget(cell).tolist() == lab.forget(cell).tolist()
