"""Data and datasets, one room: the in-memory `Data` container and its seeded subset rule (`base`), verified file
fetching and caching (`fetch`, `sources`), the dataset registry (`registry`: `DatasetSpec`, `register_dataset`,
`load_dataset`), one module per dataset (`synthetic`, `california`, `digits`, `mnist`) and the forget-set
regimes (`forget_sets`).

Every public module of this package is imported here, so each dataset module registers itself (no list to
edit); datasets of other packages come from the entry-point group `unlearning_bench.datasets`
(`unlearning.common.plugins`). Real-data files are found and verified by `fetch` (local ``UNLEARNING_DATA_DIR``
first, then a cached download).
"""

from ..common.plugins import import_modules, load_entry_points
from .base import TASKS, ChecksumError, Data, DataUnavailableError, seeded_split
from .fetch import resolve_data_dir
from .registry import DATASETS, ENTRY_POINT_GROUP

import_modules(__name__, __path__)
load_entry_points(ENTRY_POINT_GROUP, DATASETS)

__all__ = ["TASKS", "ChecksumError", "Data", "DataUnavailableError", "resolve_data_dir", "seeded_split"]
