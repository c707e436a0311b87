"""The report's three pages, rendered from jinja2 templates: `README.md` (what was run, the papers' numbers beside
ours, the ranking per dataset with its figure, links to every table and figure), `figures.md` (each figure with what
it shows) and `provenance.md` (the runs read, the machines, the settings the records carry, skipped input, how to
regenerate)."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pandas as pd

from . import machines
from .common import num
from .figures import Figure
from .load import Loaded
from .tables import Context, Headline, Table
from .tables.ranking import SHORT_NOTE

TEMPLATES = Path(__file__).resolve().parent / "templates"
# recorded settings that answer a choice the papers leave open (docs/choices.md)
SETTINGS = (("rule", "convergence rule"), ("oracle_init", "oracle initialisation"),
            ("delta_on", "activation Δ_j indexes"), ("set_rule", "removing a set (weight pruning)"),
            ("n_neighbors", "neighbours n"), ("k_prime", "relabel batch (k')"), ("d_on", "S and d measured on"),
            ("optimizer", "optimizer"), ("lr", "learning rate"), ("device", "device"))


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
             "branch": r.branch, "torch": r.torch, "device": r.device_label,
             "threads": r.threads, "profile": r.profile, "machine": r.machine,
             "CPU signature": r.cpu_signature or "", "ISA flags": machines.isa_summary(r.cpu_flags),
             "kernels (dispatched ISA, oneDNN, MKL)": r.kernels, "python": r.python,
             "pytest-benchmark": r.pytest_benchmark, "records used": str(r.records)} for r in loaded.runs]
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


MIXED_HEAD = ("**Records that mix runs of different CPU types or torch versions.** Weights are bit-identical only "
              "for the same CPU type (dispatched ISA), torch version and thread count; across them oneDNN and MKL "
              "choose other kernels and the numbers differ within seed noise (docs/determinism.md). "
              "So these means and comparisons are not of one machine:")
UNMIXED = ("Every group of records (a paper's table on one dataset) comes from runs of one CPU type, dispatched ISA "
           "(where recorded) and torch version.")
DIRTY_HEAD = ("**Made from a working tree with uncommitted changes** (their numbers may come from code that no commit "
              "holds):")
OLD_FLAGS = ("Runs saved before `machine_info.provenance` was recorded have no dispatched ISA (kernels: not "
             "recorded); their CPU signature and ISA flags are py-cpuinfo's (`machine_info.cpu`), from CPUID, which "
             "can list AVX-512 that the operating system does not enable.")


def machine_notes(loaded: Loaded) -> str:
    """Under the provenance table: the runs from a dirty tree, the groups of records that mix CPU types or torch
    versions (`machines.mixed`), and how to read runs saved without provenance."""
    blocks = []
    if dirty := machines.dirty_lines(loaded.runs):
        blocks.append("\n".join([DIRTY_HEAD, "", *(f"- {line}" for line in dirty)]))
    blocks.append("\n".join([MIXED_HEAD, "", *(f"- {m}" for m in loaded.mixed)]) if loaded.mixed else UNMIXED)
    if any(r.cpu_capability is None for r in loaded.runs):
        blocks.append(OLD_FLAGS)
    return "\n\n".join(blocks)


def project_root() -> Path:
    """The source checkout this generator runs from (its README.md and benchmarks/), else the working directory
    (an installed package: the checkout is wherever the user runs it)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "benchmarks").is_dir() else Path.cwd()


def link(target: str, out: Path) -> str:
    """A relative link from the output folder to `target` of the project: `../README.md` for `reports/`."""
    return Path(os.path.relpath(project_root() / target, out.resolve())).as_posix()


def command(loaded: Loaded, out: Path) -> str:
    """The command that regenerates this report: its inputs, and `--out` as a path of the working directory
    (`OUT` where the folder is outside it)."""
    try:
        rel = Path(os.path.relpath(out.resolve(), Path.cwd())).as_posix()
    except ValueError:          # another drive (Windows)
        rel = ".."
    shown = "OUT" if rel == ".." or rel.startswith("../") else rel
    return f"python -m reports {' '.join(r.label for r in loaded.runs)} --out {shown}"


PAGES = ("README.md", "figures.md", "provenance.md")
ABSENT = {"grid": "no comparison-grid records in this run", "overhead": "no overhead records in this run",
          "torch_versions": "one torch version in the input: give the runs of several (e.g. of `tox -e "
                            "torch213,torch214`) to compare them"}


def pages(loaded: Loaded, ctx: Context, tables: dict[str, Table], headline: Headline, figures: list[Figure],
          out: Path) -> dict[str, str]:
    """Each page's file name and text."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    shown = [r for r in loaded.runs if r.torch == loaded.torch]
    ranking = tables.get("ranking")
    values = dict(
        ctx=ctx, loaded=loaded, shown_runs=shown, tables=tables, headline=headline, figures=figures,
        sentences={name: t.sentences() for name, t in tables.items() if t.PAPER},      # the page's paper bullets
        datasets=[] if ranking is None else list(dict.fromkeys(ranking.data["dataset"])), short_note=SHORT_NOTE,
        absent_tables=[(name, why) for name, why in ABSENT.items() if name not in tables],
        settings=settings_table(loaded.records), provenance=provenance_table(loaded),
        machine_notes=machine_notes(loaded), command=command(loaded, out),
        cpus=", ".join(sorted({r.cpu_model for r in shown if r.cpu_model})) or "CPU unknown",
        dirty_runs=", ".join(f"`{r.label}`" for r in loaded.dirty), verdict_doc=link("docs/verdict.md", out),
        choices_doc=link("docs/choices.md", out), schema_doc=link("docs/schema.md", out),
        profiles_py=link("benchmarks/profiles.py", out), schema_version=" and ".join(map(str, loaded.schema_versions)),
        dates=sorted({r.datetime[:10] for r in shown if r.datetime}),
        commits=[c[:12] for c in dict.fromkeys(r.commit for r in sorted(shown, key=lambda r: r.datetime) if r.commit)])
    return {page: env.get_template(f"{page}.j2").render(**values) for page in PAGES}
