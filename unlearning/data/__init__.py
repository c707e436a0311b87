"""Datasets: the `Data` container and the loaders (`synthetic`, `california`, `mnist`).

Importing this package registers every loader, so `load_dataset(name, ...)`
works for all of them. Real-data files are found and verified by
`unlearning.data.fetch` (local ``UNLEARNING_DATA_DIR`` first, then a cached
download); URLs and checksums live in `unlearning.data.sources`.
"""

from . import base, california, mnist, synthetic  # noqa: F401  (imports register the loaders)
from .base import LOADERS, ChecksumError, Data, DataUnavailableError, load_dataset, probe_data
from .fetch import resolve_data_dir

__all__ = ["Data", "load_dataset", "probe_data", "LOADERS", "DataUnavailableError", "ChecksumError", "resolve_data_dir"]
