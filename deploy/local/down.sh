#!/usr/bin/env bash
# Stops what up.sh started; idempotent. Usage: deploy/local/down.sh [--wipe] [kafka] [ferretdb] [postgres]
# (default: all three; --wipe also deletes their data).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
wipe=0
want=()
for a in "$@"; do
  case "$a" in
    --wipe) wipe=1 ;;
    kafka | ferretdb | postgres) want+=("$a") ;;
    *) echo "unknown argument: $a (--wipe, kafka, ferretdb, postgres)" >&2; exit 2 ;;
  esac
done
[ ${#want[@]} -eq 0 ] && want=(kafka ferretdb postgres)
for s in "${want[@]}"; do
  case "$s" in
    kafka) stop_pidfile kafka; [ $wipe = 1 ] && rm -rf "$LOCAL/kafka/data" ;;
    ferretdb) stop_pidfile ferretdb; [ $wipe = 1 ] && rm -rf "$LOCAL/ferretdb" ;;
    postgres) stop_postgres; [ $wipe = 1 ] && rm -rf "$LOCAL/postgres" ;;
  esac
done
exit 0
