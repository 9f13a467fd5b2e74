"""One ``Naming`` namespaces everything: the stream apps (all planned alike through the
registry), the desired state and the reconciler's scope."""

from __future__ import annotations

import inspect

import pytest

from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import MANAGED_PREFIXES, Scope, managed_topic_prefixes
from govbus.vocabulary.naming import NAMING, Naming
from stream_apps.registry import APPS, AppContext, all_needs, app_module

SPEC = load_yaml(SAMPLE_CATALOG_PATH)


def test_every_app_takes_the_spec_and_a_context() -> None:
    for name in APPS:
        module = app_module(name)
        assert list(inspect.signature(module.needs).parameters)[:2] == ["spec", "context"]
        build = list(inspect.signature(module.build).parameters)
        assert build[:4] == ["settings", "spec", "password", "context"]
        assert module.needs(SPEC, AppContext()).app_id == name  # the production id
    with pytest.raises(ValueError, match="known apps: govbus-disputes"):
        app_module("govbus-nothing")


def test_production_names_of_the_apps() -> None:
    apps = {app.app_id: app for app in all_needs(SPEC)}
    assert "disputes.actions.govbus-verifier" in apps["govbus-verifier"].writes
    assert "govbus.violations" in apps["govbus-freshness"].writes
    assert "govbus-disputes-commands" in apps["govbus-disputes"].topics


def test_a_namespace_prefixes_every_topic_and_platform_user() -> None:
    naming = Naming("t1.")
    apps = all_needs(SPEC, AppContext(naming, partitions=1))
    assert {app.app_id for app in apps} == {"t1." + name for name in APPS}
    for app in apps:
        assert app.user == app.app_id
        for topic in (*app.reads, *app.writes, *app.topics, *app.internal_topics()):
            assert topic.startswith("t1."), (app.app_id, topic)
    state = desired_state(SPEC, naming=naming, partitions=1, now=None, stream_apps=apps)
    assert all(topic.startswith("t1.") for topic in state.topics)
    departments = {d.id for d in SPEC.departments}
    assert {u for u in state.users if not u.startswith("t1.")} == departments
    scope = Scope.namespace(naming, tuple(departments))
    assert all(scope.topic(topic) for topic in state.topics)
    assert all(scope.user(user) for user in state.users)
    assert not scope.topic(NAMING.catalog_topic) and not scope.user("govbus-verifier")


def test_managed_prefixes_follow_the_naming() -> None:
    assert MANAGED_PREFIXES == ("gov.", "dlq.", "govbus.", "govbus-", "verify.", "disputes.")
    assert managed_topic_prefixes(Naming("t1.")) == tuple("t1." + p for p in MANAGED_PREFIXES)
    with pytest.raises(ValueError, match="needs a prefix"):
        Scope.namespace(NAMING)
