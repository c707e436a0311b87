"""The contract every unlearning method keeps, checked for each registered method on the toy problems of `toys.py`
(MLPs on digits and on paper 000's synthetic draws, MNIST's ConvNet on random images; K = 3 problems each, every
problem its own data, seed, original and forget set), through the public entry points only
(`unlearn`, `unlearn_many`, `METHODS`, `get_method(name).applies`):

- the trained original is left untouched, bit for bit;
- K = 3 problems at once (`unlearn_many`) equal three single runs (`unlearn`), within float rounding;
- `on_epoch` sees the model in eval mode with its current weights (or is never called, where `NO_EPOCHS` says why);
- the same seed gives the same bits: weights, cost and the experiment's record;
- `applies` is honest: where it says None the method runs, where it gives a reason `unlearn` refuses with it;
- the result's details, and the record `unlearning.running.experiment` makes of it, are flat and JSON-safe.

Which methods: `sorted(METHODS)` when this module is collected (the built-ins, and plug-ins that entry points
loaded), plus the plug-in example of docs/extending.md (`tests/test_plugin_example.py`), registered for this
module's tests by `readme_plugin` and unregistered afterwards, so a plug-in written as that page teaches is held to
the contract.
A method's own maths (closed forms, scikit-learn checks, the reference defects) is in its own test file.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property

import pytest
import torch
from test_plugin_example import METHOD as README_PLUGIN
from test_plugin_example import MODULE as README_MODULE
from test_plugin_example import write_example
from toys import toy_problem

from unlearning.common import schema
from unlearning.common.files import json_safe
from unlearning.data.registry import get_dataset
from unlearning.methods import METHODS, MethodNotApplicable, UnlearnResult, get_method, unlearn, unlearn_many
from unlearning.running.experiment import Reference

NAMES = sorted({*METHODS, README_PLUGIN})
WORLDS = ("digits", "synthetic", "convnet")
SEEDS = (0, 1, 2)                       # K = 3 problems, one per seed

# Batched and single runs of one problem differ only at float rounding: a batch stacks the K models' weights and
# multiplies them in one batched matmul (`baddbmm`) where a single run multiplies one model's (`addmm`), and the two
# kernels may sum in another order (tests/test_ensemble.py bounds that drift per optimizer step). A step can leave a
# weight one float32 rounding of its scale apart (eps 1.2e-7 x |w|, |w| < 10 here), and the toy problems take at most
# 40 steps: 40 x 1.2e-7 x 10 = 5e-5 at worst (measured with torch 2.13 on one thread: 6e-8, most methods bit-equal).
# An error of the method (another batch order or seed, a model that reads another's data) moves weights by a step's
# size, 1e-3 (Adam's learning rate) and more.
ROUNDING = 5e-5
# Numbers a method derives from its weights (losses, norms, KL divergences in `details`) may be close to zero and
# then carry the weights' rounding as a larger relative error: compared with `ROUNDING` absolute, `DERIVED` relative.
DERIVED = 1e-4

# Methods that never call `on_epoch`, and why: the test checks they do not, and that every other method does.
NO_EPOCHS = {
    "newton_removal": "one Newton step, no epochs",
    "noop": "returns the original unchanged, no epochs",
    "random_relabel": "one step per removal request, no epochs",
    "sisa": "an ensemble of shard models: no single model whose epochs it could follow",
    README_PLUGIN: "the README's plug-in adds noise once, no epochs",
}
# Methods that run K problems one by one even on the MLPs (every other one trains them as one batch), and why.
ONE_BY_ONE = {
    "newton_removal": "a few small dense solves per problem: nothing to batch",
    "noop": "no work to batch",
    "random_relabel": "one step per removal request, in order: no batched form",
    README_PLUGIN: "the README's plug-in has no batched form",
}


@pytest.fixture(scope="module", autouse=True)
def readme_plugin(tmp_path_factory):
    """The README's plug-in example registered for this module's tests (unless installed already), then removed."""
    if README_PLUGIN in METHODS:
        yield
        return
    folder = str(write_example(tmp_path_factory.mktemp("readme-plugin")))
    sys.path.insert(0, folder)
    try:
        importlib.import_module(README_MODULE)
        yield
    finally:
        METHODS.pop(README_PLUGIN, None)
        sys.modules.pop(README_MODULE, None)
        sys.path.remove(folder)


@dataclass
class Calls:
    """What one run's `on_epoch` saw: per call the epoch, whether the model was in train mode, and its weights; with
    a `reference`, also the experiment's per-epoch tracker (`Reference.tracker`) and the series it fills."""

    reference: Reference | None = None
    epochs: list = field(default_factory=list)
    training: list = field(default_factory=list)
    states: list = field(default_factory=list)
    series: dict | None = field(init=False, default=None)
    track: Callable | None = field(init=False, default=None, repr=False)

    def __post_init__(self):
        self.series, self.track = self.reference.tracker() if self.reference is not None else (None, None)

    def __call__(self, epoch, model):
        self.epochs.append(epoch)
        self.training.append(model.training)
        self.states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if self.track is not None:
            self.track(epoch, model)


