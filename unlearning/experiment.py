"""One experiment, end to end: dataset → original model → every method → metrics → flat records.

`run_trial` trains the control `m_c` once, retrains the oracle `m_o` (naive
retraining) once, runs every other method on copies of `m_c`, and returns one
flat, JSON-safe record per model, each comparing it with `m_c` and `m_o`.
`save_json` writes records atomically, so an interrupted run never leaves a
half-written file where a result used to be.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .config import Config
from .data import Data, load_dataset
from .methods import METHODS, UnlearnResult, check_applicable, get_method, unlearn
from .models import build_model
from .metrics import deletion_metric, evaluate, ratio
from .train import TrainRecord, Trained, predict, train_original

log = logging.getLogger(__name__)

SCHEMA = "unlearning-bench/run/1"
ORACLE = "naive_retrain"


def select_forget(data: Data, size: int = 1, seed: int = 0) -> torch.Tensor:
    """The points to remove: the dataset's own target first (paper 000), then seeded random others.

    Datasets without a target (MNIST) get `size` seeded random training points.
    """
    if not 1 <= size < data.n_train:
        raise ValueError(f"removal size {size}: allowed 1..{data.n_train - 1} for {data.name}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.n_train, generator=gen)
    if data.target_index is None:
        return perm[:size]
    rest = perm[perm != data.target_index][: size - 1]
    return torch.cat([torch.tensor([data.target_index]), rest])


def applicable_methods(data: Data, model, names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Split `names` into those that run on this data/model and {name: why not} for the rest."""
    ok, skipped = [], {}
    for name in names:
        reason = get_method(name).applies(data, model)
        if reason:
            skipped[name] = reason
        else:
            ok.append(name)
    return ok, skipped


def _scalars(details: dict) -> dict:
    """Flatten method details to JSON-safe scalars (lists kept as lists of numbers)."""
    flat = {}
    for k, v in details.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            flat[k] = v
        elif isinstance(v, (list, tuple)):
            flat[k] = list(v)
    return flat


def _record(name: str, cost: TrainRecord, model, data: Data, forget, outputs, oracle: UnlearnResult,
            config: Config, details: dict, series: dict | None) -> dict:
    rec = {"dataset": data.name, "method": name, "removal_size": len(forget), "seed": config.seed,
           "device": str(next(model.parameters()).device), **cost.cost(),
           "initial_loss": cost.initial_loss,
           "final_loss": cost.loss_history[-1] if cost.loss_history else cost.initial_loss,
           "oracle_epochs": oracle.cost.epochs, "oracle_seconds": oracle.cost.seconds,
           "oracle_samples": oracle.cost.samples,
           "epoch_ratio": ratio(cost.epochs, oracle.cost.epochs),
           "speedup_seconds": ratio(oracle.cost.seconds, cost.seconds),
           "speedup_samples": ratio(oracle.cost.samples, cost.samples),
           **evaluate(model, data, forget), **outputs, **_scalars(details)}
    if series is not None:
        rec.update(loss_series=list(cost.loss_history), **series)
    return rec


def run_trial(config: Config, methods: Sequence[str] | None = None, removal_size: int = 1,
              data: Data | None = None, trained: Trained | None = None, forget=None,
              track_series: bool = True) -> list[dict]:
    """Train `m_c` (unless given), run `methods` (default: all that apply) and return one record per model.

    Every method is checked against the data and model before any training.
    The oracle (naive retraining) always runs: every metric compares with it.
    With `track_series`, records carry per-epoch S and d against `m_c`/`m_o`
    (the curves paper 000 plots) for methods that train.
    """
    data = data if data is not None else load_dataset(config.dataset, seed=config.seed, **config.dataset_options)
    model = trained.model if trained is not None else build_model(data.name)
    names = applicable_methods(data, model, METHODS)[0] if methods is None else list(methods)
    forget = data.check_forget(forget if forget is not None else select_forget(data, removal_size, config.seed))
    for name in {ORACLE, *names}:
        check_applicable(name, data, model, config, forget)
    if trained is None:
        trained = train_original(data, config)

    x_eval = data.x_train
    out_c = predict(trained.model, x_eval)
    oracle = unlearn(ORACLE, trained, data, forget, config)
    out_o = predict(oracle.model, x_eval)
    log.info("%s oracle: %d epochs, %.2fs", data.name, oracle.cost.epochs, oracle.cost.seconds)

    records = [_record("original", trained.record, trained.model, data, forget,
                       deletion_metric(out_c, out_c, out_o, x_eval), oracle, config,
                       {"init_redraws": trained.init_redraws}, None)]
    for name in names:
        series = on_epoch = None
        if track_series and name != ORACLE:
            series = {"s_to_control_series": [], "s_to_oracle_series": [], "d_series": []}

            def on_epoch(epoch, model, series=series):
                m = deletion_metric(model, out_c, out_o, x_eval)
                for key in ("s_to_control", "s_to_oracle", "d"):
                    series[f"{key}_series"].append(m[key])

        result = oracle if name == ORACLE else unlearn(name, trained, data, forget, config, on_epoch=on_epoch)
        if series is not None and not series["d_series"]:
            series = None                 # the method does not train in epochs (random relabeling)
        rec = _record(name, result.cost, result.model, data, forget,
                      deletion_metric(result.model, out_c, out_o, x_eval), oracle, config, result.details, series)
        records.append(rec)
        log.info("%s %s: %d epochs, %.3fs, d=%.4g", data.name, name, rec["epochs"], rec["seconds"], rec["d"])
    return records


def environment() -> dict:
    """Versions and machine facts every saved run carries."""
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads()}


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def save_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write `payload` as JSON atomically (temp file in the same folder, then rename); NaN becomes null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_json_safe(payload), fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
