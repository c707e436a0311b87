"""The report's tables, one class each (see `base.Table`): built from the records with pandas, written as
Markdown, CSV and LaTeX, each with the sentences its numbers support."""

from __future__ import annotations

import pandas as pd

from .base import Cell, Context, Table
from .forgetting import Forgetting, ModelsNeeded, VerdictErrorRates
from .grid import Grid
from .headline import Headline, TorchVersions
from .overhead import Ensemble, Overhead
from .paper000 import Paper000California, Paper000Table1
from .paper002 import Paper002Table1
from .ranking import Ranking, TunedPoints
from .sweeps import RelabelLr, Tradeoff

# built from the records, in the report's order; the paper tables always (the paper's numbers at least)
FROM_RECORDS: tuple[type[Table], ...] = (Paper000Table1, Paper000California, Paper002Table1, RelabelLr, Grid,
                                         Forgetting, TunedPoints, VerdictErrorRates, ModelsNeeded, Tradeoff, Overhead,
                                         Ensemble)
NAMES = tuple(t.name for t in (Headline, Ranking, *FROM_RECORDS, TorchVersions))

__all__ = ["FROM_RECORDS", "NAMES", "Cell", "Context", "Ensemble", "Forgetting", "Grid", "Headline", "ModelsNeeded",
           "Overhead", "Paper000California", "Paper000Table1", "Paper002Table1", "Ranking", "RelabelLr", "Table",
           "TorchVersions", "Tradeoff", "TunedPoints", "VerdictErrorRates", "build"]


def build(df: pd.DataFrame, ctx: Context) -> dict[str, Table]:
    """Every table the records support, by name; the ranking (from the forgetting table) first."""
    built = {name: t for name, t in ((t.name, t.build(df, ctx)) for t in FROM_RECORDS) if t is not None}
    forgetting = built.get(Forgetting.name)
    return {**({Ranking.name: Ranking.of(forgetting, ctx)} if forgetting is not None else {}), **built}
