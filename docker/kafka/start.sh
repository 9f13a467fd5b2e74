#!/usr/bin/env bash
# Entry point of the kafka service in docker-compose.kafka.yml.
#
# The apache/kafka image formats storage without SCRAM credentials, and a broker that enforces
# SCRAM with StandardAuthorizer is useless without an admin who can log in. So this script does
# what the image's own start-up does, plus the admin credential:
#   1. renders server.properties from the KAFKA_* environment with the image's naming rules
#      (KAFKA_ prefix dropped, lower case, "_" -> ".", "___" -> "-", "__" -> "_"),
#   2. formats the storage once, with the admin's SCRAM-SHA-512 credential (--add-scram;
#      --ignore-formatted makes later starts keep the existing data and credentials),
#   3. runs the broker.
# `start.sh --print-properties` only prints step 1 (it holds the passwords).
set -euo pipefail

CONFIG=${GOVBUS_KAFKA_CONFIG:-/opt/kafka/config/server.properties}

# KAFKA_* variables the Kafka scripts read for the JVM, not broker properties.
is_jvm_setting() {
  case "$1" in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_JMX_OPTS \
      | KAFKA_LOG4J_OPTS | KAFKA_DEBUG | KAFKA_VERSION | KAFKA_JMX_HOSTNAME | KAFKA_JMX_PORT \
      | KAFKA_LOG4J_ROOT_LOGLEVEL | KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL)
      return 0 ;;
  esac
  return 1
}

render_properties() {
  local var name
  for var in $(compgen -e | LC_ALL=C sort); do
    [[ $var == KAFKA_* ]] || continue
    is_jvm_setting "$var" && continue
    name=${var#KAFKA_}
    name=${name,,}
    name=${name//_/.}
    name=${name//.../-}
    name=${name//../_}
    printf '%s=%s\n' "$name" "${!var}"
  done
}

: "${GOVBUS_ADMIN_PASSWORD:?GOVBUS_ADMIN_PASSWORD must be set}"
: "${CLUSTER_ID:?CLUSTER_ID must be set}"

if [[ ${1-} == --print-properties ]]; then
  render_properties
  exit 0
fi

umask 077 # the properties hold the JAAS secrets
render_properties >"$CONFIG"

/opt/kafka/bin/kafka-storage.sh format \
  --config "$CONFIG" \
  --cluster-id "$CLUSTER_ID" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=${GOVBUS_ADMIN_PASSWORD}]" \
  --ignore-formatted

exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
