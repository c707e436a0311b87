"""Every record the report read, as one typed Parquet table: `records.parquet`.

    import pandas as pd
    df = pd.read_parquet("reports/records.parquet")          # one row per benchmark cell, no JSON parsing

Columns: first where each record comes from (`RUN_COLUMNS`: the run file, its datetime, commit, torch version and
pytest-benchmark's id of the cell), then every key of the record schema (`unlearning.common.schema.KEYS`, in its order),
each with the Arrow type of its schema type (`schema.arrow_type`): int -> int64, float -> double, bool -> bool,
str -> string, list[float] / list[int] -> list<double> / list<int64>, and the nested values (the dicts `config` and
`data_info`, series of series) as JSON text (`schema.JSON_TYPES`). A value a record does not carry is null. Keys a
plug-in method added beyond the schema go into one JSON column, `extra`. Which column is a timing:
`schema.is_timing(name)`. The table's metadata holds the schema version and, per column, the schema's unit and
meaning and whether it is a timing (`pyarrow.parquet.read_schema(path).field(name).metadata`).

Rows: every record of the shown profile, of every torch version read (`Loaded.by_torch`), in load order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ...common import schema

FILE = "records.parquet"
RUN_COLUMNS = (("run_file", "string", "the saved run the record was read from, as given"),
               ("run_datetime", "string", "the run's datetime (pytest-benchmark's)"),
               ("commit", "string", "the commit the run was made from"),
               ("torch", "string", "the torch version of the run"),
               ("fullname", "string", "pytest-benchmark's id of the cell"))
EXTRA = "extra"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _convert(values: pd.Series, kind: str) -> list:
    """One column's values as Python objects of the schema type (None for a value not carried)."""
    def one(v):
        if isinstance(v, (list, dict)):
            return json.dumps(v, sort_keys=True, default=str) if kind == "json" else v
        if _missing(v):
            return None
        if kind == "int":
            return int(v)
        if kind == "float":
            return float(v)
        if kind == "bool":
            return bool(v)
        return str(v) if kind in ("str", "json") else v
    return [one(v) for v in values]


def _extra(df: pd.DataFrame) -> list:
    known = {k.name for k in schema.KEYS}
    cols = [c for c in df.columns if not c.startswith(("bench.", "run.")) and c not in known]
    rows = df[cols].to_dict("records") if cols else [{} for _ in range(len(df))]
    return [json.dumps({k: v for k, v in r.items() if not _missing(v)}, sort_keys=True, default=str) or None
            for r in rows]


def table(df: pd.DataFrame, commits: dict[str, str]):
    """The records of `df` (the loader's frame) as a pyarrow Table with the schema's columns and types."""
    import pyarrow as pa

    column = {"run_file": df["run.label"], "run_datetime": df["run.datetime"],
              "commit": df["run.label"].map(commits), "torch": df["run.torch"], "fullname": df["bench.fullname"]}
    arrays, fields = [], []
    for name, _, meaning in RUN_COLUMNS:
        arrays.append(pa.array(_convert(column[name], "str"), pa.string()))
        fields.append(pa.field(name, pa.string(), metadata={"meaning": meaning}))
    for key in schema.KEYS:
        typ = schema.arrow_type(key.name)
        arrow = {"int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
                 "list<double>": pa.list_(pa.float64()), "list<int64>": pa.list_(pa.int64())}[typ]
        values = df[key.name] if key.name in df.columns else pd.Series([None] * len(df), dtype=object)
        kind = "json" if key.type in schema.JSON_TYPES else "list" if key.type.startswith("list") else key.type
        arrays.append(pa.array(_convert(values, kind), arrow))
        fields.append(pa.field(key.name, arrow, metadata={"unit": key.unit, "meaning": key.meaning,
                                                          "timing": str(schema.is_timing(key.name)).lower()}))
    arrays.append(pa.array(_extra(df), pa.string()))
    fields.append(pa.field(EXTRA, pa.string(), metadata={"meaning": "keys beyond the schema (plug-ins), as JSON"}))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={"schema_version":
                                                                           str(schema.SCHEMA_VERSION)}))


def write(loaded, folder: Path) -> list[str]:
    """Write `records.parquet` into `folder`; its file name."""
    import pyarrow.parquet as pq

    frames = [df for _, df in sorted(loaded.by_torch.items())]
    df = pd.concat(frames, ignore_index=True) if frames else loaded.records
    commits = {r.label: r.commit for r in loaded.runs}
    pq.write_table(table(df, commits), Path(folder) / FILE)
    return [FILE]
