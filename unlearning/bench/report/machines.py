"""Which machines, versions and trees the records come from: the table cells that average runs of different CPU
types or torch versions (`mixed`), and the runs made from a dirty tree (`dirty_lines`).

Seeds give bit-identical weights only on one CPU type (the ISA torch dispatches to), torch version and thread count
(docs/determinism.md); elsewhere oneDNN and MKL choose other kernels and the numbers move within seed noise. So the
report names every group of records (one paper's table on one dataset: `paper`, `table`, `dataset`) whose runs
differ: the cells (records whose benchmark ids differ only in seed or trial, `cell_id`) that average such runs, or,
where each cell comes from one kind of run, the group itself (its rows compare records of different runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from .common import plural

# a run's fact (a column `load.to_frame` gives each record) -> how the report names it
FACTS = (("run.cpu_type", "CPU type"), ("run.cpu_capability", "dispatched ISA"), ("run.torch", "torch"))
GROUP = ("paper", "table", "dataset")
REPEAT = re.compile(r"^(seed|trial)\d+$")       # parts of a benchmark id that only tell repeats of a cell apart
CELLS_SHOWN = 5                                 # cells named per group; the rest are counted


def cell_id(fullname: str) -> str:
    """A benchmark's cell: its test and id without the parts that only tell repeats apart (seeds, trials):
    "benchmarks/test_grid.py::test_grid[digits-noop-n50-seed1]" -> "test_grid[digits-noop-n50]"."""
    name = str(fullname).split("::")[-1]
    func, bracket, params = name.partition("[")
    if not bracket:
        return name
    kept = [p for p in params.removesuffix("]").split("-") if not REPEAT.match(p)]
    return f"{func}[{'-'.join(kept)}]"


# ISA families, for the provenance table: (the flag or flag prefix, its name), narrowest first
FAMILIES = (("sse4_2", "SSE4.2"), ("avx2", "AVX2"), ("fma", "FMA"), ("avx512", "AVX-512"), ("avx_vnni", "AVX-VNNI"),
            ("amx", "AMX"), ("asimd", "ASIMD"), ("sve", "SVE"), ("sme", "SME"))


def isa_summary(flags) -> str:
    """The ISA families among `flags` ("SSE4.2, AVX2, FMA, AVX-512, AMX"); '' for none."""
    return ", ".join(name for prefix, name in FAMILIES if any(f.startswith(prefix) for f in flags))


def _differs(g: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """Each run fact on which the records of `g` differ: fact -> value -> the runs (labels, sorted) with it."""
    out = {}
    for column, label in FACTS:
        known = g[g[column].notna()] if column in g.columns else g.iloc[0:0]
        values = {str(v): sorted(set(h["run.label"])) for v, h in known.groupby(column, sort=True)}
        if len(values) > 1:
            out[label] = values
    return out


@dataclass(frozen=True)
class Mixed:
    """One group of records (a paper's table on one dataset) that holds runs which differ in CPU type or torch."""

    paper: str
    table: str
    dataset: str
    differs: dict[str, dict[str, list[str]]]    # fact -> value -> the runs with it
    cells: list[str]                            # cells whose own records come from such runs (see the module doc)

    def what(self) -> str:
        """"CPU model (AMD EPYC: a.json; Intel(R) Xeon(R) Processor: b.json)"."""
        return "; ".join(f"{fact} (" + "; ".join(f"{v}: {', '.join(runs)}" for v, runs in values.items()) + ")"
                         for fact, values in self.differs.items())

    def __str__(self) -> str:
        where = f"paper {self.paper} table {self.table}, {self.dataset}"
        if not self.cells:
            return (f"{where}: each cell's records come from one kind of run, but the cells compared in its rows come "
                    f"from runs that differ in {self.what()}")
        shown = ", ".join(f"`{c}`" for c in self.cells[:CELLS_SHOWN])
        more = f" and {len(self.cells) - CELLS_SHOWN} more" if len(self.cells) > CELLS_SHOWN else ""
        n = len(self.cells)
        return (f"{where}: {n} {plural(n, 'cell')} average records of runs that differ in {self.what()}: "
                f"{shown}{more}")


def _label(v) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def mixed(df: pd.DataFrame) -> list[Mixed]:
    """Every group of `df`'s records (one torch version's, as `load` gives them, or any frame with the run columns)
    whose runs differ in CPU model, dispatched ISA or torch version; sorted by paper, table, dataset."""
    if df.empty or "run.label" not in df.columns:
        return []
    keys = [k for k in GROUP if k in df.columns]
    out = []
    for key, g in df.groupby(keys, sort=True, dropna=False) if keys else [((), df)]:
        differs = _differs(g)
        if not differs:
            continue
        group = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        cells = g["bench.fullname"].map(cell_id) if "bench.fullname" in g.columns else pd.Series("", index=g.index)
        averaged = sorted(c for c, h in g.groupby(cells, sort=True) if _differs(h))
        out.append(Mixed(*(_label(group.get(k)) for k in GROUP), differs=differs, cells=averaged))
    return out


def dirty_line(run) -> str:
    """"`label`: commit 1fe43abd93b0, dirty by commit_info.dirty; 3 uncommitted paths: a.py, b.py, c.md"."""
    commit = f"commit {run.commit[:12]}" if run.commit else "commit unknown"
    by = ", ".join(run.dirty_by) or "commit_info.dirty"
    if run.changes is None:
        paths = "which paths were uncommitted is not recorded"
    else:
        more = run.changes - len(run.changed_paths)
        paths = (f"{run.changes} uncommitted {plural(run.changes, 'path')}: " + ", ".join(run.changed_paths)
                 + (f" and {more} more" if more > 0 else ""))
    return f"`{run.label}`: {commit}, dirty by {by}; {paths}"


def dirty_lines(runs) -> list[str]:
    """One line per run made from a working tree with uncommitted changes (`Run.dirty`)."""
    return [dirty_line(r) for r in runs if r.dirty]
