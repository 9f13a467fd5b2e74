"""A Faust agent that does nothing with its events: ``verify_bench``'s no-op baseline.

    python -m benchmarks.noop_agent --app-user ID --topic T --count N --report PATH [--batch B]

Runs one worker of a Faust app built like every govbus stream app (``stream_apps.runtime``:
SCRAM, 50 ms fetch wait, 1 s commits) whose one agent takes the topic's events in batches as
the verifier does (``take_events(batch, 5 ms)``) and only counts them. Once it has counted
``count`` events it writes one JSON object to ``PATH`` (stdout is the worker's log),
``{"events": n, "after_first_batch": m, "seconds": s}`` (``m`` events arrived in the ``s``
seconds after the first batch), and keeps running until SIGINT or SIGTERM. The app's user
(its consumer group and app id too) must exist with READ on the topic (``verify_bench``
reconciles it); its password is read from the state directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import faust

from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.topology import StreamApp
from stream_apps.runtime import make_app


def build(
    settings: Settings,
    app_spec: StreamApp,
    password: str,
    topic: str,
    count: int,
    batch: int,
    report: Path,
) -> faust.App:
    app = make_app(app_spec, settings, password)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"{app_spec.app_id}.noop")
    async def noop(stream: faust.StreamT[bytes]) -> None:
        seen, first_batch, first = 0, 0, 0.0
        async for events in stream.take_events(batch, 0.005):  # type: ignore[attr-defined]
            now = time.perf_counter()
            if not seen:
                first, first_batch = now, len(events)
            before, seen = seen, seen + len(events)
            if before < count <= seen:
                counted: dict[str, Any] = {
                    "events": seen,
                    "after_first_batch": seen - first_batch,
                    "seconds": now - first,
                }
                report.write_text(json.dumps(counted), encoding="utf-8")

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--app-user", required=True, help="the app's user, group and app id")
    parser.add_argument("--prefix", default="", help="the namespace (where its password is)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--report", type=Path, required=True, help="where the count goes")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    settings = load_settings()
    password = PasswordStore(settings.state_dir, Naming(args.prefix))(args.app_user)
    spec = StreamApp(args.app_user, args.app_user, "benchmark baseline", reads=(args.topic,))
    app = build(settings, spec, password, args.topic, args.count, args.batch, args.report)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
