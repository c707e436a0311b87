"""The registries: datasets (one module each), methods (discovered, plug-ins through entry points),
the record schema, and the rules that exist once (epoch cap, seeded subsets, applicability)."""

import json
import re
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from benchmarks.profiles import PROFILES, Scale
from unlearning import get_config
from unlearning.common import schema
from unlearning.common.plugins import PluginWarning, load_entry_points
from unlearning.config import Config, Convergence, TrainConfig, capped, epoch_capped
from unlearning.data import seeded_split
from unlearning.data.registry import DATASETS, DatasetSpec, get_dataset, names, register_dataset
from unlearning.methods import METHODS, applicability, check_preset, get_method, register, resolve_settings
from unlearning.methods.base import markdown_table
from unlearning.methods.random_relabel import RelabelConfig
from unlearning.methods.settings import check_preset_of, resolve
from unlearning.methods.weight_pruning import PruningConfig
from unlearning.running.experiment import run_trial

ROOT = Path(__file__).resolve().parents[1]


# -- datasets -----------------------------------------------------------------------------------------
def toy_spec(name: str, thresholds=(1.0, 1.0), **changes) -> DatasetSpec:
    synthetic = get_dataset("synthetic")

    def preset():
        return Config(dataset=name, train=TrainConfig("adam", 1e-3, None, Convergence("loss_below", 0.05, 50)),
                      methods={"weight_pruning": {"thresholds": thresholds}})

    fields = dict(name=name, task="binary", input_shape=(1,), num_classes=2, n_train=10,
                  loader=lambda **kw: replace(synthetic.loader(**kw), name=name), model=synthetic.model,
                  preset=preset, description="toy", provenance="test")
    fields.update(changes)
    return DatasetSpec(**fields)


@pytest.fixture
def unregister():
    added = []
    yield added
    for name in added:
        DATASETS.pop(name, None)
        METHODS.pop(name, None)


def test_every_dataset_is_one_registered_module():
    found = sorted(p.stem for p in (ROOT / "unlearning" / "data").glob("*.py")
                   if "= register_dataset(" in p.read_text(encoding="utf-8"))
    assert sorted(names()) == found == ["california", "digits", "mnist", "synthetic"]
    assert names()[:3] == ["synthetic", "california", "mnist"]        # the spec's `order`: tables keep their order
    for name in names():
        spec = get_dataset(name)
        cfg = spec.preset()                  # data: its settings as the module gives them, resolved by get_config
        assert cfg.dataset == name and get_config(name) == resolve(cfg)
        assert spec.probe().x_train.shape[1:] == spec.input_shape


def test_every_preset_fits_its_model_under_every_method_that_applies():
    """The check `get_config` runs, run here on every registered dataset against every registered method."""
    for name in names():
        check_preset(get_dataset(name))
        assert check_preset_of(name) is get_dataset(name)


def test_preset_whose_thresholds_do_not_fit_the_model_fails_before_any_run(unregister):
    register_dataset(toy_spec("toy3", thresholds=(1.0, 1.0, 1.0)))   # fields are fine: it registers
    unregister.append("toy3")
    message = r"dataset 'toy3'.*method 'weight_pruning'.*3 thresholds given for 2 Linear"
    with pytest.raises(ValueError, match=message):
        check_preset(get_dataset("toy3"))
    with pytest.raises(ValueError, match=message):
        get_config("toy3")                                       # the one way a run gets a preset
    with pytest.raises(ValueError, match=message):
        get_config("toy3", seed=1)                               # not remembered as checked after failing


def test_preset_for_another_dataset_fails(unregister):
    register_dataset(toy_spec("toyo", preset=lambda: Config(dataset="synthetic")))
    unregister.append("toyo")
    with pytest.raises(ValueError, match=r"dataset 'toyo': its preset is for dataset 'synthetic'"):
        get_config("toyo")


def test_preset_is_checked_again_under_a_method_registered_later(unregister):
    register_dataset(toy_spec("toyl"))
    unregister.append("toyl")
    assert get_config("toyl").dataset == "toyl"

    def never_fits(settings, model):
        raise ValueError("no model fits")

    register("toyl_method", settings=PruningConfig, paper="a test method", check=never_fits)(
        lambda *a, **k: None)
    unregister.append("toyl_method")
    with pytest.raises(ValueError, match=r"dataset 'toyl': its preset does not fit its model for method "
                                         r"'toyl_method': no model fits"):
        get_config("toyl")


