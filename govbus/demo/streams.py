"""The stream-app part of the demo: verification finds a disputed copy, the provider settles
it, and a department without a grant reads a conditional resource's public view.

The apps run as they do in production: one ``govbus stream-apps run NAME`` worker process per
app, each as its own SCRAM user with the ACLs ``govbus apply`` derived for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from govbus.demo.exchange import CONSUMER, PROVIDER, Printer, sample_records
from govbus.demo.sharing import conditional_resource
from govbus.subscribe.consumer import Record, Subscriber
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_processes
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec
from producers.observe import Observer
from stream_apps.disputes.client import DisputeClient

APPS = ("govbus-verifier", "govbus-disputes", "govbus-projector")
OPERATOR_VIEWER = "cz-jyj"  # 市教育局: holds no grant for the conditional resource
WAIT = 180.0  # a worker on a busy 2-core machine takes a while to join its group
T = TypeVar("T")


@contextmanager
def workers(settings: Settings, names: tuple[str, ...], log_dir: Path) -> Iterator[None]:
    """Run ``govbus stream-apps run NAME`` for each app; stop them (SIGTERM) afterwards."""
    env = dict(os.environ)
    if settings.bootstrap_servers:
        env["GOVBUS_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            log = (log_dir / f"{name}.log").open("wb")
            cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(settings.state_dir)]
            procs.append(
                subprocess.Popen(
                    [*cmd, "stream-apps", "run", name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        yield
    finally:
        stop_processes(procs)


def wait_until(what: str, probe: Callable[[], T | None], log_dir: Path) -> T:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(2)
    raise RuntimeError(f"demo: {what} did not happen within {WAIT:.0f} s; see {log_dir}/*.log")


def run(settings: Settings, spec: CatalogSpec, catalog_version: int, out: Printer) -> None:
    passwords = PasswordStore(settings.state_dir)
    log_dir = settings.state_dir / "demo-logs"
    provider = spec.department_by_id(PROVIDER)
    holder = spec.department_by_id(CONSUMER)
    assert provider is not None and holder is not None
    resource = next(
        r
        for r in spec.resources
        if r.provider == provider.code and any(h.department == holder.code for h in r.holders)
    )
    held = next(h.items for h in resource.holders if h.department == holder.code)
    item = held[-1]  # household_address in the sample
    # The provider's records of step 10 (the same deterministic sample values).
    records = sample_records(resource, 2)
    copies: list[dict[str, Any]] = []
    for n, record in enumerate(records):
        copy = {code: record[code] for code in (*resource.key.items, *held)}
        value = str(record[item])
        # The first copy differs only in width (示例１ vs 示例1): the text rule finds it equal.
        # The second is really different: a dispute.
        copy[item] = value.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        if n == 1:
            copy[item] = value + "（旧址）"
        copies.append(copy)

    out(f"19. stream apps started: {', '.join(APPS)} (`govbus stream-apps run NAME`, logs in "
        f"{log_dir})")  # fmt: skip
    with workers(settings, APPS, log_dir):
        with Observer(
            DepartmentSession(
                settings, holder.id, passwords(holder.id), spec, catalog_version=catalog_version
            )
        ) as obs:
            report = obs.observe(resource.code, copies, source="demo")
        out(
            f"20. {holder.name}, a catalogued holder of {resource.name}, sent its copies of "
            f"{', '.join(held)} for verification: {report.delivered} observations"
        )
        steward = DisputeClient(
            DepartmentSession(
                settings, settings.share_coordinator, passwords(settings.share_coordinator), spec
            )
        )
        key = "|".join(str(records[1][k]) for k in resource.key.items)

        def detected() -> dict[str, Any] | None:
            found = [
                d
                for d in steward.disputes(resource.code).values()
                if d["key"] == key and d["origin"] == "detected" and d["state"] == "open"
            ]
            return found[0] if found else None

        dispute = wait_until("the verifier's detection", detected, log_dir)
        auth, seen = dispute["authoritative"], dispute["observed"]
        equal_key = "|".join(str(records[0][k]) for k in resource.key.items)
        width_only = [d for d in steward.disputes(resource.code).values() if d["key"] == equal_key]
        out(
            f"21. dispute {dispute['dispute_id']} opened (多元校核, rule {dispute['rule']}) on "
            f"item {dispute['item']}: provider {auth['value']!r} vs holder {seen['value']!r}; "
            f"due {dispute['due']} (5 working days); the copy differing only in character width: "
            f"{len(width_only)} dispute(s)"
        )
        dispute_id = dispute["dispute_id"]

        def in_state(state: str) -> Callable[[], dict[str, Any] | None]:
            def probe() -> dict[str, Any] | None:
                current = steward.disputes(resource.code).get(dispute_id)
                return current if current and current["state"] == state else None

            return probe

        owner = DisputeClient(
            DepartmentSession(settings, provider.id, passwords(provider.id), spec)
        )
        owner.ack(dispute_id)
        wait_until("the acknowledgement", in_state("acknowledged"), log_dir)
        owner.resolve(
            dispute_id,
            "confirmed",
            "户籍登记地址以公安户籍系统为准，持有部门的副本为旧址，请其更新",
        )
        final = wait_until("the resolution", in_state("resolved"), log_dir)
        out(
            f"22. {provider.name} acknowledged and resolved it: {final['outcome']} "
            f"(version {final['version']}; stewards follow live with `govbus disputes watch`)"
        )

        viewed = conditional_resource(spec, holder.code)
        viewer = spec.department_by_id(OPERATOR_VIEWER)
        assert viewer is not None
        got: list[Record] = []

        def view_records() -> list[Record] | None:
            Subscriber(
                DepartmentSession(settings, viewer.id, passwords(viewer.id), spec),
                viewed.code,
                "work-reference",
                view="public",
                group_suffix="demo-view",
            ).run(got.append, timeout=3)
            return got or None

        wait_until("the public view", view_records, log_dir)
        sample = got[0].value or {}
        out(
            f"23. {viewer.name} (no grant) reads the public view of {viewed.name} (article 10): "
            f"{len(got)} records with only {', '.join(sample)}, e.g. {sample}"
        )
