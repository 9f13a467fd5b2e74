"""The online-lookup part of the demo (article 16 联机查询, article 18 usage audit).

Runs last (after the stream apps, the console's accounts and supervision): 市教育局, which
saw only the public view of a conditional resource in step 23, applies for two of its items,
is granted them, and looks up one citizen on the lookup service with its API key, a purpose, a case
number and an end user. The answer holds the granted items in clear and the public ones
masked, nothing else; the query is in the usage audit chain (what `govbus audit verify
--queries` prints).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from govbus.catalog.store import CatalogStore
from govbus.demo.exchange import CONSUMER, Printer, sample_records
from govbus.demo.sharing import conditional_resource
from govbus.demo.streams import OPERATOR_VIEWER
from govbus.lookup.apikeys import issue_keys, read_key
from govbus.share.requests import ShareRequests
from govbus.subscribe.audit import read_audit, verify_chain
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.spec import CatalogSpec
from producers.validate import record_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lookup_serve(settings: Settings, port: int) -> Iterator[str]:
    """`govbus lookup serve` as its own process, as an operator runs it, on 127.0.0.1:port;
    its base URL once its /health answers 200 (partitions loaded). Stopped with SIGINT, which
    must end it cleanly (exit 0); its output is in <state_dir>/demo-lookup.log."""
    env = dict(os.environ)
    if settings.bootstrap_servers:
        env["GOVBUS_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    log_path = Path(settings.state_dir) / "demo-lookup.log"
    cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(settings.state_dir),
           "lookup", "serve", "--port", str(port), "--instance", "demo"]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _health(base) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"`govbus lookup serve` did not load its partitions in 60 s (exit "
                    f"{proc.poll()}); see {log_path}"
                )
            time.sleep(0.5)
        yield base
    finally:
        stop_process(proc, signal.SIGINT)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`govbus lookup serve` ended with exit {proc.returncode}; see {log_path}"
        )


def _health(base: str) -> int:
    try:
        return _get(f"{base}/health", {})[0]
    except (OSError, ValueError):  # not listening yet
        return 0


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def run(settings: Settings, spec: CatalogSpec, catalog_version: int, out: Printer) -> None:
    consumer = spec.department_by_id(CONSUMER)
    viewer = spec.department_by_id(OPERATOR_VIEWER)
    assert consumer is not None and viewer is not None
    resource = conditional_resource(spec, consumer.code)  # step 14 published 3 records of it
    hidden = [i.code for i in resource.items if not i.shareable_to_all]
    granted = [*resource.key.items, *hidden[:1]]
    with CatalogStore.opened(settings) as store:
        share = ShareRequests(store, coordinator=settings.share_coordinator)
        purpose = resource.purposes[0]
        request = share.submit(
            viewer.id, resource.code, purpose, duty="学籍核验（demo）",
            valid_until=dt.date.today() + dt.timedelta(days=90), items=granted,
        )  # fmt: skip
        provider = spec.department(resource.provider)
        assert provider is not None
        share.approve(request.id, actor=provider.id)  # the service reads the grant from here
    issue_keys(settings.state_dir, [d.id for d in spec.departments])
    api_key = read_key(settings.state_dir, viewer.id)
    out(
        f"29. {viewer.name} was granted items {', '.join(granted)} of {resource.name} "
        f"(request {request.id}); its lookup API key issued as `govbus apply` issues it"
    )
    with lookup_serve(settings, _free_port()) as base:
        key = record_key(resource, sample_records(resource, 3)[0]).decode()
        headers = {
            "Authorization": f"Bearer {api_key}",
            "X-Govbus-Purpose": purpose,
            "X-Govbus-Case-Number": "CZJY-2026-0001",
            "X-Govbus-End-User": urllib.parse.quote("王老师"),
        }
        code = urllib.parse.quote(resource.code, safe="/")
        status, body = _get(f"{base}/v1/resources/{code}/records/{key}", headers)
        if status != 200:
            raise RuntimeError(f"lookup answered {status}: {body}")
        clear = [c for c in body["items"] if c in granted]
        masked = [c for c in body["items"] if c not in granted]
        out(
            f"30. {viewer.name} looked up one citizen on `govbus lookup serve` (purpose {purpose}, "
            f"case CZJY-2026-0001, end user 王老师): view {body['view']}, in clear "
            f"{', '.join(clear)}, masked {', '.join(masked) or 'none'}; "
            f"{len(resource.items) - len(body['items'])} other item(s) withheld; provider "
            f"{body['provenance']['provider']}, under verification "
            f"{body['under_verification']}"
        )
        missing_status, missing = _get(
            f"{base}/v1/resources/{code}/records/{key}",
            {k: v for k, v in headers.items() if k != "X-Govbus-Case-Number"},
        )
        out(f"    without a case number: {missing_status} {missing['error']['code']}")
    out("    `govbus lookup serve` stopped on SIGINT (exit 0)")
    events = read_audit(settings, viewer.id, settings.naming)
    problems = verify_chain(events)
    queries = [e for _, e in events if e.query is not None]
    last = queries[-1].query or {}
    out(
        f"31. `govbus audit verify --queries`: {len(events)} event(s) of {viewer.id}, "
        f"{'chain OK' if not problems else problems[0]}; the lookup: case "
        f"{last.get('case_number')}, end user {last.get('end_user')}, key as HMAC "
        f"{str(last.get('keys_hmac_sha256', ['?'])[0])[:16]}…, items {', '.join(last['items'])}"
    )
