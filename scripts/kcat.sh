#!/usr/bin/env bash
# Debian's kcat, run with a librdkafka that can log in to Kafka 4.x with SCRAM.
#
# Debian 12's kcat links librdkafka 2.0.2, whose SCRAM exchange Kafka 4.x refuses (fixed in
# librdkafka 2.6.1). The confluent-kafka wheel in .venv bundles a newer librdkafka with the same
# C API and soname, so kcat runs unchanged against it. Arguments go to kcat as they are, e.g.
#   scripts/kcat.sh -b 127.0.0.1:19092 -X security.protocol=SASL_SSL \
#     -X ssl.ca.location=<state_dir>/tls/ca.pem -X ssl.endpoint.identification.algorithm=https \
#     -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=cz-mzj -X sasl.password=... -C -t gov...
# (every connection is TLS: the platform CA verifies the broker, and its name is checked)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v kcat >/dev/null || { echo "kcat: not installed (sudo apt-get install kcat)" >&2; exit 127; }
lib=$(ls "$root"/.venv/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1 2>/dev/null | head -n1)
[ -n "$lib" ] || { echo "kcat.sh: no bundled librdkafka; run scripts/setup.sh first" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$lib" "$dir/librdkafka.so.1"
LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" kcat "$@"
