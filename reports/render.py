"""Sentences computed from the tables' numbers, and the README rendered from its jinja2 template."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pandas as pd

from . import paper as P
from .load import ROOT, SCHEMA_VERSION, Loaded
from .tables import Context, Table, delta, missing, num, stats

TEMPLATES = Path(__file__).resolve().parent / "templates"
# recorded settings that answer a choice the papers leave open (README "Choices the papers leave open")
SETTINGS = (("rule", "convergence rule"), ("oracle_init", "oracle initialisation"),
            ("delta_on", "activation Δ_j indexes"), ("set_rule", "removing a set (weight pruning)"),
            ("n_neighbors", "neighbours n"), ("k_prime", "relabel batch (k')"), ("d_on", "S and d measured on"),
            ("optimizer", "optimizer"), ("lr", "learning rate"), ("device", "device"))


def _cmp(ours, ref, spec=".4g", unit="") -> str:
    if missing(ours):
        return "not in this run"
    if missing(ref):
        return f"{num(ours, spec)}{unit}"
    return f"{num(ours, spec)}{unit} (paper {num(ref, spec)}{unit}; Δ {num(delta(ours, ref), spec)}{unit})"


def table_sentences(tables: dict[str, Table]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    t = tables.get("paper000_table1")
    if t is not None:
        s = []
        d = t.data
        ours = d[~d["trial"].isin(["avg", "sd"]) & d["mr_epochs"].notna()]
        avg = d[d["trial"] == "avg"].iloc[0]
        if ours.empty:
            s.append("No synthetic trials in this run: the table shows the paper's numbers only.")
        else:
            faster = int((ours["epoch_ratio"] < 1).sum())
            paper_faster = sum(r[2] < 1 for r in P.P000_TABLE1.values())
            s.append(f"Our mean m_r/m_o epoch ratio is {_cmp(avg['epoch_ratio'], avg['epoch_ratio_paper'])} over "
                     f"{len(ours)} trial{'s' if len(ours) != 1 else ''}; weight pruning converged in fewer epochs than "
                     f"retraining in {faster} of {len(ours)} (the paper: {paper_faster} of {len(P.P000_TABLE1)}).")
            s.append(f"Mean epochs: m_r {_cmp(avg['mr_epochs'], avg['mr_epochs_paper'], '.1f')}, m_o "
                     f"{_cmp(avg['mo_epochs'], avg['mo_epochs_paper'], '.1f')}; mean accuracy on the training points: "
                     f"m_r {_cmp(avg['mr_acc'], avg['mr_acc_paper'], '.3f')}, m_o {_cmp(avg['mo_acc'], avg['mo_acc_paper'], '.3f')}.")
            if not missing(avg["finetune_epochs"]):
                s.append(f"The warm-start finetune ablation needed {num(avg['finetune_epochs'], '.1f')} epochs on "
                         f"average (m_r: {num(avg['mr_epochs'], '.1f')}): the part of the saving that starting warm "
                         "alone gives.")
            if avg["hit_cap"] not in ("", "none"):
                s.append(f"Runs stopped by the epoch cap: {avg['hit_cap']} (their epochs are lower bounds).")
        out[t.name] = s
    t = tables.get("paper000_california")
    if t is not None:
        by = t.data.set_index("model")
        s = []
        if not t.has_records:
            s.append("No California records in this run: the table shows the paper's numbers only.")
        else:
            def capped(m):
                hits, n = by.loc[m, "cap_hits"], by.loc[m, "n"]
                return "" if missing(hits) or not hits else (" (every run stopped by the cap)" if hits == n
                                                             else f" ({int(hits)} of {int(n)} runs stopped by the cap)")
            s.append(f"m_r took {_cmp(by.loc['m_r', 'epochs'], by.loc['m_r', 'epochs_paper'], '.1f')} epochs"
                     f"{capped('m_r')} and m_o {_cmp(by.loc['m_o', 'epochs'], by.loc['m_o', 'epochs_paper'], '.1f')}"
                     f"{capped('m_o')}; our m_o/m_c epoch ratio is "
                     f"{_cmp(by.loc['m_o', 'ratio_to_mc'], P.P000_CALIFORNIA_MO_OVER_MC, '.3f')}.")
            caps = [f"{m} {int(by.loc[m, 'cap_hits'])}/{int(by.loc[m, 'n'])}" for m in by.index
                    if not missing(by.loc[m, "cap_hits"]) and by.loc[m, "cap_hits"] > 0]
            if caps:
                s.append(f"Runs that hit the epoch cap ({t.data['rule'].iloc[0] or 'see rule'}): {', '.join(caps)}: "
                         "those epochs are lower bounds, not epochs to convergence.")
            if not missing(by.loc["m_r", "d"]):
                s.append(f"d of m_r is {num(by.loc['m_r', 'd'])} (finetune: {num(by.loc['finetune', 'd'])}); "
                         "positive d means closer to m_o than to m_c.")
        out[t.name] = s
    t = tables.get("paper002_table1")
    if t is not None:
        d = t.data
        s = []
        if not t.has_records:
            s.append("No MNIST Table 1 records in this run: the table shows the paper's numbers only.")
        else:
            orig = d[d["method"] == "original"].iloc[0]
            for method, name in (("random_relabel", "random relabeling"), ("naive_retrain", "naive retraining")):
                rows = d[(d["method"] == method) & d["test_acc"].notna()]
                if rows.empty:
                    continue
                last = rows.iloc[-1]
                change = delta(last["test_acc"], orig["test_acc"])
                ref = (f"; the paper's after {last['paper_row'].split()[-1]} removals: {num(last['test_acc_paper'], '.2f')}% "
                       f"({num(delta(last['test_acc_paper'], orig['test_acc_paper']), '+.2f')} points vs its original)"
                       if last["paper_row"] else "")
                s.append(f"After {int(last['removal_size'])} removals {name} keeps {num(last['test_acc'], '.2f')}% test "
                         f"accuracy ({num(change, '+.2f')} points vs the original's {num(orig['test_acc'], '.2f')}%){ref}.")
        out[t.name] = s
    t = tables.get("grid")
    if t is not None:
        d = t.data
        s = []
        for ds, g in d.groupby("dataset", sort=True):
            parts = []
            for (method, opt, lr), h in g.groupby(["method", "optimizer", "lr"], sort=False, dropna=False):
                if method == "naive_retrain" or h["speedup_vs_naive"].isna().all():
                    continue
                lab = method if method != "random_relabel" else f"{method} ({opt}, lr {num(lr, 'g')})"
                parts.append(f"{lab} ×{num(stats(h['speedup_vs_naive'])[0], '.3g')}")
            if parts:
                s.append(f"{ds}: mean speedup over naive retraining across removal sizes: {', '.join(parts)}.")
        out[t.name] = s
    t = tables.get("overhead")
    if t is not None:
        out[t.name] = [f"{r['benchmark']}: {num(r['overhead_ratio'], '.3f')}× plain torch (target ≤ "
                       f"{num(r['overhead_target'], '.2f')}: {'within' if r['within_target'] == 'yes' else 'NOT within'})."
                       for _, r in t.data.iterrows()]
    t = tables.get("torch_versions")
    if t is not None:
        cols = [c for c in t.data.columns if c.startswith("torch ")]
        spread = []
        for _, r in t.data.iterrows():
            v = pd.Series([r[c] for c in cols], dtype=float).dropna()
            if len(v) > 1 and v.abs().max() > 0:
                spread.append(((v.max() - v.min()) / v.abs().max(), r["quantity"], v.min(), v.max()))
        if spread:
            rel, q, lo, hi = max(spread)
            out[t.name] = [f"Across {len(cols)} torch versions the headline cells differ most in \"{q}\" "
                           f"({num(lo)} to {num(hi)}, {rel * 100:.1f}% of the larger)."]
        else:
            out[t.name] = ["No headline cell is present under more than one torch version."]
    return out


def settings_table(df: pd.DataFrame) -> str:
    df = df[df["paper"] != "overhead"]          # the overhead cases run on random tensors, not a dataset
    rows = []
    for key, label in SETTINGS:
        if key not in df.columns:
            continue
        for ds, g in df.groupby("dataset", sort=True):
            vals = sorted({num(v, "g") if isinstance(v, float) else str(v) for v in g[key].dropna()})
            if vals:
                rows.append({"setting": label, "key": key, "dataset": ds, "values in this run": "; ".join(vals)})
    if not rows:
        return ""
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def provenance_table(loaded: Loaded) -> str:
    rows = [{"file": r.label, "date": r.datetime,
             "commit": (r.commit[:12] + (" (dirty)" if r.dirty else "")) if r.commit else "",
             "branch": r.branch, "torch": r.torch,
             "device": r.device + (f" ({r.device_name})" if r.device_name and r.device_name != r.device else ""),
             "threads": r.threads, "profile": r.profile, "machine": r.machine, "python": r.python,
             "pytest-benchmark": r.pytest_benchmark, "records used": str(r.records)} for r in loaded.runs]
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def readme(loaded: Loaded, ctx: Context, tables: dict[str, Table], headline: Table, figures: list,
           out: Path) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    top = Path(os.path.relpath(ROOT / "README.md", out)).as_posix()
    shown = [r for r in loaded.runs if r.torch == loaded.torch]
    return env.get_template("README.md.j2").render(
        ctx=ctx, loaded=loaded, shown_runs=shown, tables=tables, headline=headline, figures=figures,
        sentences=table_sentences(tables), settings=settings_table(loaded.records),
        provenance=provenance_table(loaded), top_readme=top, schema_version=SCHEMA_VERSION,
        profiles_py=Path(os.path.relpath(ROOT / "benchmarks" / "profiles.py", out)).as_posix(),
        dates=sorted({r.datetime[:10] for r in shown if r.datetime}),
        commits=sorted({r.commit[:12] for r in shown if r.commit}))
