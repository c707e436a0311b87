"""The methods ranked per dataset by forgetting, cost and utility (`Ranking`, from the forgetting table's cells,
with the uncertainty the audit reports), and each method's tuned point with its search (`TunedPoints`).

Which records: a method's tuned cells where it has them on the dataset (every method searched with the same
budget is the fair comparison), else its preset ones; where any method is tuned on a dataset, the dataset is ranked
on the cells the tuned runs cover (the profile's tuned regimes), every method on those same cells. The no-op and
naive retraining stay in the ranking, marked as the floor and the ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ....evaluation import verdict as V
from ....running.tuning import RESCORE_TOP, UTILITY_FLOOR
from ..common import NAN, PRESET, SECONDS, TUNED, col, labelled, method_key, missing, num, ordered, select, shown, stats
from .base import Context, Table
from .forgetting import CELL, TRAINING, TRAINING_NOTE, Forgetting, on_cell

# What is ranked, per dataset: (column, higher is better, what it is). Each method's value is its mean over the
# dataset's ranked cells, with an interval: the mean of its cells' interval ends.
RANKED = {"forgetting": ("distance", False, "distance from retraining"),
          "cost": ("seconds", False, "seconds per model"),
          "utility": ("utility_ratio", True, "test utility / retraining's")}
ROLES = {"noop": "floor", "naive_retrain": "ceiling"}
JUDGED = tuple(v for v in V.VERDICTS if v != V.TOO_FEW)     # the labels of cells with a verdict (M ≥ 20)
RANK_RULE = (
    "Ranks, per dataset (1 is best), over its ranked cells: each method's tuned cells where it has them on the "
    "dataset, else its preset ones (column setting); where a method is tuned there, every method is ranked on the "
    "cells the tuned runs cover (the profile's tuned regimes). forgetting: the distance from retraining, per cell "
    "|effect| / max(|the no-op's effect|, margin), averaged over the cells with a verdict (lower is better; 0: as "
    "retraining, 1: as far as doing nothing). Why: memorising and over-forgetting both mark the forget points, so the "
    "absolute effect counts them alike; dividing by the no-op's makes cells comparable (its shift is +5 sd on "
    "canaries and a fraction of one on random points), and the margin floor keeps cells where doing nothing is "
    "already within the margin from dividing by ~0. Its interval: the mean of the cells' ends, the effect's 90 % "
    "bootstrap interval folded at 0 and divided the same way (the no-op's effect taken as fixed). way of missing: the "
    "label most of its cells with a verdict carry (matches and cannot tell counted together as no way; a tie of "
    "memorised and over-forgot goes by the sign of the mean effect). direction: the "
    "mean signed effect (> 0 memorised, < 0 over-forgot, in retrained sd) and the cells' labels. F / ceiling: the "
    "mean over the cells of F / ceiling (higher is better; not ranked: its ceiling is one noisy draw of its null). "
    "cost: the mean of the cells' seconds per model (lower is better; interval: the mean of the cells' "
    "95 % t intervals over the N models). utility: the mean over the cells of the test accuracy / naive retraining's "
    "on the same cell (regression: retraining's test MSE / the method's; 1 is as good as retraining, higher is "
    "better; interval from the cells' ends over the models). Ties: methods are ordered by the mean; a method whose "
    "interval overlaps that of the best method of its rank group shares its rank (=), the next one that does not "
    "opens a new rank, its place in the order (competition ranking: 1, =1, 3). No interval (one model, or none "
    "recorded): tied only at an equal mean. noop (floor: the model unchanged, zero cost) and naive_retrain (ceiling: "
    "a second retrained group, the reference's own F) stay in the ranking as the bounds every method lies between. "
    "verdicts: the forgetting table's per cell (BH-adjusted across that table). score: the NeurIPS 2023 challenge "
    "score (F × retain ratio × test ratio), the mean over the cells.")


def tied_ranks(mean: pd.Series, lo: pd.Series, hi: pd.Series, higher: bool) -> tuple[pd.Series, pd.Series]:
    """Competition ranks (1 best) of `mean` (NaN: no rank), and whether each is tied with the rank's best: ordered by
    the mean, a value whose [lo, hi] overlaps that of its rank group's best shares the rank, else opens a new one at
    its place. Without an interval on either side only an equal mean ties."""
    order = mean.dropna().sort_values(ascending=not higher, kind="stable").index
    rank = pd.Series(NAN, index=mean.index, dtype=float)
    tied = pd.Series(False, index=mean.index, dtype=bool)
    def overlap(a, b) -> bool:
        if any(missing(x) for x in (lo[a], hi[a], lo[b], hi[b])):
            return mean[a] == mean[b]
        return float(lo[a]) <= float(hi[b]) and float(lo[b]) <= float(hi[a])
    best = None
    for place, i in enumerate(order, start=1):
        if best is not None and overlap(best, i):
            rank[i], tied[i] = rank[best], True
        else:
            rank[i], best = float(place), i
    return rank, tied


def chosen(d: pd.DataFrame) -> pd.DataFrame:
    """The forgetting table's rows one dataset is ranked on: each method's tuned rows where it has any, else its
    preset ones, on the cells of the tuned rows (all cells where no method is tuned)."""
    tuned_methods = set(d.loc[d["setting"] == TUNED, "method"])
    rows = d[(d["setting"] == TUNED) == d["method"].isin(tuned_methods)]
    if tuned_methods:
        cells = set(d.loc[d["setting"] == TUNED, CELL].itertuples(index=False, name=None))
        rows = rows[[c in cells for c in rows[CELL].itertuples(index=False, name=None)]]
    return rows


def _utility_ratio(rows: pd.DataFrame, d: pd.DataFrame) -> pd.DataFrame:
    """Each row's test utility against naive retraining's on its cell (`utility_ratio` with `_lo`, `_hi`): accuracy
    / retraining's, or for MSE (lower is better) retraining's / the row's, so that higher is better either way."""
    base = on_cell(rows, d, "naive_retrain", "utility")
    base = base.where(base > 0)
    u, lo, hi = (rows[k].astype(float) for k in ("utility", "utility_lo", "utility_hi"))
    mse = rows["utility_mse"].astype(bool)
    return pd.DataFrame({"utility_ratio": (base / u).where(mse, u / base),
                         "utility_ratio_lo": (base / hi).where(mse, lo / base),
                         "utility_ratio_hi": (base / lo).where(mse, hi / base)})