@dataclass
class Runs:
    """One method on the K problems of one toy world: each alone (`single`), all at once (`many`), the first once more
    (`again`: `many[0]` where `unlearn_many` ran the K problems one by one, i.e. called what `unlearn` calls, else one
    more `unlearn`), the originals' weights before any of it, and what each run's `on_epoch` saw."""

    name: str
    problems: list
    before: list
    single: list[UnlearnResult]
    single_calls: list[Calls]
    many: list[UnlearnResult]
    many_calls: list[Calls]
    again: UnlearnResult
    again_calls: Calls

    @cached_property
    def records(self) -> tuple[dict, dict]:
        """The records `unlearning.running.experiment` makes of problem 0's two runs (as `run_trial` does)."""
        return tuple(calls.reference.record(self.name, result.cost, result.model, result.details, calls.series)
                     for result, calls in ((self.single[0], self.single_calls[0]), (self.again, self.again_calls)))


@cache
def reference(world: str) -> Reference:
    """What the experiment compares problem 0 of `world` with (the oracle: naive retraining), as `run_trial` does."""
    first = toy_problem(world, SEEDS[0])
    spec = get_dataset(first.data.name)
    oracle = unlearn("naive_retrain", first.trained, first.data, first.forget, first.config)
    return Reference(first.data, first.trained, first.forget, oracle, first.config, d_on=spec.d_on,
                     sets=spec.eval_sets)


@cache
def runs_of(name: str, world: str) -> Runs:
    """Method `name` on the K problems of toy world `world`, run once for the module's tests."""
    problems = [toy_problem(world, s) for s in SEEDS]
    ref = reference(world)
    before = [copy.deepcopy(p.trained.model.state_dict()) for p in problems]
    single_calls = [Calls(ref if k == 0 else None) for k in range(len(problems))]
    single = [unlearn(name, p.trained, p.data, p.forget, p.config, on_epoch=c)
              for p, c in zip(problems, single_calls, strict=True)]
    many_calls = [Calls(ref if k == 0 else None) for k in range(len(problems))]
    many = unlearn_many(name, [p.trained for p in problems], [p.data for p in problems],
                        [p.forget for p in problems], [p.config for p in problems], on_epoch=many_calls)
    again, again_calls = many[0], many_calls[0]
    if again.cost.batch_models != 1:
        first, again_calls = problems[0], Calls(ref)
        again = unlearn(name, first.trained, first.data, first.forget, first.config, on_epoch=again_calls)
    return Runs(name, problems, before, single, single_calls, many, many_calls, again, again_calls)


@pytest.fixture
def runs(name, world) -> Runs:
    """The runs of (method, world); skipped, saying why, where the method does not apply to the world's model
    (`test_applies_is_honest` checks that it refuses there)."""
    first = toy_problem(world, SEEDS[0])
    reason = get_method(name).applies(first.data, first.trained.model)
    if reason:
        pytest.skip(f"{name} does not apply to the {world} problem: {reason}")
    return runs_of(name, world)


def same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def untimed(values: dict) -> dict:
    """`values` without the timings (`schema.is_timing`: seconds and what is computed from them), JSON-safe."""
    return json_safe({k: v for k, v in values.items() if not schema.is_timing(k)})


def assert_close_states(got: dict, want: dict) -> None:
    """The same tensors within `ROUNDING` (a state_dict of a batched run against a single run's)."""
    assert got.keys() == want.keys()
    for key, w in want.items():
        g = got[key]
        if g.shape != w.shape or g.dtype != w.dtype or not (g.double() - w.double()).abs().le(ROUNDING).all():
            torch.testing.assert_close(g, w, rtol=0, atol=ROUNDING, msg=lambda m, key=key: f"{key}: {m}")


def assert_close_values(got: dict, want: dict) -> None:
    """The same keys; numbers within rounding (`ROUNDING` absolute, `DERIVED` relative), everything else equal."""
    assert got.keys() == want.keys()
    for k, w in want.items():
        g = got[k]
        if isinstance(w, float) and isinstance(g, float):
            assert g == pytest.approx(w, rel=DERIVED, abs=ROUNDING, nan_ok=True), k
        elif isinstance(w, (list, tuple)) and w and all(isinstance(v, float) for v in w):
            assert list(g) == pytest.approx(list(w), rel=DERIVED, abs=ROUNDING, nan_ok=True), k
        else:
            assert g == w, k


parametrize = pytest.mark.parametrize("name, world", [(n, w) for n in NAMES for w in WORLDS])


# --- the contract -----------------------------------------------------------------------------------------------------

@parametrize
def test_the_trained_original_is_left_untouched(runs, name, world):
    for problem, state in zip(runs.problems, runs.before, strict=True):
        assert same_bits(problem.trained.model.state_dict(), state)
        assert not problem.trained.model.training
    for result in (*runs.single, *runs.many, runs.again):
        assert result.method == name and result.model is not runs.problems[0].trained.model
        assert not result.model.training


