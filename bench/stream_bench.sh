#!/usr/bin/env bash
# Streams to devices (docs/benchmarks.md, "Streams to devices"): DEVICES devices on one
# standalone node, first each with a WebSocket stream (push), then each polling
# GET /v1/topics/T?after=LAST every POLL_MS (poll), with the same updates: UPDATES at
# INTERVAL_MS, then a burst of 20 back to back. Each mode gets a fresh ternd on its own
# temporary data directory, so that its RSS starts from the same point; tern_bench_stream
# (stream_bench.cpp) is the load generator and prints each mode's report and a JSON line.
#
# The node's limits that 10,000 devices meet, and what this script does about them:
#   - open descriptors: ulimit -n raised (a socket per device in the node and in the load
#     generator, which also raises its own);
#   - --max-connections (10,000): DEVICES + 100, so the publisher and the probes fit too
#     (at the limit, a newcomer would close the longest-idle keep-alive connection);
#   - --max-connections-per-client (128): kept; the devices come from 100 per source
#     address, 127.0.0.1 .. 127.0.0.N.
#
#   bench/stream_bench.sh [DEVICES] [UPDATES] [INTERVAL_MS] [POLL_MS]
#                         (defaults 10000, 12, 5000 and 2000: a one-minute window)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
devices="${1:-10000}"
updates="${2:-12}"
interval="${3:-5000}"
poll="${4:-2000}"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start stream-bench
want=$((devices * 2 + 4096))
ulimit -Hn "$want" 2>/dev/null || true
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "descriptors: $(ulimit -n); devices: $devices; $updates updates every $interval ms, then 20 back to back; polling every $poll ms"

run_mode() {  # push | poll
  local mode=$1 port pid
  port=$(free_port)
  "$build/bin/ternd" --data "$work/$mode" --listen "127.0.0.1:$port" --coap-listen off \
    --max-connections $((devices + 100)) 2>"$work/ternd-$mode.log" &
  pid=$!
  pids+=("$pid")
  wait_http "$port"
  echo
  echo "load average before $mode: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: tern_bench_stream --mode $mode --devices $devices --updates $updates --interval-ms $interval --poll-ms $poll"
  if ! "$build/bin/tern_bench_stream" --node "http://127.0.0.1:$port" --token "$(cat "$work/$mode/admin.token")" \
    --node-pid "$pid" --mode "$mode" --devices "$devices" --updates "$updates" --interval-ms "$interval" \
    --poll-ms "$poll" --burst 20; then
    echo "tern_bench_stream ($mode) failed; the node's log ends with:" >&2
    tail -n 20 "$work/ternd-$mode.log" >&2
  fi
  grep -Ei 'error|warn' "$work/ternd-$mode.log" | head -n 5 || true
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

run_mode push
run_mode poll
