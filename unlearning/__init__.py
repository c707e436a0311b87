"""unlearning-bench: machine-unlearning methods, the papers' datasets and metrics.

    from unlearning import get_config, load_dataset, train_original, unlearn
    cfg = get_config("synthetic", seed=0)
    data = load_dataset("synthetic", seed=0)
    m_c = train_original(data, cfg)
    result = unlearn("weight_pruning", m_c, data, [data.target_index], cfg)

The names below are imported on first use (PEP 562), so torch-free parts of the package
(`unlearning.common.schema`, the report generator `unlearning.bench.report`) import without torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Config": "config", "Convergence": "config", "TrainConfig": "config", "get_config": "methods.settings",
    "PruningConfig": "methods.weight_pruning", "RelabelConfig": "methods.random_relabel",
    "Data": "data", "DataUnavailableError": "data", "load_dataset": "data.registry", "DatasetSpec": "data.registry",
    "DATASETS": "data.registry", "register_dataset": "data.registry",
    "run_trial": "running.experiment", "select_forget": "running.experiment",
    "METHODS": "methods", "UnlearnResult": "methods", "register": "methods", "unlearn": "methods",
    "deletion_metric": "evaluation.metrics", "evaluate": "evaluation.metrics", "logit_l1": "evaluation.metrics",
    "build_model": "training.models", "resolve_device": "training.models",
    "Trained": "training.train", "TrainRecord": "training.train", "fit": "training.train",
    "train_original": "training.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unlearning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
