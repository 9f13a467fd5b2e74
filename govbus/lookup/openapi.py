"""The OpenAPI 3.1 description of the lookup service, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from govbus.lookup.errors import CODES
from govbus.lookup.request import (
    API_KEY_HEADER,
    CASE_HEADER,
    END_USER_HEADER,
    MAX_BATCH,
    PURPOSE_HEADER,
    PURPOSES,
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": [*CODES, "audit-unavailable"]},
                "message": {"type": "string"},
            },
        }
    },
}

_RECORD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "data": {"type": "object", "description": "the items the department may see"},
        "provenance": {
            "type": "object",
            "properties": {
                "provider": {"type": "string", "description": "统一社会信用代码 of the provider"},
                "catalog_version": {"type": "integer"},
                "event_time": {"type": "string", "format": "date-time"},
                "partition": {"type": "integer"},
                "offset": {"type": "integer"},
            },
        },
        "under_verification": {"type": "boolean", "description": "article 19: open dispute"},
    },
}

_COMMON = {
    "resource": {"type": "string"},
    "view": {"type": "string", "enum": ["full", "granted", "public"]},
    "items": {"type": "array", "items": {"type": "string"}},
    "audit": {
        "type": "object",
        "properties": {"event_hash": {"type": "string"}, "chain": {"type": "string"}},
    },
}


def _headers() -> list[dict[str, Any]]:
    return [
        {
            "name": PURPOSE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": list(PURPOSES)},
        },
        {
            "name": CASE_HEADER,
            "in": "header",
            "required": True,
            "description": "办件编号",
            "schema": {"type": "string", "pattern": "^[!-~]{1,64}$"},
        },
        {
            "name": END_USER_HEADER,
            "in": "header",
            "required": True,
            "description": "经办人, percent-encoded UTF-8",
            "schema": {"type": "string"},
        },
        {
            "name": "code",
            "in": "path",
            "required": True,
            "description": "政务信息资源代码",
            "schema": {"type": "string"},
        },
    ]


def _errors() -> dict[str, Any]:
    statuses = sorted(set(CODES.values()))
    return {
        str(s): {
            "description": ", ".join(c for c, v in CODES.items() if v == s),
            "content": {"application/json": {"schema": _ERROR}},
        }
        for s in statuses
    }


def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "govbus lookup (联机查询)",
            "version": "1",
            "description": "Current state of a resource's records by key, filtered to the "
            "department's rights, every query in the usage audit chain (docs/lookup.md).",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
            }
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/resources/{code}/records/{key}": {
                "get": {
                    "summary": "one record by its key",
                    "parameters": [
                        *_headers(),
                        {
                            "name": "key",
                            "in": "path",
                            "required": True,
                            "description": "key items joined with |",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the record",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {**_COMMON, **_RECORD["properties"]},
                                    }
                                }
                            },
                        },
                        **_errors(),
                    },
                }
            },
            "/v1/resources/{code}/lookup": {
                "post": {
                    "summary": f"up to {MAX_BATCH} records by key",
                    "parameters": _headers(),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["keys"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "keys": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": MAX_BATCH,
                                            "items": {"type": "string"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the records found, the keys missing",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            **_COMMON,
                                            "records": {"type": "array", "items": _RECORD},
                                            "missing": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(),
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "200 when every assigned partition is loaded",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "loading"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
    }