def distances(rows: pd.DataFrame, d: pd.DataFrame) -> pd.DataFrame:
    """Each row's distance from retraining (`distance` with `_lo`, `_hi`): |effect| / max(|the no-op's effect on its
    cell|, margin); the ends from the effect's interval folded at 0. NaN where the row has no verdict."""
    noop = on_cell(rows, d, "noop", "effect")
    has = rows["verdict"].isin(JUDGED)
    e, lo, hi = (rows[k].astype(float).where(has) for k in ("effect", "effect_lo", "effect_hi"))
    near, far = V.distance_interval(lo, hi, noop)
    return pd.DataFrame({"distance": V.distance(e, noop), "distance_lo": near, "distance_hi": far}, index=rows.index)


def _method_row(ds: str, lab: str, g: pd.DataFrame) -> dict:
    ceiling = g["forget_quality_ceiling"].astype(float).where(lambda c: c > 0)
    ends = {"f_normalised": g["forget_quality_normalised"].astype(float),
            "f_normalised_lo": g["forget_quality_lo"].astype(float) / ceiling,
            "f_normalised_hi": g["forget_quality_hi"].astype(float) / ceiling}
    counts = g.loc[g["verdict"] != "", "verdict"].value_counts()
    row = {"dataset": ds, "label": lab, "method": g["method"].iloc[0], "setting": g["setting"].iloc[0],
           "role": ROLES.get(g["method"].iloc[0], "") if g["setting"].iloc[0] == PRESET else "",
           "cells": len(g), "regimes": ", ".join(sorted(set(g["regime"].astype(str)))),
           "verdicts": ", ".join(f"{counts[k]} {k}" for k in V.VERDICTS if counts.get(k)) or "none",
           "matches": int((g["verdict"] == V.MATCHES).sum()),
           "effect": stats(g["effect"].where(g["verdict"].isin(JUDGED)))[0]}
    row["way"] = direction(counts, row["effect"])
    row.update({k: stats(v)[0] for k, v in ends.items()})
    for k in ("distance", "distance_lo", "distance_hi", "seconds", "seconds_lo", "seconds_hi", "rte",
              "training_seconds", "utility_ratio", "utility_ratio_lo", "utility_ratio_hi", "unlearn_score",
              "ulira_auc", "ulira_tpr_1pct"):
        row[k] = stats(g[k])[0]
    return row


