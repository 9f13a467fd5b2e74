"""Federation agreements between platforms, as data (articles 8 and 13).

Article 13 has every district platform interconnect with the city's and the city's with the
province's; nothing crosses a cluster boundary unless both sides opted in, as in X-Road's
federation. An agreement is one JSON document (docs/federation.md, "The agreement format"):

- the *offer*, made by the source platform's operator: which of its resources (by catalog code)
  it sends to which peer, and whether its catalog events go along (the catalog cascade of
  article 8); the offer carries a snapshot of each resource as the source catalogs it, so the
  receiving side can list it as a mirrored entry (provider = the remote department, with its
  platform);
- the *acceptance*, made by the receiving platform's operator: under which share type the
  copies are shared on its side and, for 有条件共享, which of its departments read them;
- a *revocation* by either side, after which the flow stops and its ACLs are removed.

Direction is from source to target; an exchange both ways is two agreements. The documents of
the platforms of one state directory live in ``<state_dir>/federation/agreements/<id>.json``;
``AgreementBook`` reads and writes them, ``Agreement`` holds the rules of the state machine
(offered → accepted → revoked, or offered → revoked).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from govbus.vocabulary.errors import Conflict, UserError
from govbus.vocabulary.spec import CatalogSpec

AGREEMENTS_DIR = Path("federation") / "agreements"
FORMAT_VERSION = 1
RECEIVING_SHARE_TYPES = ("unconditional", "conditional")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class AgreementError(UserError):
    """An agreement cannot be made or changed as asked; the message says which rule."""


class AgreementNotFound(UserError):
    """No agreement with that id."""


@dataclass(frozen=True)
class OfferedResource:
    """A resource of the source catalog as offered: the receiving side's mirrored entry."""

    code: str
    name: str
    provider: str  # the providing department's id on the source platform
    provider_name: str
    share_type: str  # at the source
    topic: str  # the source topic (gov.<code>)


@dataclass(frozen=True)
class Agreement:
    id: str
    source: str  # the offering platform's id
    target: str  # the receiving platform's id
    resources: tuple[OfferedResource, ...]
    catalog: bool  # the source's catalog events go along (cascade to the aggregate catalog)
    offered_at: str
    offered_by: str  # who at the source platform
    source_catalog_topic: str = ""
    accepted_at: str = ""
    accepted_by: str = ""
    share_type: str = ""  # on the receiving side
    consumers: tuple[str, ...] = ()  # receiving departments' ids (conditional)
    revoked_at: str = ""
    revoked_by: str = ""  # the platform id of the side that revoked
    revoke_reason: str = ""

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "active" if self.accepted_at else "offered"

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def flow(self) -> str:
        return f"{self.source}->{self.target}"

    def topics(self) -> tuple[str, ...]:
        """The source topics this agreement mirrors (resource topics, then the catalog's)."""
        topics = tuple(r.topic for r in self.resources)
        return (*topics, self.source_catalog_topic) if self.catalog else topics

    def accept(
        self,
        platform: str,
        share_type: str,
        consumers: Iterable[str],
        by: str,
        now: dt.datetime,
        known_departments: Iterable[str],
    ) -> Agreement:
        """The receiving platform opts in: its share type and its reading departments."""
        if platform != self.target:
            raise AgreementError(
                f"agreement {self.id} is offered by {self.source} to {self.target}; only "
                f"{self.target} can accept it (you ran it as {platform or 'no platform'}: "
                f"add --platform {self.target})"
            )
        if self.state != "offered":
            raise Conflict(f"agreement {self.id} is {self.state}; only an offer can be accepted")
        if share_type not in RECEIVING_SHARE_TYPES:
            raise AgreementError(
                f"agreement {self.id}: share type {share_type!r} on the receiving side must be "
                f"one of {', '.join(RECEIVING_SHARE_TYPES)} (不予共享 needs no agreement)"
            )
        readers = tuple(dict.fromkeys(consumers))
        if share_type == "conditional" and not readers:
            raise AgreementError(
                f"agreement {self.id}: 有条件共享 (conditional) names the departments that read "
                "the copies: give --consumer DEPT (repeatable)"
            )
        known = set(known_departments)
        unknown = [c for c in readers if c not in known]
        if unknown:
            raise AgreementError(
                f"agreement {self.id}: {', '.join(unknown)} is not a department of {platform}'s "
                "catalog (`govbus --platform "
                f"{platform} catalog show` lists them; consumers are the receiving side's)"
            )
        return replace(
            self,
            accepted_at=now.isoformat(),
            accepted_by=by,
            share_type=share_type,
            consumers=readers,
        )

    def revoke(self, platform: str, reason: str, now: dt.datetime) -> Agreement:
        if platform not in (self.source, self.target):
            raise AgreementError(
                f"agreement {self.id} is between {self.source} and {self.target}; only they can "
                f"revoke it (add --platform {self.source} or --platform {self.target})"
            )
        if self.state == "revoked":
            raise Conflict(f"agreement {self.id} was already revoked by {self.revoked_by}")
        return replace(self, revoked_at=now.isoformat(), revoked_by=platform, revoke_reason=reason)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT_VERSION
        data["resources"] = [asdict(r) for r in self.resources]
        data["consumers"] = list(self.consumers)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any], where: str) -> Agreement:
        try:
            if data.get("format") != FORMAT_VERSION:
                raise AgreementError(
                    f"{where}: format {data.get('format')!r}, expected {FORMAT_VERSION}"
                )
            body = {k: v for k, v in data.items() if k != "format"}
            body["resources"] = tuple(OfferedResource(**r) for r in body["resources"])
            body["consumers"] = tuple(body.get("consumers", ()))
            return Agreement(**body)
        except (KeyError, TypeError) as exc:
            raise AgreementError(f"{where}: not an agreement document ({exc})") from exc


