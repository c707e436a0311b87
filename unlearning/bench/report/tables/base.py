"""What every table shares: the run's context, the Markdown/CSV/LaTeX writers, and its headline cells.

A table has a numeric frame (`data`, the CSV: means, sds, counts, the mean's 95 % interval in `<key>_lo` / `<key>_hi`,
the paper's values, ours − paper and whether the paper's value lies in our interval) and a formatted one (`display`,
the Markdown with its notes and sentences: "mean [lo, hi]", fixed digits; LaTeX too for the papers' tables, `PAPER`).
Cells without a record are empty (NaN), never zero, and a note says why; rows are sorted and numbers formatted by
fixed rules, so the same input gives the same bytes. A subclass's `build(...)` makes it from the records (None where
they hold nothing for it), `sentences()` says what its numbers show, `cells()` names its key numbers (the headline's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..common import INTERVAL_NOTE, NAN  # noqa: F401  (INTERVAL_NOTE: the tables' shared note on [lo, hi])

# notes that several tables share: which way the deletion metric is better, and what random relabeling's cost is
D_NOTE = ("d: paper 000's deletion metric (S to m_c − S to m_o) / |Y|, S the logit L1 distance to the control model "
          "m_c (trained with the removed points) and to the oracle m_o (retrained without them); higher is better: "
          "d > 0 means closer to the oracle than to the control.")
RELABEL_COST = ("random_relabel answers each removal request with one optimizer step (on the point under k' other "
                "labels): its cost is one step per request, counted in seconds, steps and samples; it runs no "
                "epochs, so its epochs are 0 by construction, not a no-op.")
LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "≈": r"$\approx$", "—": "---", "–": "--", "×": r"$\times$",
                 "≤": r"$\leq$", "→": r"$\to$", "−": "$-$", "∪": r"$\cup$", "↔": r"$\leftrightarrow$"}
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "<": "$<$", ">": "$>$", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}", **{ch: "\\" + ch for ch in "&%$#_{}"}}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, LATEX_SYMBOLS.get(ch, ch)) for ch in text)


@dataclass
class Context:
    profile: str
    torch: str
    device: str

    @property
    def is_paper(self) -> bool:
        return self.profile == "paper"

    def caption(self, title: str) -> str:
        prof = f"profile: {self.profile}" + ("" if self.is_paper else " — not the paper reproduction")
        return f"{title} ({prof}; torch {self.torch}; {self.device or 'device unknown'})"


@dataclass
class Cell:
    """One key number of a table: ours, with its 95 % interval [lo, hi] (NaN: none, e.g. one value), beside the
    paper's (NaN where the paper has none)."""

    key: str
    label: str
    paper: float
    ours: float
    spec: str
    lo: float = NAN
    hi: float = NAN


@dataclass
class Table:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    PAPER: ClassVar[bool] = False         # a table of the papers': its cells head the report, its `.tex` is written

    ctx: Context
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    has_records: bool = True

    @classmethod
    def make(cls, ctx: Context, data: pd.DataFrame, display: pd.DataFrame, notes: list[str],
             has_records: bool = True, **state):
        """The table with the `profile` column first in `data`; `state`: the subclass's own fields."""
        data = data.reset_index(drop=True)
        data.insert(0, "profile", ctx.profile)
        return cls(ctx, data, display.reset_index(drop=True), notes, has_records, **state)

    @property
    def caption(self) -> str:
        return self.ctx.caption(self.title)

    def sentences(self) -> list[str]:
        """What the table's numbers show, in words (the README puts them under the table)."""
        return []

    def cells(self, extended: bool = False) -> list[Cell]:
        """The key numbers (the headline's; `extended` adds those only the torch-version comparison shows)."""
        return []

    # -- writing --------------------------------------------------------------------------------------------
    def markdown(self, sentences: bool = False) -> str:
        """The caption, the table and its notes; with `sentences`, what its numbers show in words below (the
        table's own `.md` file has them: the report's page links to it)."""
        lines = [f"**{self.caption}**", "", self.display.to_markdown(index=False, disable_numparse=True)]
        if self.notes:
            lines += ["", *(f"- {n}" for n in self.notes)]
        if sentences and (said := self.sentences()):
            lines += ["", *(f"- {s}" for s in said)]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        return self.data.to_csv(index=False, float_format="%.6g", lineterminator="\n", na_rep="")

    def latex(self) -> str:
        disp = self.display.map(lambda v: latex_escape(str(v)))
        disp.columns = [latex_escape(str(c)) for c in disp.columns]
        tex = disp.to_latex(index=False, escape=False, caption=latex_escape(self.caption), label=f"tab:{self.name}",
                            position="htbp")
        if self.notes:
            notes = "\n".join(r"\par\footnotesize " + latex_escape(n) for n in self.notes)
            tex = tex.replace("\\end{table}", notes + "\n\\end{table}")
        return tex

    def write(self, folder: Path, markdown: bool = True) -> list[str]:
        """Its CSV, its Markdown (unless the report's page shows it: `markdown` False) and, for `PAPER`, its LaTeX."""
        files = {**({f"{self.name}.md": self.markdown(sentences=True)} if markdown else {}),
                 f"{self.name}.csv": self.csv(), **({f"{self.name}.tex": self.latex()} if self.PAPER else {})}
        for fname, text in files.items():
            (folder / fname).write_text(text, encoding="utf-8", newline="\n")
        return sorted(files)
