# Shared by up.sh and down.sh. Everything lives under $NOTIFY_LOCAL_DIR (default: .local in the repo).
repo="$(cd "$here/../.." && pwd)"
LOCAL="${NOTIFY_LOCAL_DIR:-$repo/.local}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
FERRETDB_PORT="${FERRETDB_PORT:-27018}"
# Below 32768: ports in the ephemeral range can be taken by any outgoing loopback connection
# (the Kafka broker talking to its controller, for one) just before the server binds them.
POSTGRES_PORT="${POSTGRES_PORT:-25432}"

log() { echo "[local] $*"; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$LOCAL/run/$1.pid" ] && kill -0 "$(cat "$LOCAL/run/$1.pid")" 2>/dev/null; }

wait_port() { # name port seconds logfile
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    listening "$2" && return 0
    if ! alive "$1"; then echo "$1 exited; last lines of $4:" >&2; tail -30 "$4" >&2; return 1; fi
    sleep 0.1
  done
  echo "$1 did not listen on $2 within $3 s; last lines of $4:" >&2
  tail -30 "$4" >&2
  return 1
}

stop_pidfile() {
  local f="$LOCAL/run/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "$1 stopped"
  fi
  rm -f "$f"
}

start_kafka() {
  local dir="$LOCAL/kafka" logf="$LOCAL/log/kafka.log"
  if alive kafka && listening "$KAFKA_PORT"; then log "kafka already running"; return 0; fi
  command -v java >/dev/null || { echo "java not found: install a JDK 17+" >&2; return 1; }
  mkdir -p "$dir"
  if [ ! -f "$dir/libs/.complete" ]; then
    log "resolving Kafka's jars from Maven Central"
    command -v mvn >/dev/null || { echo "mvn not found: install Maven" >&2; return 1; }
    rm -rf "$dir/libs"
    mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dir/libs"
    touch "$dir/libs/.complete"
  fi
  sed -e "s#@DATA@#$dir/data#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$here/kafka/server.properties" >"$dir/server.properties"
  local java=(java -Xms512m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true "-Dlog4j2.configurationFile=$here/kafka/log4j2.xml" -cp "$dir/libs/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    rm -rf "$dir/data"
    local id
    id="$("${java[@]}" kafka.tools.StorageTool random-uuid | tail -1)"
    "${java[@]}" kafka.tools.StorageTool format --standalone -t "$id" -c "$dir/server.properties" >>"$logf" 2>&1
    log "kafka storage formatted (cluster $id)"
  fi
  local before i
  before="$(wc -l <"$logf" 2>/dev/null || echo 0)"
  nohup "${java[@]}" kafka.Kafka "$dir/server.properties" >>"$logf" 2>&1 &
  echo $! >"$LOCAL/run/kafka.pid"
  wait_port kafka "$KAFKA_PORT" 90 "$logf"
  # The port opens before the broker has joined its own quorum.
  for ((i = 0; i < 600; i++)); do
    tail -n +"$((before + 1))" "$logf" | grep -q "Kafka Server started" && break
    sleep 0.1
  done
  log "kafka listening on 127.0.0.1:$KAFKA_PORT"
}

start_ferretdb() {
  local bin="$LOCAL/bin/ferretdb" logf="$LOCAL/log/ferretdb.log"
  if alive ferretdb && listening "$FERRETDB_PORT"; then log "ferretdb already running"; return 0; fi
  if [ ! -x "$bin" ] || [ "$here/ferretdb/main.go" -nt "$bin" ] || [ "$here/ferretdb/go.mod" -nt "$bin" ]; then
    log "building FerretDB from the Go module proxy"
    command -v go >/dev/null || { echo "go not found: install Go 1.24+" >&2; return 1; }
    mkdir -p "$LOCAL/bin"
    (cd "$here/ferretdb" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$bin" .)
  fi
  nohup "$bin" -listen "127.0.0.1:$FERRETDB_PORT" -dir "$LOCAL/ferretdb" >>"$logf" 2>&1 &
  echo $! >"$LOCAL/run/ferretdb.pid"
  wait_port ferretdb "$FERRETDB_PORT" 30 "$logf"
  log "ferretdb listening on 127.0.0.1:$FERRETDB_PORT"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# PostgreSQL refuses to run as root: as root, its processes run as the `postgres` user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  local data="$LOCAL/postgres" logf="$LOCAL/log/postgres.log" bin
  if [ -z "$(pg_bin)" ]; then
    log "installing PostgreSQL from Debian's packages"
    [ "$(id -u)" = 0 ] || { echo "PostgreSQL is missing: sudo apt-get install -y postgresql" >&2; return 1; }
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  bin="$(pg_bin)"
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 && listening "$POSTGRES_PORT"; then log "postgres already running"; return 0; fi
  mkdir -p "$LOCAL/log" "$LOCAL/pg-socket"
  touch "$logf"
  if [ "$(id -u)" = 0 ]; then chown postgres "$LOCAL/log/postgres.log" "$LOCAL/pg-socket"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$logf" 2>&1
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$logf" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k $LOCAL/pg-socket -c max_connections=200" start >/dev/null
  local psql=("$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -qAt -v ON_ERROR_STOP=1)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'notify'")" != 1 ]; then
    "${psql[@]}" -c "CREATE ROLE notify LOGIN CREATEDB PASSWORD 'notify'"
  fi
  # Tests create a database of their own per run.
  "${psql[@]}" -c "ALTER ROLE notify CREATEDB" >/dev/null
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'notify'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE notify OWNER notify"
  fi
  log "postgres listening on 127.0.0.1:$POSTGRES_PORT"
}

stop_postgres() {
  local bin
  bin="$(pg_bin)"
  [ -n "$bin" ] && [ -f "$LOCAL/postgres/PG_VERSION" ] || return 0
  if as_pg "$bin/pg_ctl" -D "$LOCAL/postgres" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$LOCAL/postgres" -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
}

print_env() {
  cat <<ENV
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export MONGODB_URL=mongodb://127.0.0.1:$FERRETDB_PORT/
export POSTGRES_URL=postgres://notify:notify@127.0.0.1:$POSTGRES_PORT/notify
ENV
}
