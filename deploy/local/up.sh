#!/usr/bin/env bash
# Starts the at-scale servers on 127.0.0.1 and waits until each answers:
#   Kafka 4.3.1 (single-node KRaft)  127.0.0.1:19092   KAFKA_BROKERS
#   FerretDB 1.24.2 (SQLite backend) 127.0.0.1:27018   MONGODB_URL
#   PostgreSQL (Debian's)            127.0.0.1:25432   POSTGRES_URL
# Idempotent: a server already running is left alone. Builds what is missing first (Kafka's jars
# from Maven Central, FerretDB from the Go module proxy, PostgreSQL from Debian's packages).
# Usage: deploy/local/up.sh [kafka] [ferretdb] [postgres]   (default: all three)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(kafka ferretdb postgres)
mkdir -p "$LOCAL/run" "$LOCAL/log"

for s in "${want[@]}"; do
  case "$s" in
    kafka) start_kafka ;;
    ferretdb) start_ferretdb ;;
    postgres) start_postgres ;;
    *) echo "unknown server: $s (kafka, ferretdb, postgres)" >&2; exit 2 ;;
  esac
done
print_env