class Ranking(Table):
    name = "ranking"
    title = "Ranking: the methods per dataset by forgetting, cost and utility"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> Ranking | None:
        forgetting = Forgetting.build(df, ctx)
        return None if forgetting is None else cls.of(forgetting, ctx)

    @classmethod
    def of(cls, forgetting: Forgetting, ctx: Context) -> Ranking:
        """The ranking from the forgetting table's cells (their adjusted verdicts included)."""
        d, frames = forgetting.data, []
        for ds in sorted(d["dataset"].unique()):
            part = d[d["dataset"] == ds]
            rows = chosen(part)
            rows = pd.concat([rows, _utility_ratio(rows, part), distances(rows, part)], axis=1)
            per = pd.DataFrame([_method_row(ds, lab, g) for lab, g in rows.groupby("label", sort=False)])
            frames.append(_ranked(per))
        data = pd.concat(frames, ignore_index=True)
        notes = [RANK_RULE, *([TRAINING_NOTE] if data["training_seconds"].notna().any() else [])]
        return cls.make(ctx, data, cls.show(data), notes)

    @staticmethod
    def show(d: pd.DataFrame) -> pd.DataFrame:
        return shown(d, (
            ("dataset", "dataset"), ("method", "label"), ("setting", "setting"), ("role", "role"),
            ("cells", "cells", "int"), ("forgetting rank", _ranks(d, "forgetting")),
            ("distance [90 % CI]", "distance", "[.2f]"), ("way of missing", "way"), ("direction, sd", "effect", "+.2f"),
            ("verdicts", "verdicts"), ("F / ceiling [95 % CI]", "f_normalised", "[.2f]"),
            ("U-LiRA AUC", "ulira_auc", ".3f"), ("TPR @1 % FPR", "ulira_tpr_1pct", ".3f"),
            ("cost rank", _ranks(d, "cost")), ("seconds [95 % CI]", "seconds", f"[{SECONDS}]"),
            ("RTE (> 1: faster)", "rte", ".3g"),
            *([(TRAINING, "training_seconds", SECONDS)] if d["training_seconds"].notna().any() else []),
            ("utility rank", _ranks(d, "utility")), ("utility / retraining's [95 % CI]", "utility_ratio", "[.3f]"),
            ("score", "unlearn_score", ".3f")))

    def short(self, dataset: str) -> str:
        """One dataset's ranking as the report's page shows it: method, forgetting (distance with its interval and
        direction), verdicts, cost and utility relative to retraining (`SHORT_NOTE`; every column: `ranking.md`)."""
        d = self.data[self.data["dataset"] == dataset]
        naive = d.loc[(d["method"] == "naive_retrain") & (d["role"] == "ceiling"), "seconds"]
        d = d.assign(relative=d["seconds"] / (naive.iloc[0] if len(naive) and naive.iloc[0] > 0 else NAN))
        return shown(d, (
            ("rank", _ranks(d, "forgetting")),
            ("method", [f"{lab} [{role}]" if role else lab for lab, role in zip(d["label"], d["role"], strict=True)]),
            ("distance [90 % CI]", "distance", "[.2f]"),
            ("way of missing (mean effect, sd)", ["" if missing(e) else f"{w} ({e:+.2f})"       # blank: no verdict
                                                 for w, e in zip(d["way"], d["effect"], strict=True)]),
            ("verdicts", "verdicts"), ("time / retraining's", "relative", ".2g"),
            ("utility / retraining's [95 % CI]", "utility_ratio", "[.3f]"),
        )).to_markdown(index=False, disable_numparse=True) + "\n"

    def judged(self, dataset: str) -> bool:
        """Whether any method on `dataset` has a forgetting distance (a cell with a verdict)."""
        return bool(self.data.loc[self.data["dataset"] == dataset, "distance"].notna().any())

    def sentences(self) -> list[str]:
        out = []
        for ds, g in self.data.groupby("dataset", sort=False):
            tuned = sorted(g.loc[g["setting"] == TUNED, "method"], key=method_key)
            which = f"tuned: {', '.join(tuned)}; the others at their preset" if tuned else "every method at its preset"
            parts = [f"{what} {self._order(g, what, spec)}" for what, spec in
                     (("forgetting", ".2f"), ("cost", SECONDS), ("utility", ".3f"))]
            out.append(f"{ds} ({num(g['cells'].max(), 'int')} {'cell' if g['cells'].max() == 1 else 'cells'}, "
                       f"{', '.join(sorted(set(', '.join(g['regimes']).split(', '))))}; {which}): "
                       + "; ".join(parts) + ".")
        return out

    @staticmethod
    def _order(g: pd.DataFrame, what: str, spec: str) -> str:
        """`1 a 0.93, =1 b 0.90, 3 c 0.41` for one ranked quantity; roles in brackets."""
        key = RANKED[what][0]
        ranked = g[g[f"{what}_rank"].notna()].sort_values([f"{what}_rank", key], ascending=[True, not RANKED[what][1]],
                                                         kind="stable")
        return ", ".join(f"{'=' if r[f'{what}_tied'] else ''}{num(r[f'{what}_rank'], 'int')} {r['label']}"
                         f"{f' [{r.role}]' if r['role'] else ''} {num(r[key], spec)}" for _, r in ranked.iterrows())


