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
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib.metadata import entry_points


class PluginWarning(UserWarning):
    """A plug-in (entry point) could not be loaded and was skipped."""


def import_modules(package: str, path) -> list[str]:
    """Import every public module of `package` (names not starting with `_`), in name order."""
    found = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    for name in found:
        importlib.import_module(f"{package}.{name}")
    return found


def load_entry_points(group: str, *, strict: bool = False) -> list[str]:
    """Load every entry point of `group`; return the names loaded. Failures warn (or raise if `strict`)."""
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as exc:
            if strict:
                raise
            warnings.warn(f"plug-in {ep.name!r} ({ep.value}) of entry-point group {group!r} was not loaded: "
                          f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded
