"""unlearning-bench: machine-unlearning methods, the papers' datasets and metrics.

    from unlearning import get_config, load_dataset, train_original, unlearn
    cfg = get_config("synthetic", seed=0)
    data = load_dataset("synthetic", seed=0)
    m_c = train_original(data, cfg)
    result = unlearn("weight_pruning", m_c, data, [data.target_index], cfg)
"""

from .config import Config, Convergence, PruningConfig, RelabelConfig, TrainConfig, get_config
from .data import Data, DataUnavailableError, load_dataset
from .experiment import run_trial, select_forget
from .methods import METHODS, UnlearnResult, register, unlearn
from .metrics import deletion_metric, evaluate, logit_l1
from .models import build_model, resolve_device
from .train import Trained, TrainRecord, fit, train_original

__version__ = "0.1.0"

__all__ = ["Config", "Convergence", "PruningConfig", "RelabelConfig", "TrainConfig", "get_config", "Data",
           "DataUnavailableError", "load_dataset", "run_trial", "select_forget", "METHODS", "UnlearnResult",
           "register", "unlearn", "deletion_metric", "evaluate", "logit_l1", "build_model", "resolve_device",
           "Trained", "TrainRecord", "fit", "train_original"]
