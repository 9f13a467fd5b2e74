"""One lookup service instance for ``benchmarks.lookup_bench``: ``govbus lookup serve``'s code
(govbus.lookup.runner.instance and the service's aiohttp app) with the catalog taken from a
YAML file instead of the catalog database, and no grants.

    python -m benchmarks.lookup_server CATALOG.yaml --namespace P --port N
"""

from __future__ import annotations

import argparse
import dataclasses

from govbus.catalog.yaml_io import load_yaml
from govbus.lookup.runner import instance, serve_until_stopped
from govbus.lookup.service import Limits
from govbus.vocabulary.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("catalog")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), namespace=args.namespace)
    spec = load_yaml(args.catalog)
    advertised = f"127.0.0.1:{args.port}"
    limits = Limits(rate=1e9, burst=1e9)  # the benchmark measures the service, not the limit
    with instance(
        settings, name="bench", advertised=advertised, limits=limits, spec=spec, grants=list
    ) as service:
        serve_until_stopped(service, "127.0.0.1", args.port, banner=f"serving on {advertised}")


if __name__ == "__main__":
    main()