@parametrize
def test_k_problems_at_once_equal_k_single_runs(runs, name, world):
    k = len(SEEDS)
    batched = world != "convnet" and name not in ONE_BY_ONE    # the ConvNet does not stack: one by one
    for one, many, calls_one, calls_many in zip(runs.single, runs.many, runs.single_calls, runs.many_calls,
                                                strict=True):
        assert (one.cost.batch_models, many.cost.batch_models) == (1, k if batched else 1), \
            f"{name} on the {world} problems: fix the method or say why in ONE_BY_ONE"
        if batched:
            assert many.cost.batch_seconds >= many.cost.seconds > 0
        assert_close_states(many.model.state_dict(), one.model.state_dict())
        cost_one, cost_many = one.cost.cost(), many.cost.cost()
        for key in ("batch_models", "batch_seconds"):
            cost_one.pop(key), cost_many.pop(key)
        assert_close_values(untimed(cost_many), untimed(cost_one))
        assert_close_values(untimed({"initial_loss": many.cost.initial_loss, "loss": many.cost.loss_history}),
                            untimed({"initial_loss": one.cost.initial_loss, "loss": one.cost.loss_history}))
        assert_close_values(untimed(many.details), untimed(one.details))
        assert calls_many.epochs == calls_one.epochs
        for seen_many, seen_one in zip(calls_many.states, calls_one.states, strict=True):
            assert_close_states(seen_many, seen_one)
    assert not same_bits(runs.single[0].model.state_dict(), runs.single[1].model.state_dict())   # K problems


@parametrize
def test_on_epoch_sees_eval_mode_and_the_current_weights(runs, name, world):
    for result, calls in [*zip(runs.single, runs.single_calls, strict=True),
                          *zip(runs.many, runs.many_calls, strict=True), (runs.again, runs.again_calls)]:
        if name in NO_EPOCHS:
            assert calls.epochs == [], f"{name} calls on_epoch: take it out of NO_EPOCHS"
            continue
        assert calls.epochs, f"{name} never calls on_epoch: say why in NO_EPOCHS"
        assert calls.epochs == sorted(set(calls.epochs)) and calls.epochs[0] >= 0
        assert not any(calls.training), f"{name} calls on_epoch with the model in train mode"
        assert same_bits(calls.states[-1], result.model.state_dict())      # the last call saw the final weights


@parametrize
def test_the_same_seed_gives_the_same_bits(runs, name, world):
    one, again = runs.single[0], runs.again
    assert same_bits(again.model.state_dict(), one.model.state_dict())
    assert untimed(again.cost.cost()) == untimed(one.cost.cost())
    assert (again.cost.initial_loss, again.cost.loss_history) == (one.cost.initial_loss, one.cost.loss_history)
    assert untimed(again.details) == untimed(one.details)
    first, second = runs.records
    assert untimed(second) == untimed(first)                # the per-epoch S and d series included
    assert runs.again_calls.epochs == runs.single_calls[0].epochs


@parametrize
def test_applies_is_honest(name, world):
    """Where `applies` gives no reason the method runs (on all K problems: `runs_of`); where it gives one, `unlearn`
    and `unlearn_many` refuse before any work, saying it."""
    problem = toy_problem(world, SEEDS[0])
    reason = get_method(name).applies(problem.data, problem.trained.model)
    assert reason is None or (isinstance(reason, str) and reason.strip())
    if reason is None:
        assert [r.method for r in runs_of(name, world).single] == [name] * len(SEEDS)
        return
    with pytest.raises(MethodNotApplicable, match=re.escape(reason)):
        unlearn(name, problem.trained, problem.data, problem.forget, problem.config)
    with pytest.raises(MethodNotApplicable, match=re.escape(reason)):
        unlearn_many(name, [problem.trained], [problem.data], [problem.forget], [problem.config])


def is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@parametrize
def test_details_and_records_are_flat_and_json_safe(runs, name, world):
    rec = runs.records[1]
    for result in (*runs.single, *runs.many, runs.again):
        for key, value in result.details.items():       # a nested value would be dropped from the record
            assert is_scalar(value) or (isinstance(value, (list, tuple)) and all(map(is_scalar, value))), key
    for key, value in runs.again.details.items():
        assert json_safe(rec[key]) == json_safe(list(value) if isinstance(value, tuple) else value), key
    nested = {"config", "data_info"}                      # the two dicts the schema allows (what produced the record)
    for key, value in rec.items():
        assert key in nested or is_scalar(value) or (isinstance(value, list) and all(map(is_scalar, value))), key
        low, high = schema.value_range(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                assert (low is None or v >= low) and (high is None or v <= high), (key, v)
    json.dumps(json_safe(schema.finish(rec)), allow_nan=False)
    if name != README_PLUGIN:                             # a plug-in's own detail keys are kept, not documented
        assert schema.undocumented(rec) == []
