"""The lookup HTTP service (aiohttp): answers by key, forwards to the owning instance, audits.

Routes (docs/lookup.md has the full API; ``/openapi.json`` serves it):

- ``GET  /v1/resources/{code}/records/{key}``: one record;
- ``POST /v1/resources/{code}/lookup`` with ``{"keys": [...]}``: up to 100 records;
- ``GET  /health``: 200 when every assigned partition is loaded, else 503, with the detail;
- ``GET  /metrics``: the Prometheus registry (govbus.vocabulary.metrics);
- ``GET  /openapi.json``;
- ``POST /internal/v1/resources/{code}/fetch``: what another instance asks of this one for the
  keys whose partitions it holds (records as stored, before filtering), shown the service's
  forwarding token (a platform secret); never for departments.

A request is authenticated (API key -> department), rate-limited per department, its headers
parsed (purpose, case number, end user), the department's view decided (``rights``), its keys
checked (``request``), the records fetched (locally or from the owning instance), the audit
event written and acknowledged (``audit``), and only then answered. A refusal is a 4xx with
``{"error": {"code", "message"}}``; an unexpected failure is a 500 that names no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from govbus.lookup import request as req
from govbus.lookup.apikeys import KeyRegistry
from govbus.lookup.audit import AuditUnavailable, QueryAuditor
from govbus.lookup.errors import LookupRefused
from govbus.lookup.openapi import openapi
from govbus.lookup.ratelimit import RateLimiter
from govbus.lookup.rights import View, view_for
from govbus.lookup.store import Found, ResourceState
from govbus.share.requests import ShareGrant
from govbus.vocabulary import metrics
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.partitioning import partition_of
from govbus.vocabulary.spec import CatalogSpec, Department, Resource

log = logging.getLogger(__name__)
FORWARD_HEADER = "X-Govbus-Forward-Token"
GRANTS_EVERY = 10.0  # seconds between re-reads of the grants (an approval takes effect then)
KEYS_EVERY = 5.0
DEPARTMENT = web.RequestKey("department", str)  # the authenticated department of a request


class Partitions(Protocol):
    """Where the records are (``loader.Loader``; a benchmark passes a local-only one)."""

    resources: dict[str, ResourceState]
    topic_of: dict[str, str]
    partition_counts: dict[str, int]
    error: str | None

    def ready(self) -> bool: ...
    def owns(self, topic: str, partition: int) -> bool: ...
    def loaded(self, topic: str, partition: int) -> bool: ...
    def owner_of(self, topic: str, partition: int, refresh: bool = False) -> str | None: ...


@dataclass(frozen=True)
class Limits:
    rate: float = 200.0  # lookups per second per department
    burst: float = 400.0


DEFAULT_LIMITS = Limits()


def _found_json(f: Found) -> dict[str, Any]:
    return {
        "key": f.key,
        "payload": f.payload,
        "provider": f.provider,
        "catalog_version": f.catalog_version,
        "event_time": f.event_time.isoformat(),
        "partition": f.partition,
        "offset": f.offset,
        "under_verification": f.under_verification,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # Decimal: exact text


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=_json_default)


class LookupService:
    def __init__(
        self,
        spec: CatalogSpec,
        partitions: Partitions,
        auditor: QueryAuditor,
        keys: KeyRegistry,
        grants: Callable[[], Sequence[ShareGrant]],
        forward_token: str,
        *,
        instance: str,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.spec = spec
        self.partitions = partitions
        self.auditor = auditor
        self.keys = keys
        self._grants_source = grants
        self.grants: Sequence[ShareGrant] = grants()
        self.forward_token = forward_token
        self.instance = instance
        self.limiter = RateLimiter(limits.rate, limits.burst)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- the application ------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=req.MAX_BODY_BYTES)
        app.router.add_get("/v1/resources/{code:.+}/records/{key}", self._single)
        app.router.add_post("/v1/resources/{code:.+}/lookup", self._batch)
        app.router.add_post("/internal/v1/resources/{code:.+}/fetch", self._fetch)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/openapi.json", self._openapi)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._tasks.append(asyncio.create_task(self._refresh_loop()))

    async def _cleanup(self, _app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            await self._session.close()

    async def _refresh_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_grants = time.monotonic()
        while True:
            await asyncio.sleep(KEYS_EVERY)
            self.keys.refresh()
            if time.monotonic() - last_grants >= GRANTS_EVERY:
                try:
                    self.grants = await loop.run_in_executor(None, self._grants_source)
                except Exception:  # keep the grants we have; the next round retries
                    log.exception("cannot re-read the share grants")
                last_grants = time.monotonic()

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except LookupRefused as exc:
            dept = request.get(DEPARTMENT, "unknown")
            metrics.LOOKUP_REQUESTS.labels(department=dept, outcome=exc.code).inc()
            headers = {}
            if exc.code == "rate-limited":
                headers["Retry-After"] = f"{max(1, round(self.limiter.retry_after(dept)))}"
            return web.json_response(exc.body(), status=exc.status, headers=headers, dumps=_dumps)
        except web.HTTPException as exc:
            code = {404: "unknown-route", 405: "method-not-allowed", 413: "batch-too-large"}.get(
                exc.status
            )
            if code is None:
                raise
            refused = LookupRefused(code, f"{request.method} {request.path}: {exc.reason}")
            return web.json_response(refused.body(), status=exc.status)
        except AuditUnavailable as exc:
            body = {"error": {"code": "audit-unavailable", "message": str(exc)}}
            return web.json_response(body, status=503)

    # -- the department's requests --------------------------------------------------------------
    def _department(self, request: web.Request) -> Department:
        key = req.api_key(request.headers)
        dept_id = self.keys.department(key)
        if dept_id is None:
            raise LookupRefused(
                "unauthenticated",
                "the API key is not one `govbus apply` issued (or it was revoked)",
            )
        dept = self.spec.department_by_id(dept_id)
        if dept is None:
            raise LookupRefused(
                "unauthenticated", f"department {dept_id} is no longer in the catalog"
            )
        request[DEPARTMENT] = dept.id
        self.limiter.take(dept.id)
        return dept

    def _resource(self, code: str) -> Resource:
        resource = self.spec.resource(code)
        if resource is None:
            raise LookupRefused(
                "unknown-resource",
                f"resource {code[:80]!r} is not in the catalog (政务信息资源目录); find the code "
                "with `govbus catalog search`",
            )
        return resource

    async def _single(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        dept = self._department(request)
        context = req.query_context(request.headers)
        resource = self._resource(request.match_info["code"])
        view = view_for(dept, resource, context.purpose, self.grants)
        key = req.normalize_key(resource, request.match_info["key"])
        answer = await self._answer(dept, resource, context, view, [key])
        metrics.LOOKUP_LATENCY.labels(kind="single").observe(time.monotonic() - started)
        if not answer["records"]:
            metrics.LOOKUP_REQUESTS.labels(department=dept.id, outcome="not-found").inc()
            missing = LookupRefused(
                "not-found", f"resource {resource.code} holds no record with this key"
            )
            return web.json_response(
                {**missing.body(), "audit": answer["audit"]}, status=missing.status
            )
        record = answer["records"][0]
        return web.json_response(
            {**{k: v for k, v in answer.items() if k not in ("records", "missing")}, **record},
            dumps=_dumps,
        )

    async def _batch(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        dept = self._department(request)
        context = req.query_context(request.headers)
        resource = self._resource(request.match_info["code"])
        view = view_for(dept, resource, context.purpose, self.grants)
        keys = req.parse_batch(resource, await request.read())
        answer = await self._answer(dept, resource, context, view, keys)
        metrics.LOOKUP_LATENCY.labels(kind="batch").observe(time.monotonic() - started)
        return web.json_response(answer, dumps=_dumps)

    async def _answer(
        self,
        dept: Department,
        resource: Resource,
        context: req.QueryContext,
        view: View,
        keys: list[str],
    ) -> dict[str, Any]:
        at = dt.datetime.now(CHINA_TZ)
        found = await self._gather(resource, keys)
        event = await self.auditor.record(dept.id, resource.code, context, keys, found, view, at)
        metrics.LOOKUP_REQUESTS.labels(department=dept.id, outcome="ok").inc()
        metrics.LOOKUP_RECORDS.labels(resource=resource.code, department=dept.id).inc(len(found))
        by_key = {f.key: f for f in found}
        records = [
            {
                "key": f.key,
                "data": view.shape(f.payload),
                "provenance": {
                    "provider": f.provider,
                    "catalog_version": f.catalog_version,
                    "event_time": f.event_time.isoformat(),
                    "partition": f.partition,
                    "offset": f.offset,
                },
                "under_verification": f.under_verification,
            }
            for f in (by_key[k] for k in keys if k in by_key)
        ]
        return {
            "resource": resource.code,
            "view": view.kind,
            "items": list(view.items),
            "records": records,
            "missing": [k for k in keys if k not in by_key],
            "audit": {"event_hash": event.hash, "chain": event.chain},
        }

    # -- where the records are ------------------------------------------------------------------
    async def _gather(self, resource: Resource, keys: Sequence[str]) -> list[Found]:
        topic = self.partitions.topic_of[resource.code]
        count = self.partitions.partition_counts.get(topic)
        if not count:
            raise LookupRefused(
                "not-ready",
                f"topic {topic} of resource {resource.code} did not exist when the service "
                "started; restart the service after `govbus apply` created it",
            )
        located = [(partition_of(key, count), key) for key in keys]
        local = [(p, key) for p, key in located if self.partitions.owns(topic, p)]
        owners: dict[int, str] = {}
        loop = asyncio.get_running_loop()
        for p in sorted({p for p, _ in located if not self.partitions.owns(topic, p)}):
            # Asking the broker blocks (DescribeConsumerGroups; cached 5 s): off the event loop.
            owner = await loop.run_in_executor(None, self.partitions.owner_of, topic, p)
            if owner is None:
                owner = await loop.run_in_executor(None, self.partitions.owner_of, topic, p, True)
            if owner is None:
                raise LookupRefused(
                    "not-ready",
                    f"no instance holds partition {p} of {topic} right now (rebalancing); "
                    "retry in a few seconds",
                )
            owners[p] = owner
        remote: dict[str, list[str]] = {}
        for p, key in located:
            if p in owners:
                remote.setdefault(owners[p], []).append(key)
        found = self._local(resource, topic, local)
        if remote:
            answers = await asyncio.gather(
                *(self._forward(owner, resource, ks) for owner, ks in remote.items())
            )
            for part in answers:
                found.extend(part)
        return found

    def _local(
        self, resource: Resource, topic: str, keys: Sequence[tuple[int, str]]
    ) -> list[Found]:
        state = self.partitions.resources[resource.code]
        out = []
        for p, key in keys:
            if not self.partitions.loaded(topic, p):
                raise LookupRefused(
                    "not-ready",
                    f"partition {p} of {topic} is still being loaded on instance "
                    f"{self.instance}; retry in a few seconds (GET /health shows the progress)",
                )
            hit = state.get(p, key)
            if hit is not None:
                out.append(hit)
        return out

    async def _forward(self, owner: str, resource: Resource, keys: list[str]) -> list[Found]:
        assert self._session is not None
        url = f"http://{owner}/internal/v1/resources/{resource.code}/fetch"
        try:
            async with self._session.post(
                url, json={"keys": keys}, headers={FORWARD_HEADER: self.forward_token}
            ) as resp:
                body = await resp.json()
                if resp.status != 200:
                    message = body.get("error", {}).get("message", f"HTTP {resp.status}")
                    raise LookupRefused(
                        "not-ready", f"instance {owner} could not answer: {message}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LookupRefused(
                "not-ready", f"instance {owner} holding these keys is unreachable ({exc})"
            ) from None
        return [
            Found(
                key=r["key"],
                payload=_revive(resource, r["payload"]),
                provider=r["provider"],
                catalog_version=int(r["catalog_version"]),
                event_time=dt.datetime.fromisoformat(r["event_time"]),
                partition=int(r["partition"]),
                offset=int(r["offset"]),
                under_verification=bool(r["under_verification"]),
            )
            for r in body["records"]
        ]

    async def _fetch(self, request: web.Request) -> web.Response:
        """Another instance asks for keys whose partitions this one holds."""
        if request.headers.get(FORWARD_HEADER) != self.forward_token:
            raise LookupRefused("unauthenticated", "not an instance of this lookup service")
        resource = self._resource(request.match_info["code"])
        keys = req.parse_batch(resource, await request.read())
        topic = self.partitions.topic_of[resource.code]
        count = self.partitions.partition_counts.get(topic, 0)
        mine = [(partition_of(k, count), k) for k in keys]
        for p, _ in mine:
            if not self.partitions.owns(topic, p):
                raise LookupRefused(
                    "not-ready",
                    f"instance {self.instance} no longer holds partition {p} of {topic}",
                )
        found = self._local(resource, topic, mine)
        return web.json_response({"records": [_found_json(f) for f in found]}, dumps=_dumps)

    # -- operations -----------------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        ready = self.partitions.ready() and self.partitions.error is None
        assigned = sorted(
            f"{t}:{p}"
            for t, count in self.partitions.partition_counts.items()
            for p in range(count)
            if self.partitions.owns(t, p)
        )
        body = {
            "status": "failed" if self.partitions.error else ("ready" if ready else "loading"),
            "instance": self.instance,
            "error": self.partitions.error,
            "assigned": assigned,
            "records": sum(len(r) for r in self.partitions.resources.values()),
        }
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi())


def _revive(resource: Resource, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A payload forwarded as JSON, with dates and times back as Python values for masking and
    the answer's JSON (which writes them as ISO text again)."""
    out = dict(payload)
    for item in resource.items:
        value = out.get(item.code)
        if isinstance(value, str) and item.data_type in ("D", "T"):
            with contextlib.suppress(ValueError):  # not ISO text: shown as it came
                out[item.code] = (
                    dt.date.fromisoformat(value)
                    if item.data_type == "D"
                    else dt.datetime.fromisoformat(value)
                )
    return out
