"""The in-memory `Data` container, the seeded subset rule, and verified file fetching.

The datasets themselves (one module each: loader, model, preset, provenance) live in
`unlearning.datasets`; `unlearning.datasets.load_dataset(name)` loads one. Real-data
files are found and verified by `unlearning.data.fetch` (local ``UNLEARNING_DATA_DIR``
first, then a cached download), described by `unlearning.data.sources.RemoteFile`.
"""

from .base import TASKS, ChecksumError, Data, DataUnavailableError, seeded_split
from .fetch import resolve_data_dir

__all__ = ["TASKS", "ChecksumError", "Data", "DataUnavailableError", "resolve_data_dir", "seeded_split"]
