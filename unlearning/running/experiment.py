"""One experiment, end to end: dataset → original model → every method → metrics → flat records.

`run_trial` trains the control `m_c` once, retrains the oracle `m_o` (naive
retraining) once, runs every other method on copies of `m_c`, and returns one
flat, JSON-safe record per model, each comparing it with `m_c` and `m_o`.
Saving them is `unlearning.common.files`' (atomic, so an interrupted run never
leaves a half-written file where a result used to be).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch

from ..config import Config
from ..data import Data
from ..data.forget_sets import select_random as select_forget
from ..data.registry import get_dataset, spec_of
from ..evaluation.metrics import EVAL_SETS, deletion_metric, evaluate, ratio
from ..methods import UnlearnResult, applicability, check_applicable, unlearn
from ..training import progress, threads
from ..training.models import model_for, seeded
from ..training.train import Trained, TrainRecord, predict, train_original
from . import provenance

log = logging.getLogger(__name__)

ORACLE = "naive_retrain"


def applicable_methods(data: Data, model, names: Iterable[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Split `names` (default: every method) into those that run on this data/model and {name: why not}."""
    reasons = applicability(data, model, names)
    return [n for n, r in reasons.items() if not r], {n: r for n, r in reasons.items() if r}


def _scalars(details: dict) -> dict:
    """Flatten method details to JSON-safe scalars (lists kept as lists of numbers)."""
    flat = {}
    for k, v in details.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            flat[k] = v
        elif isinstance(v, (list, tuple)):
            flat[k] = list(v)
    return flat


def summarize(name: str, cost: TrainRecord, model, data: Data, forget: torch.Tensor, seed: int,
              details: dict | None = None, sets=EVAL_SETS, outputs: dict | None = None,
              config: Config | None = None) -> dict:
    """One flat record of a model (keys: `unlearning.common.schema`): what producing it cost, and
    its quality on the test, forget, total and training sets (no comparison with other
    models), with the config and data info it came from. `outputs` collects the model's
    predictions for reuse (see `metrics.evaluate`)."""
    return {"dataset": data.name, "method": name, "removal_size": len(forget), "seed": seed,
            "train_size": data.n_train, "test_size": len(data.x_test),
            "device": str(next(model.parameters()).device), "threads": torch.get_num_threads(), **cost.cost(),
            "initial_loss": cost.initial_loss,
            "final_loss": cost.loss_history[-1] if cost.loss_history else cost.initial_loss,
            **evaluate(model, data, forget, sets, outputs), **_scalars(details or {}),
            "config": config.as_dict() if config is not None else None, "data_info": dict(data.info)}


@dataclass
class Reference:
    """What every unlearned model is compared with: the control `m_c` and the oracle `m_o`
    for one forget set, and both models' outputs on the set X that S and d are measured on.

    X is the control training set (paper 000); `d_on="test"` measures on the test
    set instead, where predicting the whole training set is costly (MNIST). `sets`
    are the evaluation sets of every record (see `metrics.evaluate`).
    """

    data: Data
    trained: Trained
    forget: torch.Tensor
    oracle: UnlearnResult
    config: Config
    d_on: str = "train"
    sets: tuple[str, ...] = EVAL_SETS
    out_c: torch.Tensor = dataclass_field(init=False, repr=False)
    out_o: torch.Tensor = dataclass_field(init=False, repr=False)

    def __post_init__(self):
        if self.d_on not in ("train", "test"):
            raise ValueError(f"unknown d_on {self.d_on!r}; allowed: train, test")
        self.x_eval = self.data.x_train if self.d_on == "train" else self.data.x_test
        self.out_c = predict(self.trained.model, self.x_eval)
        self.out_o = predict(self.oracle.model, self.x_eval)

    def deletion(self, model) -> dict[str, float]:
        """S to control, S to oracle and d of `model` (or of its outputs on X)."""
        return {**deletion_metric(model, self.out_c, self.out_o, self.x_eval), "d_on": self.d_on}

    def outputs_on_x(self, model, outputs: dict) -> torch.Tensor:
        """The model's outputs on X, from `outputs` (filled by `evaluate`) when already predicted."""
        return outputs[self.d_on] if self.d_on in outputs else predict(model, self.x_eval)

    def tracker(self) -> tuple[dict, Callable]:
        """Empty per-epoch S/d series and the `on_epoch` callback that fills them."""
        series = {"s_to_control_series": [], "s_to_oracle_series": [], "d_series": []}

        def on_epoch(epoch, model):
            m = self.deletion(model)
            for key in ("s_to_control", "s_to_oracle", "d"):
                series[f"{key}_series"].append(m[key])

        return series, on_epoch

    def record(self, name: str, cost: TrainRecord, model, details: dict | None = None,
               series: dict | None = None, forget: torch.Tensor | None = None) -> dict:
        """`summarize` plus the comparison with the oracle and the control: cost ratios, S and d.

        `forget` (default: the reference's) is the set whose accuracy is reported,
        e.g. the first n requests of a relabeling stream at a checkpoint.
        """
        forget = self.forget if forget is None else forget
        oracle, control = self.oracle.cost, self.trained.record
        outputs = {}
        rec = summarize(name, cost, model, self.data, forget, self.config.seed, details, self.sets, outputs,
                        self.config)
        rec.update({"oracle_epochs": oracle.epochs, "oracle_seconds": oracle.seconds,
                    "oracle_samples": oracle.samples, "oracle_converged": oracle.converged,
                    "control_epochs": control.epochs, "control_seconds": control.seconds,
                    "control_converged": control.converged, "control_hit_cap": control.hit_cap,
                    "control_collapsed": control.collapsed,
                    "epoch_ratio": ratio(cost.epochs, oracle.epochs),
                    "speedup_vs_naive": ratio(oracle.seconds, cost.seconds),
                    "speedup_samples": ratio(oracle.samples, cost.samples),
                    **self.deletion(self.outputs_on_x(model, outputs))})
        if series is not None:             # {} asks for the loss curve alone
            rec["loss_series"] = list(cost.loss_history)
            rec.update({k: v for k, v in series.items() if v})
        return rec

    def original_record(self) -> dict:
        return self.record("original", self.trained.record, self.trained.model,
                           {"init_redraws": self.trained.init_redraws})


