"""The Faust design of the lookup, for ``benchmarks.lookup_designs``: a Faust table filled from
a resource topic and served by Faust's own web server.

    python -m benchmarks.faust_table_server --app-user ID --prefix P --topic T --catalog Y
        --port N

One worker of an app built like every govbus stream app (``stream_apps.runtime.make_app``:
SCRAM, in-memory table with its changelog topic), its web server on 127.0.0.1:N: an agent
puts each record's bytes in the table ``records`` under its key; ``GET /get/{key}`` decodes
the record (as the lookup service does) and answers its payload as JSON; ``GET /count`` the
table's size. No authentication, rights or audit: the bare design.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import faust
from aiohttp import web as aio_web

from govbus.catalog.yaml_io import load_yaml
from govbus.vocabulary.config import load_settings
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.topology import StreamApp
from govbus.vocabulary.wire import SchemaCatalog, decode_single_object
from stream_apps.runtime import make_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-user", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args(argv)
    settings = load_settings()
    password = PasswordStore(settings.state_dir, Naming(args.prefix))(args.app_user)
    spec = load_yaml(args.catalog)
    resource = spec.resources[0]
    schemas = SchemaCatalog.build(spec)
    app_spec = StreamApp(
        args.app_user, args.app_user, "benchmark", reads=(args.topic,), tables=("records",)
    )
    app = make_app(
        app_spec,
        settings,
        password,
        partitions=args.partitions,
        web_enabled=True,
        web_port=args.port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
    )
    source = app.topic(args.topic, key_serializer="raw", value_serializer="raw")
    # Raw bytes in and out of the changelog, as the lookup service keeps them.
    raw: Any = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table("records", partitions=args.partitions, schema=raw)

    @app.agent(source)
    async def fill(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            table[event.key] = event.value

    @app.page("/get/{key}")
    async def get(web: Any, request: Any, key: str) -> Any:
        value = table.get(key.encode())
        if value is None:
            return web.json({"found": False}, status=404)
        env = decode_single_object(value, schemas, reader=resource)
        body = json.dumps({"payload": env["payload"]}, ensure_ascii=False, default=str)
        return aio_web.Response(text=body, content_type="application/json")

    @app.page("/count")
    async def count(web: Any, request: Any) -> Any:
        return web.json({"count": len(table)})

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
