"""One download for ``benchmarks.lookup_bench``, in a process of its own as `govbus download`
runs: ``govbus.lookup.download.download`` with the catalog taken from a YAML file instead of
the catalog database. Prints the manifest's row count, seconds and phases' seconds as JSON.

    python -m benchmarks.lookup_download CATALOG.yaml --namespace P --department ID --output F
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from govbus.catalog.yaml_io import load_yaml
from govbus.lookup.download import download
from govbus.vocabulary.config import load_settings
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("catalog")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--department", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), namespace=args.namespace)
    spec = load_yaml(args.catalog)
    naming = settings.naming
    password = PasswordStore(settings.state_dir, naming)(args.department)
    session = DepartmentSession(
        settings, args.department, password, spec, catalog_version=1, naming=naming
    )
    manifest = download(session, spec.resources[0].code, "work-reference", [], Path(args.output))
    print(json.dumps({"rows": manifest.row_count, "seconds": manifest.seconds,
                      "phases": manifest.phases}))  # fmt: skip


if __name__ == "__main__":
    main()
