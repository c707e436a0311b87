"""Finding the modules that register datasets and methods: the package's own, and plug-ins'.

Built-in modules are found by walking their package (`pkgutil.iter_modules`), so a new
dataset or method is one new file and no list to edit. Other packages add their own
through entry points, the standard Python plug-in mechanism: in their pyproject.toml

    [project.entry-points."unlearning_bench.methods"]
    my_method = "my_package.my_method"          # a module whose import registers it

(group `unlearning_bench.datasets` for datasets). Loading an entry point imports the
module, whose `@register(...)` / `register_dataset(...)` calls do the registering.
A plug-in that fails to load is skipped with a warning naming it and the error, so one
broken package cannot take the suite down; `load_entry_points(..., strict=True)` raises.
Given the registry its group fills, a plug-in whose module imports but registers nothing
is named too, with where the module came from: typically a folder of the same name in the
working directory (no `__init__.py`) that Python imported as a namespace package in place
of the installed module (an editable install's finder comes after the working directory).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings
from collections.abc import Mapping
from importlib.metadata import entry_points


class PluginWarning(UserWarning):
    """A plug-in (entry point) could not be loaded, or loaded without registering anything."""


def import_modules(package: str, path) -> list[str]:
    """Import every public module of `package` (names not starting with `_`), in name order."""
    found = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    for name in found:
        importlib.import_module(f"{package}.{name}")
    return found


def load_entry_points(group: str, registry: Mapping | None = None, *, strict: bool = False) -> list[str]:
    """Load every entry point of `group`; return the names loaded. Failures warn (or raise if `strict`).

    With `registry` (the dict the group's modules register into), an entry point whose module
    this call imported but which added nothing to it warns too (`strict`: ImportError) and is
    not counted as loaded. A module imported before (by an earlier call, or the plug-in that is
    importing this package) is not judged: its registering may still be under way.
    """
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        fresh, before = ep.module not in sys.modules, set(registry or ())
        try:
            ep.load()
        except Exception as exc:
            if strict:
                raise
            warnings.warn(f"plug-in {ep.name!r} ({ep.value}) of entry-point group {group!r} was not loaded: "
                          f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
            continue
        if registry is not None and fresh and set(registry) == before:
            message = registered_nothing(ep, group)
            if strict:
                raise ImportError(message)
            warnings.warn(message, PluginWarning, stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded


def registered_nothing(ep, group: str) -> str:
    """Why entry point `ep` of `group` loaded but registered nothing: its module's location and the likely cause."""
    what = group.rpartition(".")[2].removesuffix("s") or "entry"          # unlearning_bench.methods -> method
    module = sys.modules.get(ep.module)
    head = f"plug-in {ep.name!r} ({ep.value}) of entry-point group {group!r} registered no {what}: "
    if module is not None and getattr(module, "__file__", None) is None:
        at = ", ".join(str(p) for p in getattr(module, "__path__", ())) or "an unknown location"
        name = ep.module.rpartition(".")[2]
        return (head + f"{ep.module!r} was imported as a namespace package at {at}: a folder named {name!r} "
                f"without __init__.py (in the working directory or earlier on sys.path) shadows the installed "
                f"module; run from another folder or rename that one")
    where = getattr(module, "__file__", None) or "an unknown location"
    return head + (f"its module {ep.module!r} ({where}) imports, but importing it must register one "
                   f"(`@register(...)` for a method, `register_dataset(...)` for a dataset, at module level)")
