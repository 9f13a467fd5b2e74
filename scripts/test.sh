#!/usr/bin/env bash
# Set everything up and run every check: lint, format, types, and the tests against a real
# Kafka broker and a real PostgreSQL, both started here. A missing broker or database fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

# Tests keep their own state (broker data, secrets, PostgreSQL) apart from the demo's.
export GOVBUS_TEST_STATE_DIR="${GOVBUS_TEST_STATE_DIR:-$PWD/.state/test}"
mkdir -p "$GOVBUS_TEST_STATE_DIR" "$PWD/.state"
chmod 755 "$PWD/.state" "$GOVBUS_TEST_STATE_DIR"

if [ -z "${GOVBUS_TEST_PG_DSN:-}" ]; then
  GOVBUS_TEST_PG_DSN=$(.venv/bin/govbus --state-dir "$GOVBUS_TEST_STATE_DIR" postgres start --port "${GOVBUS_TEST_PG_PORT:-15432}" --database govbus_test | tail -n1)
  export GOVBUS_TEST_PG_DSN
  # Leave no server behind: stop the PostgreSQL this script started.
  trap '.venv/bin/govbus --state-dir "$GOVBUS_TEST_STATE_DIR" postgres stop >/dev/null 2>&1 || true' EXIT
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import-linter (the layers of docs/architecture.md)"
.venv/bin/lint-imports
echo "== mypy (strict: govbus, connectors, producers, stream_apps, benchmarks)"
.venv/bin/mypy
echo "== promtool (the alert rules and their unit tests, monitoring/alerts)"
promtool check rules monitoring/alerts/govbus-rules.yml
promtool test rules monitoring/alerts/govbus-rules.test.yml
echo "== pytest"
# The slowest tests, printed at the end: the whole command must stay under 25 minutes.
.venv/bin/pytest --durations=25 "$@"
