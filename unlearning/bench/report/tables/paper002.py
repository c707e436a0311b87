"""Paper 002 (random relabeling): Table 1, MNIST accuracy after unlearning."""

from __future__ import annotations

import pandas as pd

from .. import paper as P
from ..common import IN_CI_WORDS, NAN, beside, col, covered, delta, missing, num, rules, select, shown, summary, versus
from .base import INTERVAL_NOTE, Cell, Context, Table

SHORT = {"original": "original", "naive_retrain": "naive", "random_relabel": "relabel"}
ACCURACIES = (("test_acc", "test acc %"), ("forget_acc", "unlearned acc %"), ("total_acc", "total acc %"))
IN_CI = "paper in our 95 % CI"
NOTES = ("Accuracy in %, mean [95 % CI] over seeds (n): standard test set, the unlearned (forget) set with its "
         "true labels, and the total (test ∪ forget). The original row is measured on the largest forget set. "
         f"{IN_CI}: whether the paper's accuracy lies in our interval (test, unlearned, total).", INTERVAL_NOTE)
IN_CI_LABELS = {"test_acc": "test", "forget_acc": "unlearned", "total_acc": "total"}


def _sizes(sub: pd.DataFrame) -> list[int]:
    """The removal sizes of this run (the paper's when there are no records)."""
    removed = sub[sub["method"] != "original"] if not sub.empty else sub
    return sorted(int(x) for x in col(removed, "removal_size").dropna().unique()) or list(P.P002_SIZES)


def _specs(sizes: list[int]) -> list[tuple]:
    """(method, size, the paper's row or None): the original, then naive and relabel per size, matched to the
    paper's rows by position."""
    specs = [("original", 0, P.P002_TABLE1[0])]
    for i, size in enumerate(sizes):
        for method in ("naive_retrain", "random_relabel"):
            ref = next((r for r in P.P002_TABLE1 if i < len(P.P002_SIZES) and r[0] == method
                        and r[1] == P.P002_SIZES[i]), None)
            specs.append((method, size, ref))
    return specs


def _label(method: str, size: int) -> str:
    return SHORT[method] if method == "original" else f"{SHORT[method]} {size}"


def _row(sub: pd.DataFrame, method: str, size: int, ref: tuple | None) -> dict:
    s = sub[sub["method"] == method] if not sub.empty else sub
    if method != "original" and not s.empty:
        s = s[s["removal_size"] == size]
    row = {"row": _label(method, size), "method": method, "removal_size": size,
           "paper_row": "" if ref is None else _label(ref[0], ref[1]), "n": len(s)}
    for (key, _), ref_val in zip(ACCURACIES, ref[2:] if ref else (NAN,) * 3, strict=True):
        a = summary(col(s, key), key, scale=100)
        row.update({key: a.mean, f"{key}_sd": a.sd, f"{key}_lo": a.lo, f"{key}_hi": a.hi,
                    **beside(key, a.mean, a.lo, a.hi, ref_val)})
    return row


def _record_notes(sub: pd.DataFrame, data: pd.DataFrame, sizes: list[int]) -> list[str]:
    if sub.empty:
        return ["No paper-002 Table 1 records in the input: only the paper's numbers are shown "
                "(rows labelled with the paper's sizes)."]
    notes = [f"{r}: not run, its cells are empty." for r, n in zip(data["row"], data["n"], strict=True) if n == 0]
    if sizes[:2] != list(P.P002_SIZES):
        notes.append(f"This run removes {'/'.join(map(str, sizes))} points where the paper removes "
                     f"{'/'.join(map(str, P.P002_SIZES))}: rows are matched by position (first size ↔ 100, "
                     "second ↔ 600), so the paper columns are a reference, not a like-for-like comparison.")
    if len(sizes) > len(P.P002_SIZES):
        notes.append("Sizes beyond the second have no paper row.")
    if r := rules(sub):
        notes.append(f"Rules: {r}.")
    return notes


def _paper_row(r: pd.Series) -> str:
    """" (paper: relabel 600)" where the run's row differs from the paper's row it is compared with."""
    return f" (paper: {r['paper_row']})" if r["paper_row"] and r["paper_row"] != r["row"] else ""


class Paper002Table1(Table):
    name = "paper002_table1"
    PAPER = True
    title = "Paper 002, Table 1: MNIST accuracy after unlearning"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Paper002Table1:
        sub = select(df, "002", "table1")
        sizes = _sizes(sub)
        data = pd.DataFrame([_row(sub, *spec) for spec in _specs(sizes)])
        return cls.make(ctx, data, cls.show(data), [*_record_notes(sub, data, sizes), *NOTES], not sub.empty)

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (("row", "row"), ("paper row", "paper_row"), ("n", "n", "int"),
                         *(c for key, label in ACCURACIES for c in versus(key, label, ".2f")),
                         (IN_CI, [covered(r, IN_CI_LABELS) for _, r in d.iterrows()])))

    def sentences(self) -> list[str]:
        if not self.has_records:
            return ["No MNIST Table 1 records in this run: the table shows the paper's numbers only."]
        d = self.data
        orig = d[d["method"] == "original"].iloc[0]
        s = []
        for method, name in (("random_relabel", "random relabeling"), ("naive_retrain", "naive retraining")):
            rows = d[(d["method"] == method) & d["test_acc"].notna()]
            if not rows.empty:
                s.append(self._after(rows.iloc[-1], orig, name))
        return s

    @staticmethod
    def _after(last: pd.Series, orig: pd.Series, name: str) -> str:
        change = delta(last["test_acc"], orig["test_acc"])
        inside = IN_CI_WORDS[last["test_acc_paper_in_ci"]]
        ref = (f"; the paper's after {last['paper_row'].split()[-1]} removals: {num(last['test_acc_paper'], '.2f')}%"
               f"{inside} ({num(delta(last['test_acc_paper'], orig['test_acc_paper']), '+.2f')} points vs its "
               "original)" if last["paper_row"] else "")
        lo, hi = last["test_acc_lo"], last["test_acc_hi"]
        ours = f"{num(last['test_acc'], '.2f')}%" + ("" if missing(lo) else f" [{num(lo, '.2f')}, {num(hi, '.2f')}]")
        return (f"After {int(last['removal_size'])} removals {name} keeps {ours} test "
                f"accuracy ({num(change, '+.2f')} points vs the original's {num(orig['test_acc'], '.2f')}%){ref}.")

    def cells(self, extended: bool = False) -> list[Cell]:
        out = [Cell(f"p002_t1_{r['method']}_{r['removal_size']}_test",
                    f"002 MNIST: {r['row']}{_paper_row(r)} test acc %", r["test_acc_paper"], r["test_acc"], ".2f",
                    r["test_acc_lo"], r["test_acc_hi"])
               for _, r in self.data.iterrows()]
        last = self.data[self.data["method"] == "random_relabel"].tail(1)
        if not last.empty:
            r = last.iloc[0]
            out.append(Cell("p002_t1_relabel_last_forget", f"002 MNIST: {r['row']}{_paper_row(r)} unlearned acc %",
                            r["forget_acc_paper"], r["forget_acc"], ".2f", r["forget_acc_lo"], r["forget_acc_hi"]))
        return out
