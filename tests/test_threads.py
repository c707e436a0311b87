"""The thread policy (`unlearning.training.threads`): the CPUs given, one thread for small models, the override."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from toys import this_thread_only

from benchmarks.competitors import Competitors
from unlearning import get_config, run_trial
from unlearning.data.registry import DATASETS, DatasetSpec, get_dataset, register_dataset
from unlearning.training import threads


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK", threads.THREADS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", this_thread_only(lambda pid: set(range(8)), os.sched_getaffinity))
    return monkeypatch


def test_the_budget_is_the_affinity_mask_capped_by_slurm_and_omp(clean_env):
    assert threads.budget() == 8
    clean_env.setattr(os, "sched_getaffinity", lambda pid: {2, 5})             # taskset -c 2,5
    assert threads.budget() == 2
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    clean_env.setenv("SLURM_CPUS_PER_TASK", "3")
    assert threads.budget() == 3
    clean_env.setenv("OMP_NUM_THREADS", "2")
    assert threads.budget() == 2
    clean_env.setenv("SLURM_CPUS_PER_TASK", "garbage")                          # Slurm's own: ignored
    clean_env.delenv("OMP_NUM_THREADS")
    assert threads.budget() == 8


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_bad_thread_variables_are_named(clean_env, value):
    clean_env.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(ValueError, match=rf"\$OMP_NUM_THREADS={value!r}"):
        threads.budget()
    clean_env.delenv("OMP_NUM_THREADS")
    clean_env.setenv(threads.THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"\${threads.THREADS_ENV}={value!r}"):
        threads.for_dataset("digits")


def test_small_models_train_single_threaded_the_convnet_on_the_budget(clean_env):
    for name in ("synthetic", "digits", "california"):
        assert threads.step_flops(name) < threads.PARALLEL_MIN_FLOPS
        assert threads.for_dataset(name) == 1
        assert "one thread" in threads.describe(name)
    assert threads.step_flops("mnist") >= threads.PARALLEL_MIN_FLOPS
    assert threads.for_dataset("mnist") == 8 and threads.for_dataset(None) == 8
    clean_env.setenv("SLURM_CPUS_PER_TASK", "4")
    assert threads.for_dataset("mnist") == 4


def test_the_override_wins(clean_env):
    clean_env.setenv(threads.THREADS_ENV, "3")
    assert threads.for_dataset("digits") == 3 and threads.for_dataset("mnist") == 3
    assert f"${threads.THREADS_ENV}" in threads.describe("digits")


def test_a_spec_may_declare_its_threads(clean_env):
    spec = get_dataset("digits")
    for declared, expected in ((3, 3), (64, 8), ("budget", 8)):
        name = f"digits_threads_{declared}"
        register_dataset(replace(spec, name=name, threads=declared, preset=lambda n=name: replace(spec.preset(),
                                                                                                   dataset=n)))
        try:
            assert threads.for_dataset(name) == expected
        finally:
            DATASETS.pop(name)
    for bad in (0, "all", 1.5, True):
        with pytest.raises(ValueError, match=r"threads=.*allowed: None .* 'budget' .* an integer >= 1"):
            register_dataset(replace(spec, name="digits_bad_threads", threads=bad))
    assert "digits_bad_threads" not in DATASETS
    assert DatasetSpec.__dataclass_fields__["threads"].default is None


def test_policy_applies_inside_and_restores_after():
    before = torch.get_num_threads()
    with threads.using(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads.using(1):
        raise RuntimeError("a failed block still restores")
    assert torch.get_num_threads() == before


def test_every_trial_record_says_its_thread_count(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    records = run_trial(get_config("synthetic", seed=0), ["noop", "weight_pruning"])
    assert {r["threads"] for r in records} == {1}             # the small model's policy, whatever torch's default
    clean_env.setenv(threads.THREADS_ENV, "2")
    assert {r["threads"] for r in run_trial(get_config("synthetic", seed=0), ["noop"])} == {2}


def test_beside_a_competing_process_the_cli_trains_the_small_model_single_threaded(tmp_path):
    """The fault: on a busy machine torch's default threads made the small models 25x slower. The
    regression: beside a competing torch process (`benchmarks.competitors`: bounded in time, stopped
    after) the CLI's records say one thread, and the run reproduces the numbers of an idle one (times
    are not asserted)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", threads.THREADS_ENV)}
    out = tmp_path / "run.json"
    with Competitors(1):
        subprocess.run([sys.executable, "-m", "unlearning", "-q", "--trials", "1", "--methods", "noop",
                        "--out", str(out)], check=True, env=env, timeout=300, capture_output=True)
    records = json.loads(out.read_text())["records"]
    assert {r["threads"] for r in records} == {1}
    idle = run_trial(get_config("synthetic", seed=0), ["noop"])
    assert [r["final_loss"] for r in records] == [r["final_loss"] for r in idle]


def test_on_a_busy_machine_the_description_names_the_remedy(clean_env):
    clean_env.setattr(threads, "_load", lambda: 7.5)
    busy = threads.describe("mnist")
    assert busy.startswith("8 thread(s) (8 CPU(s) given); the machine is busy (load 7.5 on 8 CPUs)")
    assert f"${threads.THREADS_ENV}=1" in busy
    assert "busy" not in threads.describe("digits")            # one thread already: nothing to advise
    clean_env.setattr(threads, "_load", lambda: 1.0)
    assert "busy" not in threads.describe("mnist")
    clean_env.setattr(threads, "_load", lambda: None)           # no load average on this platform
    assert threads.describe("mnist") == "8 thread(s) (8 CPU(s) given)"