def test_dataset_module_with_bad_thresholds_fails_before_its_first_run(tmp_path):
    """The same check, as a user meets it: a dataset module whose preset is wrong imports, and asking
    for its preset (what the CLI, the benchmarks and every run do first) fails naming the mismatch."""
    mod = tmp_path / "bad_dataset.py"
    mod.write_text(textwrap.dedent("""
        from unlearning.config import Config
        from unlearning.data.registry import DatasetSpec, get_dataset, register_dataset
        syn = get_dataset("synthetic")
        register_dataset(DatasetSpec(
            name="bad", task="binary", input_shape=(1,), num_classes=2, n_train=10, loader=syn.loader,
            model=syn.model, description="", provenance="",
            preset=lambda: Config(dataset="bad", methods={"weight_pruning": {"thresholds": (1.0,)}})))
    """))
    code = "import bad_dataset; from unlearning import get_config; get_config('bad')"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    assert "ValueError: dataset 'bad': its preset does not fit its model for method 'weight_pruning': " \
           "1 thresholds given for 2 Linear layers" in run.stderr


def test_dataset_spec_field_errors(unregister):
    with pytest.raises(ValueError, match=r"unknown task of dataset 'toyt' 'ordinal'; allowed: binary"):
        register_dataset(toy_spec("toyt", task="ordinal"))
    with pytest.raises(ValueError, match=r"unknown evaluation set of dataset 'toye' 'val'"):
        register_dataset(toy_spec("toye", eval_sets=("test", "val")))
    with pytest.raises(ValueError, match=r"dataset 'synthetic' is registered twice"):
        register_dataset(get_dataset("synthetic"))


def test_registered_dataset_runs_end_to_end(unregister):
    register_dataset(toy_spec("toy"))
    unregister.append("toy")
    assert "toy" in names() and PROFILES["smoke"].scale("toy", "grid") == Scale()   # no entry: full size
    records = run_trial(get_config("toy", seed=0), ["weight_pruning"], track_series=False)
    assert [r["method"] for r in records] == ["original", "weight_pruning"]
    assert records[1]["config"]["dataset"] == "toy" and records[1]["config"]["methods"]["weight_pruning"]


# -- methods -------------------------------------------------------------------------------------------
def test_unknown_method_and_unknown_setting():
    allowed = ", ".join(sorted(METHODS))
    with pytest.raises(ValueError, match=re.escape(f"unknown method 'nope'; allowed: {allowed}")):
        get_method("nope")
    # a Config is data: it holds what it is given; names and fields are checked where methods are looked up
    assert Config(methods={"nope": {}}).methods == {"nope": {}}
    with pytest.raises(ValueError, match=re.escape(f"unknown method 'nope'; allowed: {allowed}")):
        get_config("synthetic", methods={"nope": {}})
    with pytest.raises(ValueError, match=r"unknown setting of method 'weight_pruning' 'threshold'; allowed: "
                                         r"thresholds, n_neighbors"):
        get_config("synthetic", methods={"weight_pruning": {"threshold": 1.0}})
    with pytest.raises(ValueError, match=r"method 'naive_retrain' takes no settings"):
        resolve(Config(methods={"naive_retrain": {}}))
    with pytest.raises(ValueError, match=r"settings of method 'random_relabel' must be a RelabelConfig or a dict"):
        get_config("synthetic", methods={"random_relabel": PruningConfig()})
    with pytest.raises(ValueError, match=r"settings of method 'random_relabel' must be a RelabelConfig or a dict"):
        get_config("synthetic").with_method("random_relabel", PruningConfig())
    with pytest.raises(ValueError, match=r"settings of method 'weight_pruning' are still a dict of overrides"):
        Config(methods={"weight_pruning": {"n_neighbors": 3}}).method_settings("weight_pruning")
    with pytest.raises(ValueError, match=r"settings of method 'scrub' must be its settings dataclass or a dict, "
                                         r"got int"):
        Config(methods={"scrub": 3})


