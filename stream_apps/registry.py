"""The platform's stream apps, by name: what each needs on the broker and how to build it.

Each entry maps an app name to its module, which provides
``needs(spec: CatalogSpec, *, partitions: int) -> StreamApp`` (for the reconciler) and
``build(settings, spec, password, **options) -> faust.App`` (for the worker).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from govbus.catalog.spec import CatalogSpec
from govbus.reconcile.desired import Grant, StreamApp

# name -> module path; each module documents its topics and tables.
APPS: dict[str, str] = {
    "govbus-verifier": "stream_apps.verification",
    "govbus-projector": "stream_apps.projection",
    "govbus-freshness": "stream_apps.freshness",
    "govbus-disputes": "stream_apps.disputes",
}


def app_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(APPS[name])
    except KeyError:
        known = ", ".join(sorted(APPS)) or "none"
        raise ValueError(f"unknown stream app {name!r}; known apps: {known}") from None


def all_needs(
    spec: CatalogSpec,
    grants: Iterable[Grant] = (),
    *,
    partitions: int = 3,
    operator: str | None = None,
) -> list[StreamApp]:
    """What every app needs on the broker, for the reconciler.

    ``grants`` (valid ones) matter to apps whose readers follow the share types (the disputes
    app's status topics); ``operator`` is the platform operator's department id, for apps
    whose outputs the operator reads. Each is passed to the apps whose ``needs`` take it.
    """
    grants = list(grants)
    out = []
    for name in APPS:
        needs = app_module(name).needs
        accepted = inspect.signature(needs).parameters
        options: dict[str, Any] = {"partitions": partitions}
        if "grants" in accepted:
            options["grants"] = grants
        if operator is not None and "operator" in accepted:
            options["operator"] = operator
        out.append(needs(spec, **options))
    return out
