"""records.parquet (`unlearning.bench.report.export`): every record read, one typed row each, the schema's columns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

from unlearning.bench.report import export  # noqa: E402
from unlearning.bench.report.load import load  # noqa: E402
from unlearning.common import schema  # noqa: E402

RUN = Path(__file__).resolve().parent / "data" / "runs_v2" / "0016_paper-lr-sweep.json"     # once a committed run


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    loaded = load([str(RUN)])
    assert export.write(loaded, folder) == [export.FILE]
    return loaded, folder / export.FILE


def test_every_record_is_one_row_with_the_schemas_columns_in_order(written):
    loaded, path = written
    df = pd.read_parquet(path)
    assert len(df) == len(loaded.records)
    names = [c[0] for c in export.RUN_COLUMNS] + [k.name for k in schema.KEYS] + [export.EXTRA]
    assert list(df.columns) == names
    raw = {b["fullname"]: b["extra_info"] for b in json.loads(RUN.read_text())["benchmarks"]}
    for _, row in df.iterrows():
        info = raw[row["fullname"]]
        assert row["method"] == info["method"] and row["seed"] == info["seed"]
        assert row["test_acc"] == pytest.approx(info["test_acc"]) or (math.isnan(row["test_acc"])
                                                                       and info["test_acc"] is None)
        assert json.loads(row["config"]) == info["config"]
        assert row["commit"] == json.loads(RUN.read_text())["commit_info"]["id"]


def test_each_column_has_its_schema_type_and_says_its_unit_and_whether_it_is_a_timing(written):
    _, path = written
    arrow = pq.read_schema(path)
    for key in schema.KEYS:
        field = arrow.field(key.name)
        shown = str(field.type).replace("element: ", "").replace("item: ", "")     # list<element: int64> -> list<int64>
        assert shown == schema.arrow_type(key.name), key.name
        assert field.metadata[b"unit"].decode() == key.unit
        assert field.metadata[b"timing"] == (b"true" if schema.is_timing(key.name) else b"false")
    assert arrow.metadata[b"schema_version"] == str(schema.SCHEMA_VERSION).encode()
    assert schema.is_timing("seconds") and schema.is_timing("speedup_vs_naive") and not schema.is_timing("test_acc")
    with pytest.raises(KeyError):
        schema.arrow_type("no_such_key")
