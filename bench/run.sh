#!/usr/bin/env bash
# Side-by-side benchmark: Switchboard vs. the same chat contract on ASP.NET Core's built-in WebSockets, on Node `ws`
# and on uWebSockets (C++, through its Node binding: the native anchor). Each server is pinned to core 0 and the load
# generator (`switchboard bench`) to core 1; every scenario runs RUNS times per server, on the servers in turn, and
# the median server-CPU-per-unit is reported (docs/benchmarks.md).
# Switchboard runs with its defaults (SQLite store in a fresh file, compression on, its runtime configuration),
# except the per-connection publish rate limit (20/s by default) and the new-room allowances, which are off: these
# scenarios measure capacity.
#
#   bench/run.sh            # RUNS=3 DURATION=10
#   RUNS=1 DURATION=5 bench/run.sh
#   ONLY=deflate bench/run.sh   # just the compressed vs. uncompressed broadcast pair
#   ONLY=connections bench/run.sh   # just the idle-connection scenarios
#   SERVERS=switchboard bench/run.sh   # only some of the servers (e.g. two builds of Switchboard, one after the other)
#   SERVERS="switchboard switchboard-kestrel" bench/run.sh   # Switchboard on its own socket transport vs Kestrel's
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
OUT=${OUT:-artifacts/bench}
SERVERS=${SERVERS:-switchboard aspnetcore node-ws uws}
mkdir -p "$OUT"

dotnet build -c Release src/Switchboard.Cli -v q -nologo >/dev/null
dotnet build -c Release bench/baselines/AspNetCoreChat -v q -nologo >/dev/null
(cd bench/baselines/node-ws && npm install --silent --no-audit --no-fund)
(cd bench/baselines/uws && npm install --silent --no-audit --no-fund)
SB="dotnet src/Switchboard.Cli/bin/Release/net10.0/switchboard.dll"

start_server() { # name port -> sets PID
  case "$1" in
    switchboard) rm -f "$OUT"/bench.db*; Switchboard__Hub__PublishRateLimit=0 Switchboard__Hub__NewRoomsPerConnectionPerMinute=0 Switchboard__Hub__NewRoomsPerMinute=0 taskset -c 0 $SB serve --db "$OUT/bench.db" --urls "http://127.0.0.1:$2" >"$OUT/$1.log" 2>&1 & ;;
    switchboard-kestrel) rm -f "$OUT"/bench.db*; Switchboard__Transport=kestrel Switchboard__Hub__PublishRateLimit=0 Switchboard__Hub__NewRoomsPerConnectionPerMinute=0 Switchboard__Hub__NewRoomsPerMinute=0 taskset -c 0 $SB serve --db "$OUT/bench.db" --urls "http://127.0.0.1:$2" >"$OUT/$1.log" 2>&1 & ;;
    aspnetcore)  taskset -c 0 dotnet bench/baselines/AspNetCoreChat/bin/Release/net10.0/AspNetCoreChat.dll --urls "http://127.0.0.1:$2" >"$OUT/$1.log" 2>&1 & ;;
    node-ws)     taskset -c 0 node bench/baselines/node-ws/server.mjs "$2" >"$OUT/$1.log" 2>&1 & ;;
    uws)         taskset -c 0 node bench/baselines/uws/server.mjs "$2" >"$OUT/$1.log" 2>&1 & ;;
  esac
  PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server $1 did not start on $2" >&2; kill "$PID" 2>/dev/null || true; return 1
}

run() { # server scenario path args... -> appends JSON to $OUT/results.jsonl
  local server=$1 scenario=$2 path=$3; shift 3
  local port ok=0
  for _ in 1 2 3; do # below the ephemeral range, which the load generator's client sockets use
    port=$((10000 + RANDOM % 9000))
    if start_server "$server" "$port"; then ok=1; break; fi
  done
  if [ "$ok" != 1 ]; then echo "{\"server\":\"$server\",\"scenario\":\"$scenario $path $*\",\"result\":null}" >>"$OUT/results.jsonl"; return 0; fi
  local result
  # The load generator compiles straight to optimized code (no tier 0): it is the bottleneck of the max-throughput
  # scenarios, and this lets it push every server harder (the servers run with their own defaults).
  result=$(env ${GEN_ENV:-} DOTNET_TC_QuickJit=0 taskset -c 1 $SB bench "$scenario" "ws://127.0.0.1:$port$path" "$@" --server-pid "$PID" --json || echo null)
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  echo "{\"server\":\"$server\",\"scenario\":\"$scenario $path $*\",\"result\":$result}" >>"$OUT/results.jsonl"
  echo "$server $scenario $*: $result" >&2
}

# One scenario on every server in turn, so that a scenario's figures are seconds apart, not minutes: a VM's speed can
# drift by a third within minutes (docs/benchmarks.md), and ratios of runs taken a server at a time then compare
# phases, not servers. The servers' order rotates from one run to the next.
each() {
  for server in "${order[@]}"; do run "$server" "$@"; done
}

rm -f "$OUT/results.jsonl"
read -r -a servers <<<"$SERVERS"
for i in $(seq 1 "$RUNS"); do
  shift_by=$(( (i - 1) % ${#servers[@]} ))
  order=("${servers[@]:shift_by}" "${servers[@]:0:shift_by}")
  if [ "${ONLY:-}" = connections ]; then
    each connections /echo --clients 10000 --duration 3
    each connections /echo --clients 19000 --duration 3
    each connections /ws --clients 19000 --duration 3 --warmup 0
    continue
  fi
  if [ "${ONLY:-}" != deflate ]; then
    each echo /echo --clients 50 --duration "$DURATION"
    each broadcast /ws --clients 100 --window 8 --duration "$DURATION"
    each broadcast /ws --clients 100 --window 256 --duration "$DURATION"
    each broadcast /ws --clients 1000 --rate 200 --duration "$DURATION"
    each connections /echo --clients 10000 --duration 3
    each connections /echo --clients 19000 --duration 3
    # From a cold start: RSS before any connection is the baseline (no warm-up connections).
    each connections /ws --clients 19000 --duration 3 --warmup 0
    # Switchboard's own scenarios: idle hub connections (each got its welcome), and durable publishing (SQLite,
    # one room, 16 publishers with 64 in flight each, every publish delivered to the 16).
    if [[ " $SERVERS " == *" switchboard "* ]]; then
      run switchboard connections /hub --clients 19000 --duration 3 --warmup 0
      # The generator's socket completions on the thread pool: inline, its one epoll thread is the bottleneck at
      # 800,000 received messages a second.
      GEN_ENV=DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 run switchboard broadcast /hub --protocol hub --room durable --clients 16 --senders 16 --window 64 --duration 5
      # The same spread over 100 rooms: 100 publishers, each alone in its room with 16 in flight (new rooms unthrottled).
      GEN_ENV=DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 run switchboard broadcast /hub --protocol hub --room spread --rooms 100 --clients 100 --senders 100 --window 16 --duration 5
    fi
  fi
  # permessage-deflate: the same 1,000-client broadcast with ~300-byte chat messages, without and with compression.
  run switchboard broadcast /ws --clients 1000 --rate 200 --size 256 --duration "$DURATION"
  run switchboard broadcast /ws --clients 1000 --rate 200 --size 256 --duration "$DURATION" --deflate
done
echo "results: $OUT/results.jsonl" >&2
/usr/bin/python3 bench/summarize.py "$OUT/results.jsonl"
