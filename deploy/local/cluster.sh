#!/usr/bin/env bash
# A "cluster" on one machine: the servers of up.sh, the provider sandbox, then each role as its own
# process on PostgreSQL (event store; read store, key vault and leases too by default), Kafka (jobs)
# and, with READ_STORE=mongodb, FerretDB for the read store, key vault and leases:
#   api (command + query) on 127.0.0.1:${CLUSTER_PORT:-4000}, projections, two delivery workers
#   (the first also plans), expiry.
# READ_STORE=postgres (default) or mongodb (FerretDB here: a functional stand-in, slow; see
# docs/benchmarks.md). EVENT_STORE=eventstoredb with EVENTSTORE_CONNECTION_STRING uses EventStoreDB
# instead of PostgreSQL for the log.
# Usage: deploy/local/cluster.sh up | down | status        (logs under .local/log/cluster-*.log)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
dir="$LOCAL/cluster"
procs=(api projections delivery-1 delivery-2 expiry)

node_main="$repo/dist/cli/src/main.js"

start_proc() { # name env...
  local name="$1" logf="$LOCAL/log/cluster-$1.log"
  shift
  if alive "cluster-$name"; then log "$name already running"; return 0; fi
  : >"$logf"
  env "$@" DATA_DIR="$dir/$name" nohup node "$node_main" start >>"$logf" 2>&1 &
  echo $! >"$LOCAL/run/cluster-$name.pid"
}

wait_started() { # name
  local logf="$LOCAL/log/cluster-$1.log" i
  for ((i = 0; i < 600; i++)); do
    grep -q "^Roles:" "$logf" && return 0
    alive "cluster-$1" || { echo "$1 exited:" >&2; tail -30 "$logf" >&2; return 1; }
    sleep 0.1
  done
  echo "$1 did not start within 60 s:" >&2
  tail -30 "$logf" >&2
  return 1
}

up() {
  local read_store="${READ_STORE:-postgres}"
  case "$read_store" in
    postgres) "$here/up.sh" kafka postgres >/dev/null ;;
    mongodb) "$here/up.sh" >/dev/null ;;
    *) echo "READ_STORE must be postgres or mongodb, got $read_store" >&2; return 2 ;;
  esac
  # The project's Node.js (22 or newer; 24 fetched from the npm registry when the machine's is older).
  eval "$(cd "$repo" && node scripts/node.mjs --env)"
  (cd "$repo" && node scripts/node.mjs --build)
  mkdir -p "$dir" "$LOCAL/run" "$LOCAL/log"
  [ -f "$dir/master.key" ] || (umask 077 && node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))" >"$dir/master.key")
  if ! alive cluster-sandbox; then
    : >"$LOCAL/log/cluster-sandbox.log"
    nohup node "$repo/dist/sandbox/src/main.js" --latency-ms "${SANDBOX_LATENCY_MS:-20}" >"$dir/sandbox.out" 2>>"$LOCAL/log/cluster-sandbox.log" &
    echo $! >"$LOCAL/run/cluster-sandbox.pid"
    for ((i = 0; i < 100; i++)); do [ -s "$dir/sandbox.out" ] && break; sleep 0.1; done
    head -1 "$dir/sandbox.out" >"$dir/sandbox.json"
  fi
  local common=(
    EVENT_STORE="${EVENT_STORE:-postgres}" POSTGRES_URL="${POSTGRES_URL:-postgres://notify:notify@127.0.0.1:$POSTGRES_PORT/notify}"
    READ_STORE="$read_store"
    BUS=kafka KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}" KAFKA_PREFIX="${KAFKA_PREFIX:-notify}"
    MASTER_KEY="$(cat "$dir/master.key")" SANDBOX_FILE="$dir/sandbox.json" LOG_LEVEL="${LOG_LEVEL:-info}"
  )
  [ "$read_store" = mongodb ] && common+=(MONGODB_URL="${MONGODB_URL:-mongodb://127.0.0.1:$FERRETDB_PORT/}" MONGODB_DATABASE="${MONGODB_DATABASE:-notify}")
  [ -n "${EVENTSTORE_CONNECTION_STRING:-}" ] && common+=(EVENTSTORE_CONNECTION_STRING="$EVENTSTORE_CONNECTION_STRING")
  # Each process's ops port (/readyz, /livez, /metrics): CLUSTER_OPS_PORT and the next four.
  local ops="${CLUSTER_OPS_PORT:-9464}"
  start_proc api "${common[@]}" ROLES=command,query PORT="${CLUSTER_PORT:-4000}" OPS_PORT="$ops" WRITE_OPERATOR_KEY_FILE=true
  wait_started api
  start_proc projections "${common[@]}" ROLES=projections OPS_PORT=$((ops + 1))
  start_proc delivery-1 "${common[@]}" ROLES=delivery OPS_PORT=$((ops + 2))
  start_proc delivery-2 "${common[@]}" ROLES=delivery DELIVERY_PLAN=false OPS_PORT=$((ops + 3))
  start_proc expiry "${common[@]}" ROLES=expiry OPS_PORT=$((ops + 4))
  for p in projections delivery-1 delivery-2 expiry; do wait_started "$p"; done
  grep -E "^(GraphQL API|Subscriptions|Operator key):" "$LOCAL/log/cluster-api.log" || true
  log "cluster up: ${procs[*]} on read store $read_store (logs: $LOCAL/log/cluster-*.log)"
}

down() {
  local p
  for p in "${procs[@]}"; do stop_pidfile "cluster-$p"; done
  stop_pidfile cluster-sandbox
  [ "${1:-}" = "--keep-servers" ] || "$here/down.sh"
}

status() {
  local p
  local ops="${CLUSTER_OPS_PORT:-9464}" i=0 ready
  if alive cluster-sandbox; then echo "sandbox: running (pid $(cat "$LOCAL/run/cluster-sandbox.pid"))"; else echo "sandbox: stopped"; fi
  for p in "${procs[@]}"; do
    if alive "cluster-$p"; then
      ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((ops + i))/readyz" || true)
      echo "$p: running (pid $(cat "$LOCAL/run/cluster-$p.pid")), /readyz on :$((ops + i)) answers ${ready:-nothing}"
    else echo "$p: stopped"; fi
    i=$((i + 1))
  done
}

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  status) status ;;
  *) echo "usage: $0 up | down [--keep-servers] | status" >&2; exit 2 ;;
esac
