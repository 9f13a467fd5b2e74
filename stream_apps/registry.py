"""The platform's stream apps, by name: what each needs on the broker and how to build it.

Each entry maps an app name to its module, which provides
``needs(spec: CatalogSpec, *, partitions: int) -> StreamApp`` (for the reconciler) and
``build(settings, spec, password, **options) -> faust.App`` (for the worker).
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module path; each module documents its topics and tables.
APPS: dict[str, str] = {
    "govbus-verifier": "stream_apps.verification",
}


def app_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(APPS[name])
    except KeyError:
        known = ", ".join(sorted(APPS)) or "none"
        raise ValueError(f"unknown stream app {name!r}; known apps: {known}") from None
