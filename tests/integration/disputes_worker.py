"""Runs the dispute app in a worker process for tests: ``python -m ... CONFIG.json``.

The config names the catalog (YAML), the broker settings, the app user's password, the names'
prefix (``Naming``) and how far ahead the app's clock runs (``clock_days``), for the overdue
drill.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import faust

from govbus.catalog.yaml_io import load_yaml
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import load_settings
from govbus.vocabulary.naming import Naming
from stream_apps.disputes import app as disputes
from stream_apps.registry import AppContext


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        conf = json.load(f)
    settings = load_settings(env=conf["env"])
    ahead = dt.timedelta(days=conf.get("clock_days", 0))
    app = disputes.build(
        settings,
        load_yaml(conf["catalog"]),
        conf["password"],
        AppContext(Naming(conf["prefix"]), conf["partitions"], operator=conf["operator"]),
        clock=lambda: dt.datetime.now(CHINA_TZ) + ahead,
        overdue_interval=conf.get("overdue_interval", 1.0),
        # A killed worker's group membership must lapse fast for the restart test.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1])
