#!/usr/bin/env bash
# The main job: set everything up, start the local broker, and run the live demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/govbus demo "$@"