def prepare(config: Config, methods: Sequence[str] | None = None, removal_size: int = 1,
            data: Data | None = None, forget=None) -> tuple[Data, list[str], torch.Tensor]:
    """Load the data (it carries its spec: `Data.spec`) and check every method, the forget set and the config
    before any training."""
    if data is None:
        data = get_dataset(config.dataset).load(seed=config.seed, **config.dataset_options)
    with seeded(0):                        # a probe for applicability; leaves the caller's RNG alone
        model = model_for(data)
    names = applicable_methods(data, model)[0] if methods is None else list(methods)
    forget = data.check_forget(forget if forget is not None else select_forget(data, removal_size, config.seed))
    for name in {ORACLE, *names}:
        check_applicable(name, data, model, config, forget)
    return data, names, forget


def run_trial(config: Config, methods: Sequence[str] | None = None, removal_size: int = 1,
              data: Data | None = None, trained: Trained | None = None, forget=None,
              track_series: bool = True) -> list[dict]:
    """Train `m_c` (unless `trained` is given), run `methods` (default: all that apply) and return one record per model.

    Every method is checked against the data and model before any training.
    The oracle (naive retraining) always runs: every metric compares with it.
    With `track_series`, records carry per-epoch S and d against `m_c`/`m_o`
    (the curves paper 000 plots) for methods that train. Runs under the thread policy
    (`unlearning.training.threads`: one thread for small models, the CPUs given for the others).
    """
    provenance.tree()                      # the git tree as the run starts, read once (saved runs carry it)
    # the policy of the spec the data carries; else (data to be loaded, or built by hand) the config's dataset's
    with threads.policy(data.spec if data is not None and data.spec is not None else config.dataset):
        return _run_trial(config, methods, removal_size, data, trained, forget, track_series)


def _run_trial(config, methods, removal_size, data, trained, forget, track_series) -> list[dict]:
    data, names, forget = prepare(config, methods, removal_size, data, forget)
    if trained is None:
        with progress.labelled("original"):
            trained = train_original(data, config)
    with progress.labelled(f"oracle ({ORACLE})"):
        oracle = unlearn(ORACLE, trained, data, forget, config)
    log.info("%s oracle: %d epochs, %.2fs", data.name, oracle.cost.epochs, oracle.cost.seconds)
    spec = spec_of(data)
    ref = Reference(data, trained, forget, oracle, config, d_on=spec.d_on, sets=spec.eval_sets)
    records = [ref.original_record()]
    for name in names:
        series, on_epoch = ref.tracker() if track_series and name != ORACLE else (None, None)
        with progress.labelled(name):
            result = oracle if name == ORACLE else unlearn(name, trained, data, forget, config, on_epoch=on_epoch)
        rec = ref.record(name, result.cost, result.model, result.details, series)
        records.append(rec)
        log.info("%s %s: %d epochs, %.3fs, d=%.4g", data.name, name, rec["epochs"], rec["seconds"], rec["d"])
    return records


def environment() -> dict:
    """Versions and machine facts every saved run carries; `provenance` holds what moves the numbers (CPU model,
    ISA flags and the ISA torch dispatches to, oneDNN / MKL versions, the git tree's commit and dirty flag:
    `unlearning.running.provenance`)."""
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads(), provenance.KEY: provenance.collect()}


