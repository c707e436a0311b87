"""One experiment, end to end: dataset → original model → every method → metrics → flat records.

`run_trial` trains the control `m_c` once, retrains the oracle `m_o` (naive
retraining) once, runs every other method on copies of `m_c`, and returns one
flat, JSON-safe record per model, each comparing it with `m_c` and `m_o`.
`save_json` writes records atomically, so an interrupted run never leaves a
half-written file where a result used to be; `abandoned_temps` finds the temp
files of saves that were killed mid-way.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import platform
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import torch

from . import progress, provenance, threads
from .config import Config
from .data import Data
from .datasets import get_dataset, load_dataset
from .forget_sets import select_random as select_forget
from .methods import UnlearnResult, applicability, check_applicable, unlearn
from .metrics import EVAL_SETS, deletion_metric, evaluate, ratio
from .models import build_model, seeded
from .train import Trained, TrainRecord, predict, train_original

try:
    import fcntl
except ImportError:                        # Windows: saves are not locked (every temp file found is reported)
    fcntl = None

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
    """One flat record of a model (keys: `unlearning.schema`): what producing it cost, and
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
    """Load the data and check every method, the forget set and the config before any training."""
    data = data if data is not None else load_dataset(config.dataset, seed=config.seed, **config.dataset_options)
    with seeded(0):                        # a probe for applicability; leaves the caller's RNG alone
        model = build_model(data.name)
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
    (`unlearning.threads`: one thread for small models, the CPUs given for the others).
    """
    provenance.tree()                      # the git tree as the run starts, read once (saved runs carry it)
    with threads.policy(config.dataset):
        return _run_trial(config, methods, removal_size, data, trained, forget, track_series)


def _run_trial(config, methods, removal_size, data, trained, forget, track_series) -> list[dict]:
    data, names, forget = prepare(config, methods, removal_size, data, forget)
    if trained is None:
        with progress.labelled("original"):
            trained = train_original(data, config)
    with progress.labelled(f"oracle ({ORACLE})"):
        oracle = unlearn(ORACLE, trained, data, forget, config)
    log.info("%s oracle: %d epochs, %.2fs", data.name, oracle.cost.epochs, oracle.cost.seconds)
    spec = get_dataset(data.name)
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
    `unlearning.provenance`)."""
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads(), provenance.KEY: provenance.collect()}


def json_safe(obj):
    """`obj` with NaN and infinities as None (JSON has neither), tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# A save's temp file: `.NAME.XXXXXXXX.tmp` beside NAME (tempfile.mkstemp's random part), locked
# (flock) by the process writing it for as long as it exists, so a temp file nobody holds was left
# by a save that was killed (see `abandoned_temps`).
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def _lock(fd: int, *, shared: bool = False, wait: bool = True) -> bool:
    """flock `fd` (exclusive, or `shared`); without `wait`, False when another process holds it.
    True where the system has no flock (Windows): no lock, nothing to wait for."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _staged(path: Path, payload: dict) -> Iterator[Path]:
    """A temp file beside `path` holding `payload` as JSON, written, synced and given the permissions
    any new file of the user's gets (0666 less the umask, not mkstemp's private 0600); locked while it
    exists and removed on exit, whatever happens (its content lives on under the name the body linked
    or renamed it to). `payload` is serialised before any file is made."""
    buffer = io.StringIO()
    json.dump(json_safe(payload), buffer, indent=1, allow_nan=False)
    data = buffer.getvalue().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        _lock(fd)
        _write_all(fd, data)
        os.fsync(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
    finally:
        try:
            tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)


def save_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write `payload` as JSON atomically (temp file in the same folder, then rename); NaN becomes null.
    Any failure (a full disk, a read-only or forbidden folder) raises the OSError and leaves `path` as it was."""
    path = Path(path)
    with _staged(path, payload) as tmp:
        os.replace(tmp, path)
    return path


def create_json(path: str | os.PathLike, payload: dict, unique: bool = False) -> Path:
    """Create `path` holding `payload`, never replacing a file (a hard link of the written temp file:
    exclusive and atomic, so no reader ever sees it empty or half written).

    With `unique`, a taken name becomes `<stem>-2.json`, `<stem>-3.json`, ... (two runs
    started in the same second each get their own file); without, a taken name is a
    FileExistsError. Later writes to the returned path go through `save_json`.
    """
    path = Path(path)
    with _staged(path, payload) as tmp:
        for k in range(1, 10_000):
            candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
            try:
                os.link(tmp, candidate)
                return candidate
            except FileExistsError:
                if not unique:
                    raise
    raise FileExistsError(f"{path}: 9999 files of that name exist already")


@dataclass(frozen=True)
class LeftTemp:
    """A temp file of `save_json` / `create_json` that no running save holds: its save was killed.

    `target`: the file it was being saved as. `payload`: its JSON, or None with `problem` saying why
    it cannot be read (torn by the kill, empty). `also`: another name of the same file when the kill
    came after the save had linked it there (its content is saved; the temp is a spare name).
    """

    path: Path
    target: Path
    payload: dict | None
    problem: str | None
    also: Path | None


def _read_temp(path: Path) -> tuple[dict | None, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc})"
    if not text:
        return None, "empty (killed before anything was written)"
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return None, f"torn: not valid JSON ({exc}; {len(text.encode())} bytes)"
    if not isinstance(payload, dict):
        return None, f"not a saved object (JSON {type(payload).__name__})"
    return payload, None


def _held(path: Path) -> bool:
    """Whether a running save holds `path` (its flock); False where it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return not _lock(fd, shared=True, wait=False)
    finally:
        os.close(fd)


def _other_name(path: Path) -> Path | None:
    """Another name of the file `path` in its folder (a hard link), or None."""
    st = path.stat()
    if st.st_nlink < 2:
        return None
    for entry in path.parent.iterdir():
        if entry != path and not entry.is_symlink() and entry.is_file() and os.path.samestat(entry.stat(), st):
            return entry
    return None


def abandoned_temps(folder: str | os.PathLike) -> list[LeftTemp]:
    """The temp files in `folder` that saves killed mid-way left behind (a save in progress holds its
    own and is not listed), sorted by name; none where the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = TEMP_NAME.match(path.name)
        if not match or path.is_symlink() or not path.is_file() or _held(path):
            continue
        try:
            also = _other_name(path)
        except FileNotFoundError:              # its save finished meanwhile
            continue
        payload, problem = _read_temp(path)
        found.append(LeftTemp(path, folder / match["target"], payload, problem, also))
    return found