SHORT_NOTE = (
    "rank: by forgetting, 1 best, = shared (intervals overlap the rank's best). distance: from retraining, the mean "
    "over the dataset's ranked cells of |effect| / max(|the no-op's effect|, margin): 0 is as retraining, 1 as far as "
    "doing nothing; its 90 % interval. way of missing: the label most of its cells carry (memorised: forget points "
    "more confident than under retraining; over-forgot: less; matches and cannot tell count as no way), the figure's "
    "marker; in brackets the mean signed effect in retrained sd (> 0 memorised, < 0 over-forgot). time / "
    "retraining's: seconds per model over naive retraining's on the same cells (below 1: cheaper). utility / "
    "retraining's: test accuracy (regression: retraining's MSE over the method's), 1 is as good as retraining. "
    "[floor] the no-op, [ceiling] a second retrained group. (tuned): at its tuned point; the others at their preset.")


NO_DIRECTION = "matches or cannot tell"


def direction(counts: Mapping[str, int], effect: float) -> str:
    """A method's way of missing retraining over its ranked cells, from its cells' verdict `counts` ({label: cells}):
    the label most of its cells with a verdict carry, "matches retraining" and "cannot tell" counted together as
    `NO_DIRECTION` (no direction shown). A missed label wins a tie with NO_DIRECTION (half the cells show it);
    memorised against over-forgot goes by the sign of the mean effect, any other tie by `verdict.MISSED`'s order."""
    ways = {w: counts.get(w, 0) for w in V.MISSED}
    top = max(ways.values())
    none = counts.get(V.MATCHES, 0) + counts.get(V.CANNOT_TELL, 0)
    if top == 0 or none > top:
        return NO_DIRECTION
    tied = [w for w in V.MISSED if ways[w] == top]
    if {V.MEMORISED, V.OVER_FORGOT} <= set(tied) and not missing(effect) and effect != 0:
        return V.MEMORISED if effect > 0 else V.OVER_FORGOT
    return tied[0]


def _ranks(d: pd.DataFrame, what: str) -> list[str]:
    """The `what` rank of each row as shown: `3`, or `=1` where tied with its rank's best; blank for none."""
    return ["" if missing(r) else f"{'=' if t else ''}{num(r, 'int')}"
            for r, t in zip(d[f"{what}_rank"], d[f"{what}_tied"], strict=True)]


def _ranked(per: pd.DataFrame) -> pd.DataFrame:
    """One dataset's methods with their three ranks, sorted by the forgetting rank, its mean, then METHOD_ORDER."""
    for what, (key, higher, _) in RANKED.items():
        per[f"{what}_rank"], per[f"{what}_tied"] = tied_ranks(per[key], per[f"{key}_lo"], per[f"{key}_hi"], higher)
    return ordered(per, lambda r: (missing(r["forgetting_rank"]), 0 if missing(r["forgetting_rank"]) else
                                   r["forgetting_rank"], float("inf") if missing(r["distance"]) else r["distance"],
                                   method_key(r["label"]))).reset_index(drop=True)


CONVERGENCE_AT = (8, 16, 24, 32)      # the tuning table shows the best validation distance after these many trials


TUNED_NOTE = (
    "From the tuned records (`setting: tuned`). searched on: the regime whose validation panels (one per removal size "
    "in sizes) the point was searched on, and which reported cells run it; `legacy`: a search made before per-regime "
    "tuning (one canary panel, maybe a subset of the data: MNIST's, see docs/tuning.md; the challenge score F × "
    "retain ratio × test ratio, higher is better; its point serves every regime). validation: the chosen point's "
    "mean distance from retraining over the validation panels (|effect| / max(|the no-op's effect|, margin), as the "
    "ranking; lower is better; legacy: its challenge score). re-score: the same on the second, independent validation "
    f"panels the point was chosen on (the best {RESCORE_TOP} feasible trials and the preset re-scored), with the mean "
    "of the panels' folded 90 % effect intervals; preset / no-op re-score: the method's preset and doing nothing on "
    "those panels (the no-op is 1 where its effect exceeds the margin). best after k trials: the least feasible "
    "validation distance among the first k trials (the search's convergence; feasible: test utility at least "
    f"{UTILITY_FLOOR:g} of the lower of retraining's and the no-op's on every panel). trials: the search's (seeded "
    "TPE, the same number for every method); search s: its wall time, re-scores included; N (validation): models per "
    "group of a validation panel; cells run: the forgetting cells run at the point.")


