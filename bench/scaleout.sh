#!/usr/bin/env bash
# Scale-out benchmark: one room of CLIENTS members on 1 node vs spread over 3 nodes behind nginx (PostgreSQL store,
# Redis broker), and durable publishes/s on PostgreSQL with 1 and 3 nodes. Everything runs on this machine, so the
# CPU per unit of work counts every process: the nodes, nginx, Redis and PostgreSQL (from /proc, over the whole run
# including warm-up and drain); the load generator is not counted. Results: docs/benchmarks.md ("Scale-out").
#
#   bench/scaleout.sh                      # DURATION=10 CLIENTS=1000 RATE=200
#   DURATION=5 CLIENTS=300 bench/scaleout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-1000}
RATE=${RATE:-200}
OUT=${OUT:-artifacts/bench}
mkdir -p "$OUT"
D=$(mktemp -d /tmp/switchboard-scaleout-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$D/nginx.pid" ] && kill "$(cat "$D/nginx.pid")" 2>/dev/null || true
  [ -f "$D/redis.pid" ] && kill "$(cat "$D/redis.pid")" 2>/dev/null || true
  [ -d "$D/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT

dotnet build -c Release src/Switchboard.Cli -v q -nologo >/dev/null
SB="dotnet src/Switchboard.Cli/bin/Release/net10.0/switchboard.dll"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL and Redis, throwaway (as in the test suite).
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
PGPORT=$(free_port); chown postgres "$D"
runuser -u postgres -- "$PGBIN/initdb" -D "$D/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$D/pg" -o "-p $PGPORT -k $D -c listen_addresses=127.0.0.1" -l "$D/pg.log" -w start >/dev/null
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$D/redis.pid" --dir "$D" >/dev/null

cpu_ticks() { # total utime+stime of the given pids and their children (PostgreSQL's backends, nginx's workers)
  local total=0 p
  for p in $(for root in "$@"; do echo "$root"; pgrep -P "$root" || true; done); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

run() { # nodes scenario args... -> one JSON line in $OUT/scaleout.jsonl
  local n=$1 scenario=$2; shift 2
  local db="b$RANDOM$RANDOM" ports=() pids=() i
  runuser -u postgres -- psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE $db" >/dev/null
  for i in $(seq 1 "$n"); do
    ports+=("$(free_port)")
    Switchboard__Hub__PublishRateLimit=0 $SB serve --urls "http://127.0.0.1:${ports[-1]}" --store postgres \
      --postgres "Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=$db" --broker redis --redis "127.0.0.1:$RPORT" >"$D/node$i.log" 2>&1 &
    pids+=($!); PIDS+=($!)
  done
  for p in "${ports[@]}"; do for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done; done
  local lb; lb=$(free_port)
  { echo "user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;"
    echo "events { worker_connections 8192; } http { access_log off;"
    echo "map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }"
    echo "upstream sb {"; for p in "${ports[@]}"; do echo "server 127.0.0.1:$p;"; done; echo "}"
    echo "server { listen 127.0.0.1:$lb; location / { proxy_pass http://sb; proxy_http_version 1.1;"
    echo "proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; proxy_read_timeout 3600s; } } }"; } >"$D/nginx.conf"
  nginx -c "$D/nginx.conf" -p "$D" -g 'daemon on;'
  local pgmain; pgmain=$(head -1 "$D/pg/postmaster.pid")
  local before after result
  before=$(cpu_ticks "${pids[@]}" "$(cat "$D/nginx.pid")" "$(cat "$D/redis.pid")" "$pgmain")
  result=$($SB bench broadcast "ws://127.0.0.1:$lb/hub" --protocol hub --room "r$RANDOM" --duration "$DURATION" --json "$@" || echo null)
  after=$(cpu_ticks "${pids[@]}" "$(cat "$D/nginx.pid")" "$(cat "$D/redis.pid")" "$pgmain")
  kill "$(cat "$D/nginx.pid")"; sleep 0.5
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  echo "{\"nodes\":$n,\"scenario\":\"$scenario\",\"cpuSeconds\":$(python3 -c "print(($after-$before)/$(getconf CLK_TCK))"),\"result\":$result}" | tee -a "$OUT/scaleout.jsonl"
}

rm -f "$OUT/scaleout.jsonl"
for n in 1 3; do
  run "$n" "room of $CLIENTS at $RATE/s" --clients "$CLIENTS" --senders 10 --rate "$RATE"
  run "$n" "durable publishes, 16 publishers" --clients 16 --senders 16 --window 64
done
python3 - "$OUT/scaleout.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line); b = r["result"] or {}
    sent, got, secs = b.get("sent", 0), b.get("received", 0), b.get("seconds", 1) or 1
    unit = got if "room" in r["scenario"] else sent
    per = r["cpuSeconds"] * 1e6 / unit if unit else float("nan")
    print(f'{r["nodes"]} node(s) | {r["scenario"]} | deliveries/s {b.get("throughput", 0):,.0f} | publishes/s {sent / secs:,.0f} | '
          f'p50 {b.get("p50Us", 0)/1000:.1f} ms | p99 {b.get("p99Us", 0)/1000:.1f} ms | lost {b.get("lost")} | '
          f'CPU {r["cpuSeconds"]:.1f} s, {per:.1f} us per {"delivery" if "room" in r["scenario"] else "publish"} (all processes)')
PY
