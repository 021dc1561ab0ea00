#!/usr/bin/env bash
# Runs the README's walk-through as pasted against a fresh `npm start`, changing only the two
# lines that say where the service is (API=, OP=), and checks what it printed.
set -uo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server=""
finish() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap finish EXIT

DATA_DIR="$work/data" PORT=0 LOG_LEVEL=info npm start > "$work/server.out" 2>&1 &
server=$!
url=""
for _ in $(seq 1 240); do
  url=$(sed -n 's/^GraphQL API: *//p' "$work/server.out" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.out"; echo "the service did not start"; exit 1; }
  sleep 0.5
done
[ -n "$url" ] || { cat "$work/server.out"; echo "the service did not print its URL"; exit 1; }
echo "service at $url"

awk '/<!-- walkthrough -->/{armed=1; next} armed && /^```bash/{inside=1; next} inside && /^```/{exit} inside{print}' README.md \
  | sed -e "s#^API=.*#API=$url#" -e "s#^OP=.*#OP=\$(cat $work/data/operator.key)#" > "$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "no walk-through block found in README.md"; exit 1; }

bash "$work/walkthrough.sh" > "$work/out.txt" 2>&1
rc=$?
cat "$work/out.txt"
[ $rc -eq 0 ] || { echo "walk-through exited with $rc"; exit 1; }

fail=0
expect() { grep -q -- "$1" "$work/out.txt" || { echo "MISSING in walk-through output: $1"; fail=1; }; }
expect '"name":"Beta testers"'
expect '"name":"김민준"'
expect '"address":"minjun@example.com"'
expect '"fitsDeadline":true'
expect '"status":"COMPLETED"'
expect '"step":"succeeded"'
expect '"reachedUsers":2'
expect '"shreddedAt"'
expect '"type":"UserRegistered"'
expect '1503 bytes in UTF-8, the limit is 1500 bytes'
expect '"code":"BAD_USER_INPUT"'
expect '"notificationId":"n'
if grep -q '"code":"INTERNAL_SERVER_ERROR"' "$work/out.txt"; then echo "internal error in walk-through"; fail=1; fi

# SIGTERM to the service process itself (npm and sh sit in between): it must stop cleanly.
descendants() { local kids; kids=$(pgrep -P "$1"); for k in $kids; do echo "$k"; descendants "$k"; done; }
node_pid=$(for p in $(descendants "$server"); do ps -o pid=,args= -p "$p"; done | awk '$2 == "node" && /main.js start/ {print $1; exit}')
[ -n "$node_pid" ] || { echo "service process not found"; exit 1; }
kill -TERM "$node_pid"
wait "$server"; stop_rc=$?
grep -q '"msg":"stopping"' "$work/server.out" || { echo "no graceful stop logged"; fail=1; }
server=""
[ $stop_rc -eq 0 ] || { echo "graceful shutdown exited with $stop_rc"; cat "$work/server.out"; fail=1; }
[ $fail -eq 0 ] && echo "walk-through OK"
exit $fail