def test_config_holds_every_methods_settings_frozen_and_serialisable():
    cfg = get_config("california")
    assert set(cfg.methods) == {n for n, m in METHODS.items() if m.settings is not None}
    assert cfg.method_settings("weight_pruning") == PruningConfig(thresholds=(4e-4, 1e-4, 1e-5), n_neighbors=10)
    assert cfg.method_settings("naive_retrain") is None
    new = cfg.with_method("random_relabel", lr=0.5)
    assert new.method_settings("random_relabel") == RelabelConfig(lr=0.5)
    assert cfg.method_settings("random_relabel").lr == 1e-3
    with pytest.raises(AttributeError):
        cfg.method_settings("weight_pruning").n_neighbors = 3
    as_json = json.loads(json.dumps(cfg.as_dict()))
    assert as_json["methods"]["weight_pruning"]["thresholds"] == [4e-4, 1e-4, 1e-5]
    assert resolve(Config(**{**as_json, "train": cfg.train, "finetune": None})).methods == cfg.methods  # round-trip
    assert cfg.with_method("random_relabel", {"lr": 0.5}).method_settings("random_relabel") == RelabelConfig(lr=0.5)


def test_every_method_declares_paper_and_is_one_discovered_module():
    helpers = ("base", "group", "settings", "space")  # interface, shared loop, configs' settings, search spaces
    found = sorted(p.stem for p in (ROOT / "unlearning" / "methods").glob("*.py")
                   if not p.stem.startswith("_") and p.stem not in helpers)
    assert sorted(METHODS) == found
    for m in METHODS.values():
        assert m.paper and m.description
    assert get_method("weight_pruning").settings is PruningConfig
    assert get_method("random_relabel").settings is RelabelConfig


def test_register_rejects_bad_definitions(unregister):
    with pytest.raises(ValueError, match="method name 'bad name': use a Python identifier"):
        register("bad name")
    with pytest.raises(ValueError, match="settings must be a dataclass type"):
        register("bad_settings", settings=dict)
    with pytest.raises(ValueError, match="method 'finetune' is registered twice"):
        register("finetune")(lambda *a, **k: None)


PLUGIN = '''
from dataclasses import dataclass
from unlearning.methods import UnlearnResult, register

@dataclass(frozen=True)
class NoiseConfig:
    scale: float = 0.0

@register("plugin_noop", settings=NoiseConfig, paper="a test plug-in")
def plugin_noop(problems):
    """Return the trained model unchanged."""
    from unlearning.training.train import TrainRecord
    return [UnlearnResult("plugin_noop", p.trained.copy_model(), TrainRecord(converged=True),
                          {"scale": p.config.method_settings("plugin_noop").scale}) for p in problems]
'''


def write_plugin(folder: Path, module: str, body: str, group="unlearning_bench.methods") -> None:
    """A minimal installed distribution: a module and a dist-info naming it as an entry point."""
    (folder / f"{module}.py").write_text(body)
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}\n")


