#!/usr/bin/env bash
# Stops what up.sh started; idempotent. `--wipe` also deletes the servers' data.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
stop_pidfile kafka
stop_pidfile ferretdb
stop_postgres
if [ "${1:-}" = "--wipe" ]; then
  rm -rf "$LOCAL/kafka/data" "$LOCAL/ferretdb" "$LOCAL/postgres"
  echo "data wiped"
fi
