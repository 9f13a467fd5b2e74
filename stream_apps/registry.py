"""The platform's stream apps, by name: what each needs on the broker and how to build it.

Every app module (``stream_apps/*/app.py``) is a ``StreamAppModule``: ``needs(spec, context)``
for the reconciler and ``build(settings, spec, password, context, **options)`` for the worker.
``AppContext`` is what every app is given alike: the names (``Naming``; a test passes a
namespace of its own), the partition count, the valid grants and the operator department.

The modules are imported by path, when an app is planned or run: importing one loads Faust's
app machinery (about 0.35 s), which the other commands of the command line (that imports this
module) should not pay for.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import (
    DEFAULT_OPERATOR,
    DISPUTES,
    FRESHNESS,
    NAMING,
    PROJECTOR,
    VERIFIER,
    Naming,
)
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.topology import StreamApp

if TYPE_CHECKING:
    import faust

__all__ = [
    "APPS",
    "DEFAULT_CONTEXT",
    "AppContext",
    "StreamAppModule",
    "all_needs",
    "app_module",
]


@dataclass(frozen=True)
class AppContext:
    """What every stream app is given, alike: its ``needs`` and its ``build`` take it.

    ``naming`` gives every topic, user and app id (a test passes a namespace of its own);
    ``partitions`` must match the partitions of the topics the reconciler created (tables are
    co-partitioned with their source topics); ``grants`` are the share grants valid when the
    app starts (for apps whose readers or rules follow the share types; a grant approved later
    takes effect at the next start); ``operator`` is the department id of the platform
    operator, the data stewards who read what the apps report; ``replication`` is that of the
    topics the app has created (-1: the broker's default).
    """

    naming: Naming = NAMING
    partitions: int = 3
    grants: tuple[Grant, ...] = ()
    operator: str = DEFAULT_OPERATOR
    replication: int = -1


DEFAULT_CONTEXT = AppContext()  # production names, 3 partitions, no grants


class StreamAppModule(Protocol):
    """What the module of each platform stream app provides."""

    def needs(self, spec: CatalogSpec, context: AppContext, /) -> StreamApp:
        """The app's user, topics, tables and ACLs: the reconciler creates and grants them."""
        ...

    def build(
        self, settings: Settings, spec: CatalogSpec, password: str, context: AppContext, /
    ) -> faust.App:
        """The Faust app, authenticated as the app's user. Each app takes keyword options of
        its own besides (e.g. ``clock``); the others are Faust settings."""
        ...


# The apps by their production id (the name `govbus stream-apps run` takes) -> module path;
# each module documents its topics and tables.
APPS: Mapping[str, str] = {
    NAMING.app_user(VERIFIER): "stream_apps.verification.app",
    NAMING.app_user(PROJECTOR): "stream_apps.projection.app",
    NAMING.app_user(FRESHNESS): "stream_apps.freshness.app",
    NAMING.app_user(DISPUTES): "stream_apps.disputes.app",
}


def app_module(name: str) -> StreamAppModule:
    try:
        path = APPS[name]
    except KeyError:
        known = ", ".join(sorted(APPS)) or "none"
        raise UserError(f"unknown stream app {name!r}; known apps: {known}") from None
    # tests/unit/test_namespaces.py holds every module to the protocol.
    return cast(StreamAppModule, importlib.import_module(path))


def all_needs(spec: CatalogSpec, context: AppContext = DEFAULT_CONTEXT) -> list[StreamApp]:
    """What every app needs on the broker, for the reconciler; each gets the same context."""
    return [app_module(name).needs(spec, context) for name in APPS]