def test_plugin_method_from_an_entry_point(tmp_path, monkeypatch, unregister):
    write_plugin(tmp_path, "bench_plugin_noop", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    unregister.append("plugin_noop")
    assert load_entry_points("unlearning_bench.methods") == ["bench_plugin_noop"]
    assert get_method("plugin_noop").paper == "a test plug-in"
    cfg = get_config("synthetic", seed=0).with_method("plugin_noop", scale=0.5)
    records = run_trial(cfg, ["plugin_noop"], track_series=False)
    assert records[-1]["method"] == "plugin_noop" and records[-1]["scale"] == 0.5
    assert records[-1]["s_to_control"] == 0.0                        # the model is the control, untouched


def test_plugin_is_found_when_the_package_is_imported(tmp_path):
    write_plugin(tmp_path, "bench_plugin_noop", PLUGIN)
    code = "import unlearning.methods as m; print(m.get_method('plugin_noop').paper)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "a test plug-in"


def test_broken_plugin_warns_and_is_skipped(tmp_path, monkeypatch):
    write_plugin(tmp_path, "bench_plugin_broken", "raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning, match=r"plug-in 'bench_plugin_broken' .* not loaded: ImportError: missing "
                                           r"dependency xyz"):
        assert load_entry_points("unlearning_bench.methods") == []
    with warnings.catch_warnings(), pytest.raises(ImportError, match="xyz"):
        load_entry_points("unlearning_bench.methods", strict=True)



@pytest.mark.parametrize("group, registry, what, hint", [
    ("unlearning_bench.methods", METHODS, "method", "@register"),
    ("unlearning_bench.datasets", DATASETS, "dataset", "register_dataset"),
])
def test_plugin_that_registers_nothing_warns_naming_its_module(tmp_path, monkeypatch, group, registry, what, hint):
    write_plugin(tmp_path, "bench_plugin_empty", "VALUE = 1\n", group=group)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bench_plugin_empty", raising=False)
    with pytest.warns(PluginWarning) as caught:
        assert load_entry_points(group, registry) == []                # imported, but not counted as loaded
    (message,) = [str(w.message) for w in caught]
    module = tmp_path / "bench_plugin_empty.py"
    assert message.startswith(f"plug-in 'bench_plugin_empty' (bench_plugin_empty) of entry-point group {group!r} "
                              f"registered no {what}: its module 'bench_plugin_empty' ({module}) imports, but")
    assert hint in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_entry_points(group, registry) == ["bench_plugin_empty"]   # already imported: not judged again
    monkeypatch.delitem(sys.modules, "bench_plugin_empty")
    with pytest.raises(ImportError, match=f"registered no {what}"):
        load_entry_points(group, registry, strict=True)


def test_plugin_imported_first_is_not_taken_for_an_empty_one(tmp_path):
    """The plug-in's own import brings in `unlearning.methods`, which loads the entry points while the
    plug-in is half imported (nothing registered yet): no warning, and the method registers."""
    write_plugin(tmp_path, "bench_plugin_noop", PLUGIN)
    code = "import bench_plugin_noop, unlearning.methods as m; print(m.get_method('plugin_noop').paper)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and "PluginWarning" not in run.stderr, run.stderr
    assert run.stdout.strip() == "a test plug-in"

def test_applicability_is_one_probe():
    for name in names():
        spec = get_dataset(name)
        reasons = applicability(spec.probe(), spec.build_model())
        assert set(reasons) == set(METHODS)
    assert "Conv2d" in applicability(get_dataset("mnist").probe(), get_dataset("mnist").build_model())["weight_pruning"]
    assert "regression" in applicability(get_dataset("california").probe(),
                                         get_dataset("california").build_model())["random_relabel"]


def test_resolve_settings_fills_defaults():
    out = resolve_settings({})
    assert out == {n: m.settings() for n, m in sorted(METHODS.items()) if m.settings is not None}


# -- one rule each --------------------------------------------------------------------------------------
def test_epoch_cap_rule():
    mnist = get_config("mnist")
    capped = mnist.with_epoch_cap(3)
    assert capped.train.convergence.max_epochs == 3 and capped.finetune.convergence.max_epochs == 1   # never raised
    assert mnist.with_epoch_cap(None) is mnist
    syn = get_config("synthetic").with_epoch_cap(5000)
    assert syn.train.convergence.max_epochs == 5000 and syn.finetune is None and syn.finetune_train is syn.train


def test_epoch_cap_is_declared_on_the_settings_type():
    """The methods' fixed schedules a profile's cap bounds are their settings classes' `EPOCH_CAPPED`: the
    baselines' `epochs`, capped exactly as the earlier rule (any integer field named `epochs`) capped them."""
    declared = {n: epoch_capped(m.settings) for n, m in METHODS.items() if m.settings is not None}
    assert {n for n, names in declared.items() if names} == {"gradient_ascent", "l1_sparse", "neggrad_plus",
                                                              "salun", "scrub"}
    assert all(names in ((), ("epochs",)) for names in declared.values())
    cfg = get_config("digits")
    for cap in (1, 3, 5, 10, 100):
        capped_cfg = cfg.with_epoch_cap(cap)
        for name, settings in cfg.methods.items():
            epochs = getattr(settings, "epochs", None)
            by_name = replace(settings, epochs=cap) if isinstance(epochs, int) and epochs > cap else settings
            assert capped_cfg.methods[name] == by_name, (name, cap)
    assert capped_cfg.method_settings("scrub").msteps == cfg.method_settings("scrub").msteps    # not declared

    @dataclass(frozen=True)
    class Wrong:
        steps: int = 3
        EPOCH_CAPPED = ("epochs",)

    with pytest.raises(ValueError, match=r"Wrong.EPOCH_CAPPED names 'epochs', which is not one of its fields"):
        capped(Wrong(), 1)


def test_seeded_split_is_the_one_subset_rule():
    chosen, rest = seeded_split(10, 4, seed=3, keep=7)
    assert 7 in chosen.tolist() and len(chosen) == 4 and sorted(chosen.tolist() + rest.tolist()) == list(range(10))
    assert chosen.tolist() == sorted(chosen.tolist())
    assert torch.equal(seeded_split(10, 4, seed=3, keep=7)[0], chosen)          # deterministic
    assert torch.equal(seeded_split(5, None, seed=0)[0], torch.arange(5))
    with pytest.raises(ValueError, match=r"subset size -1: must be an integer >= 0"):
        seeded_split(5, -1, seed=0)


# -- the record schema --------------------------------------------------------------------------------------
def test_schema_is_torch_free():
    code = "import sys, unlearning.common.schema; assert 'torch' not in sys.modules, 'torch imported'"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr


def test_schema_versions_and_missing_keys():
    v1 = schema.required(1)
    assert len(v1) == 30 and "config" not in v1 and set(v1) < set(schema.REQUIRED)
    rec = schema.finish({"dataset": "synthetic"}, paper="000")
    assert schema.missing(rec) == [] and rec["schema_version"] == schema.SCHEMA_VERSION and rec["d"] is None
    del rec["d"]
    assert schema.missing(rec) == ["d"]
    assert schema.missing({**dict.fromkeys(v1), "schema_version": 1}) == []
    with pytest.raises(ValueError, match=r"unknown record schema_version 9; allowed: 1, 2"):
        schema.required(9)


def test_benchmark_readme_schema_table_is_generated_from_the_schema():
    readme = (ROOT / "docs" / "schema.md").read_text()
    assert schema.markdown_table() in readme, "regenerate with: python -m unlearning.common.schema"


def test_readme_method_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "regenerate with: python -m unlearning.methods"
    run = subprocess.run([sys.executable, "-m", "unlearning.methods"], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert run.stdout == markdown_table()


def test_method_table_holds_each_built_in_method_once_and_no_plug_in():
    """A row is the registry's name, `paper` and first docstring line; a method of another module is left out."""
    rows = markdown_table().splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [f"| `{n}`" for n in sorted(METHODS)
                                                 if METHODS[n].fn.__module__.startswith("unlearning.methods.")]
    assert ("| `noop` | floor (ours): the trained model returned unchanged | "
            "Return a copy of the trained model untouched, at zero cost. |") in rows

    @register("table_probe", paper="a probe of this test")
    def table_probe(problems):
        """Not a built-in method."""
        return []

    try:
        assert "table_probe" not in markdown_table()
    finally:
        METHODS.pop("table_probe")


def test_records_are_documented_and_carry_config_and_data_info():
    cfg = get_config("synthetic", seed=0)
    records = run_trial(cfg)
    for rec in records:
        assert schema.undocumented(rec) == []
        assert rec["data_info"]["seed"] == 0
    assert all(r["config"] == cfg.as_dict() for r in records)


def test_loaded_data_carries_its_spec_through_every_copy():
    """The spec is resolved once, where the data is loaded; code holding the data reads it there (`spec_of`)."""
    from unlearning.data.forget_sets import with_canaries
    from unlearning.data.registry import load_dataset, spec_of
    from unlearning.evaluation.audit import with_holdout
    from unlearning.training.models import model_for

    spec = get_dataset("digits")
    data = load_dataset("digits", seed=0)
    assert data.spec is spec and spec.probe().spec is spec
    for copy in (data.subset(100, 50), with_canaries(data, 5)[0], with_holdout(data, 0), replace(data, name="x")):
        assert copy.spec is spec
    assert spec_of(data) is spec and repr(data).count("DatasetSpec") == 0
    hand = replace(data, spec=None)                       # built by hand: its name is looked up
    assert spec_of(hand) is spec and hand == data         # the spec is not part of the data's value
    assert type(model_for(data)) is type(spec.build_model())