def offer(
    agreement_id: str,
    source: str,
    target: str,
    spec: CatalogSpec,
    codes: Iterable[str],
    *,
    catalog: bool,
    by: str,
    now: dt.datetime,
    resource_topic: Any,
    catalog_topic: str,
) -> Agreement:
    """The source platform's offer of ``codes`` of its catalog ``spec`` to ``target``.

    ``resource_topic(code)`` names a resource's topic (the source's ``Naming``)."""
    if not _ID.fullmatch(agreement_id):
        raise AgreementError(
            f"agreement id {agreement_id!r}: lower-case letters, digits and hyphens"
        )
    if source == target:
        raise AgreementError(f"platform {source} cannot federate with itself")
    wanted = list(dict.fromkeys(codes))
    if not wanted and not catalog:
        raise AgreementError(
            "an offer names at least one resource (--resource CODE) or the catalog (--catalog)"
        )
    names = {d.code: d for d in spec.departments}
    offered = []
    for code in wanted:
        resource = spec.resource(code)
        if resource is None:
            raise AgreementError(
                f"resource {code} is not in {source}'s catalog (`govbus --platform {source} "
                "catalog show` lists them)"
            )
        if resource.share_type == "none":
            raise AgreementError(
                f"resource {code} ({resource.name}) is 不予共享 (none) in {source}'s catalog: "
                "article 10 keeps it with its provider, so it cannot be offered to a peer"
            )
        provider = names[resource.provider]
        offered.append(
            OfferedResource(
                code=code,
                name=resource.name,
                provider=provider.id,
                provider_name=provider.name,
                share_type=resource.share_type,
                topic=resource_topic(code),
            )
        )
    return Agreement(
        id=agreement_id,
        source=source,
        target=target,
        resources=tuple(offered),
        catalog=catalog,
        offered_at=now.isoformat(),
        offered_by=by,
        source_catalog_topic=catalog_topic if catalog else "",
    )


@dataclass
class AgreementBook:
    """The agreements of the platforms of one root state directory, one JSON file each."""

    root_state_dir: Path

    @property
    def directory(self) -> Path:
        return self.root_state_dir / AGREEMENTS_DIR

    def path(self, agreement_id: str) -> Path:
        if not _ID.fullmatch(agreement_id):
            raise AgreementNotFound(f"no agreement {agreement_id!r} (ids: letters, digits, -)")
        return self.directory / f"{agreement_id}.json"

    def get(self, agreement_id: str) -> Agreement:
        path = self.path(agreement_id)
        if not path.is_file():
            known = ", ".join(a.id for a in self.all()) or "none yet"
            raise AgreementNotFound(
                f"no agreement {agreement_id!r} in {self.directory} (known: {known})"
            )
        return Agreement.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))

    def all(self) -> list[Agreement]:
        if not self.directory.is_dir():
            return []
        return [
            Agreement.from_dict(json.loads(p.read_text(encoding="utf-8")), str(p))
            for p in sorted(self.directory.glob("*.json"))
        ]

    def involving(self, platform: str) -> list[Agreement]:
        return [a for a in self.all() if platform in (a.source, a.target)]

    def add(self, agreement: Agreement) -> Path:
        path = self.path(agreement.id)
        if path.exists():
            raise Conflict(f"agreement {agreement.id} exists already ({path}); choose another id")
        return self._write(agreement, exclusive=True)

    def save(self, agreement: Agreement) -> Path:
        return self._write(agreement, exclusive=False)

    def _write(self, agreement: Agreement, exclusive: bool) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(agreement.id)
        text = json.dumps(agreement.to_dict(), ensure_ascii=False, indent=2) + "\n"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        if exclusive:
            os.link(tmp, path)  # fails if another offer took the id meanwhile
            tmp.unlink()
        else:
            os.replace(tmp, path)  # readers see the old or the new document, never half
        return path
