"""The bus's wire format: Avro single-object encoding of a resource's envelope.

A message value is (Avro specification, "Single object encoding")::

    C3 01                 2-byte marker (format version 1)
    <8 bytes>             CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical
                          Form, little-endian
    <Avro binary body>    the envelope record (govbus.vocabulary.schemas.envelope_schema)

so any Avro library can read it without a schema registry: the fingerprint says which schema
wrote it, and the schemas come from the catalog (``govbus catalog schemas`` writes them as
.avsc files). Messages also carry the Kafka headers ``govbus-schema`` (the envelope schema's
full name) and ``govbus-catalog-version`` (the producer's catalog version, decimal text), for
tools that route or inspect without decoding.

The fingerprint is that of the spec's Parsing Canonical Form, as Java and fastavro compute it.
Note for Python ``avro`` (1.12) users: its ``Schema.fingerprint()`` keeps ``{"type":"long"}``
for a primitive that had a ``logicalType`` (the spec's [PRIMITIVES] rule writes ``"long"``),
so it does not match for our schemas (they all have timestamps); use fastavro's
``to_parsing_canonical_form`` and ``fingerprint``, or collapse those objects first.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fastavro

from govbus.vocabulary import schemas
from govbus.vocabulary.avro_body import body_writer
from govbus.vocabulary.spec import CatalogSpec, Resource

__all__ = [
    "HEADER_CATALOG_VERSION",
    "HEADER_SCHEMA",
    "HEADER_SIZE",
    "MAGIC",
    "Headers",
    "SchemaCatalog",
    "decode_single_object",
    "encode_single_object",
    "encode_upsert",
    "envelope_name",
    "fingerprint",
    "headers",
    "read_single_object",
    "split_single_object",
    "written_with",
]

MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MAGIC) + FINGERPRINT_SIZE
HEADER_SCHEMA = "govbus-schema"
HEADER_CATALOG_VERSION = "govbus-catalog-version"
# Kafka message headers as confluent-kafka takes them.
Headers = list[tuple[str, str | bytes | None]]


def fingerprint(resource: Resource) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of the resource's envelope schema, as on the wire."""
    return schemas.codec(resource).fingerprint


def envelope_name(resource: Resource) -> str:
    """Full name of the envelope schema (the ``govbus-schema`` header)."""
    return f"{schemas.schema_name(resource)}_Event"


def headers(resource: Resource, catalog_version: int) -> Headers:
    return [
        (HEADER_SCHEMA, envelope_name(resource).encode()),
        (HEADER_CATALOG_VERSION, str(catalog_version).encode()),
    ]


def _single_object(codec: schemas.Codec, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(codec.fingerprint)
    if record["payload"] is not None:
        # Name the union branch (fastavro's tuple notation): saves matching the record against
        # the union's branches, a third of the encoding time; the bytes are the same.
        record["payload"] = (codec.payload_name, record["payload"])
    fastavro.schemaless_writer(out, codec.parsed, record)
    return out.getvalue()


def encode_single_object(resource: Resource, envelope: Mapping[str, Any]) -> bytes:
    """Single-object encoding of one envelope; raises schemas.EncodeError if it does not fit.

    The body is ``schemas.encode``'s (values checked and converted by ``to_avro_envelope``).
    """
    return _single_object(schemas.codec(resource), schemas.to_avro_envelope(resource, envelope))


def encode_upsert(
    resource: Resource,
    *,
    provider: str,
    catalog_version: int,
    event_time: dt.datetime,
    trace_id: str,
    payload: dict[str, Any],
) -> bytes:
    """Single-object encoding of an UPSERT whose payload is already in Avro terms.

    For the publish hot path: ``payload`` comes from ``validate.avro_payload`` of a record
    ``validate_record`` accepted, so its values are not checked a second time. The result is
    the same bytes as ``encode_single_object``, written by ``avro_body`` (compiled per
    resource) instead of fastavro.
    """
    out = [MAGIC, schemas.codec(resource).fingerprint]
    body_writer(resource).write(out, provider, catalog_version, event_time, trace_id, payload)
    return b"".join(out)


@dataclass
class SchemaCatalog:
    """Writer schemas by fingerprint: the resources of a catalog and of its earlier versions.

    Where several versions have the same schema for a resource, the newest one's resource is
    kept (the schema is the same; only other catalog fields differ).
    """

    by_fingerprint: dict[bytes, Resource] = field(default_factory=dict)

    @staticmethod
    def build(spec: CatalogSpec, history: Iterable[CatalogSpec] = ()) -> SchemaCatalog:
        """From the current catalog and, for records written earlier, older versions."""
        out = SchemaCatalog()
        for version in (spec, *history):
            for resource in version.resources:
                out.by_fingerprint.setdefault(fingerprint(resource), resource)
        return out

    def writer(self, fp: bytes) -> Resource:
        """The resource whose schema has fingerprint ``fp``; KeyError(hex) if none has."""
        try:
            return self.by_fingerprint[fp]
        except KeyError:
            raise KeyError(fp.hex()) from None

    def __len__(self) -> int:
        return len(self.by_fingerprint)

    def __contains__(self, fp: object) -> bool:
        return fp in self.by_fingerprint


def written_with(data: bytes, fp: bytes | None) -> bool:
    """Whether ``data`` is single-object encoded with the schema of fingerprint ``fp``."""
    return data[len(MAGIC) : HEADER_SIZE] == fp and data[: len(MAGIC)] == MAGIC


def split_single_object(data: bytes) -> tuple[bytes, bytes]:
    """(fingerprint, Avro body); ValueError if ``data`` is not single-object encoded."""
    if len(data) < HEADER_SIZE or data[:2] != MAGIC:
        raise ValueError(
            f"not Avro single-object encoded: expected marker {MAGIC.hex()} and an 8-byte "
            f"fingerprint, got {len(data)} byte(s) starting {data[:2].hex() or '(nothing)'}"
        )
    return data[len(MAGIC) : HEADER_SIZE], data[HEADER_SIZE:]


def read_single_object(
    data: bytes, catalog: SchemaCatalog, *, reader: Resource | None = None
) -> tuple[Resource, dict[str, Any]]:
    """(writer resource, envelope dict) of a message value.

    The writer schema is found by the fingerprint (KeyError with the fingerprint in hex if the
    catalog does not have it: the producer used a newer catalog). The record is read with
    ``reader``'s schema (default: the writer's), resolving an older writer schema onto it.
    Raises ValueError or EOFError for bytes that are not a valid record.
    """
    fp, body = split_single_object(data)
    writer = schemas.codec(catalog.writer(fp))
    target = writer if reader is None else schemas.codec(reader)
    # As schemas.decode (a test holds them equal), with schemas parsed once per resource; the
    # same fingerprint on both sides needs no schema resolution.
    record = fastavro.schemaless_reader(
        io.BytesIO(body), writer.parsed, None if target.fingerprint == fp else target.parsed
    )
    if not isinstance(record, dict):
        raise ValueError(f"resource {target.resource.code}: decoded data is not an envelope")
    return writer.resource, schemas.in_china_time(record, target.timestamp_items)


def decode_single_object(
    data: bytes, catalog: SchemaCatalog, *, reader: Resource | None = None
) -> dict[str, Any]:
    """The envelope dict of a message value (see ``read_single_object``)."""
    return read_single_object(data, catalog, reader=reader)[1]