def _search_row(ds: str, method: str, searched: str, g: pd.DataFrame) -> dict:
    """One search's row: its point, scores, convergence and cost, from the tuned records it fed (all alike)."""
    first = g.iloc[0]
    sizes, curve = first.get("tuning_sizes"), first.get("tuning_convergence")
    row = {"dataset": ds, "method": method, "searched_on": searched,
           "regimes": ", ".join(sorted(set(g["forget_regime"].astype(str)))),
           "sizes": ", ".join(map(str, sizes)) if isinstance(sizes, (list, tuple)) else "",
           "tuned_point": "; ".join(sorted(set(col(g, "tuned_point").dropna().astype(str)))),
           "objective": first["tuning_objective"], "tuned_feasible": first.get("tuned_feasible")}
    for k in ("tuned_score", "tuned_rescore", "tuned_rescore_lo", "tuned_rescore_hi", "tuning_preset_rescore",
              "tuning_noop_score"):
        row[k] = stats(col(g, k))[0]
    curve = curve if isinstance(curve, (list, tuple)) else []      # best feasible distance after n trials, NaN: none
    row.update({f"best_after_{n}": NAN if len(curve) < n or curve[n - 1] is None else float(curve[n - 1])
                for n in CONVERGENCE_AT})
    row.update(tuning_trials=col(g, "tuning_trials").max(), tuning_seconds=col(g, "tuning_seconds").max(),
               tuning_n_models=col(g, "tuning_n_models").max(), cells=len(g))
    return row


class TunedPoints(Table):
    name = "tuned_points"
    title = "Tuned points: each method's chosen point per dataset and regime, its scores and its search's convergence"

    @classmethod
    def build(cls, df: pd.DataFrame, ctx: Context) -> TunedPoints | None:
        sub = select(df, "forgetting", "forgetting")
        sub = sub[labelled(sub)["setting"] == TUNED] if not sub.empty else sub
        if sub.empty:
            return None
        sub = sub.assign(tuning_regime=col(sub, "tuning_regime").astype(object).fillna("legacy"),
                         tuning_objective=col(sub, "tuning_objective").astype(object).fillna("unlearn_score"))
        data = pd.DataFrame([_search_row(*key, g) for key, g in
                             sub.groupby(["dataset", "method", "tuning_regime"], sort=False)])
        data = ordered(data, lambda r: (r["dataset"], method_key(r["method"]), r["searched_on"]))
        curves = [" / ".join(num(r[f"best_after_{n}"], ".3f") or "–" for n in CONVERGENCE_AT)
                  if r["objective"] == "distance" else "" for _, r in data.iterrows()]
        return cls.make(ctx, data, shown(data, (
            ("dataset", "dataset"), ("method", "method"), ("searched on", "searched_on"), ("sizes", "sizes"),
            ("tuned point", "tuned_point"), ("validation", "tuned_score", ".3f"),
            ("re-score [interval]", "tuned_rescore", "[.3f]"), ("preset re-score", "tuning_preset_rescore", ".3f"),
            ("no-op re-score", "tuning_noop_score", ".3f"),
            ("best after " + " / ".join(map(str, CONVERGENCE_AT)) + " trials", curves),
            ("trials", "tuning_trials", "int"), ("search s", "tuning_seconds", SECONDS),
            ("N (validation)", "tuning_n_models", "int"), ("cells run", "cells", "int"))), [TUNED_NOTE])

    def sentences(self) -> list[str]:
        out = []
        for ds, g in self.data.groupby("dataset", sort=False):
            trials = sorted({int(t) for t in g["tuning_trials"].dropna()})
            total = g["tuning_seconds"].sum(min_count=1)
            searched = sorted(set(g["searched_on"]))
            n = g["method"].nunique()
            out.append(f"{ds}: {n} method{'s' * (n != 1)} searched ({', '.join(searched)}), "
                       f"{' / '.join(map(str, trials)) or 'unknown'} trials each, {num(total, SECONDS)} s of search "
                       "in all.")
            dist = g[g["objective"] == "distance"]
            worse = dist[dist["tuned_rescore"] > dist["tuning_noop_score"]]
            above = ", ".join(worse["method"] + " (" + worse["searched_on"] + ")")
            if len(dist):
                out.append(f"{ds}: {len(dist) - len(worse)} of {len(dist)} per-regime points re-score at or below the "
                           "no-op's distance" + (f"; above it: {above}" if above else "") + ".")
        return out
