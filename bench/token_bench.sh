#!/usr/bin/env bash
# Token checks on a cluster node, side by side in one run (docs/benchmarks.md, "Token
# checks in a cluster"): two ternd nodes on one nats-server (JetStream), both with
# --invoke-auth required, one of them the baseline binary (TERN_BENCH_BASELINE). A token
# with scope invoke:hello is made on the candidate node and waited for on the baseline;
# then wrk (one thread, 8 connections, the token in the Authorization header) against
# /fn/hello on each node in turn, ROUNDS times; requests/s, p50 and p99 of each. Every
# request's token check is what differs: a JetStream get per check (the baseline before
# the node kept a copy of the tokens) or a lookup in the node's copy.
#
#   TERN_BENCH_BASELINE=/path/to/old/ternd bench/token_bench.sh [ROUNDS] [DURATION]
#   (defaults 3 rounds of 5 s; TERN_BENCH_BIN: the directory of ternd and tern, default
#   build/release/bin; TERN_BENCH_HELLO: hello.wasm)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${TERN_BENCH_BIN:-$root/build/release/bin}"
ternd="$bin/ternd"
baseline="${TERN_BENCH_BASELINE:?set TERN_BENCH_BASELINE to the ternd to compare with}"
hello="${TERN_BENCH_HELLO:-$(dirname "$bin")/examples/functions/hello.wasm}"
rounds="${1:-3}"
duration="${2:-5}s"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start token-bench

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
start_nats
declare -A port binary
binary[new]="$ternd"
binary[base]="$baseline"
for n in new base; do
  port[$n]=$(free_port)
  start_node "${binary[$n]}" "$n" "${port[$n]}" --invoke-auth required
done
for n in new base; do wait_http "${port[$n]}"; done
tern() { "$bin/tern" --node "http://127.0.0.1:${port[new]}" --token "$(cat "$work/new/admin.token")" "$@"; }
tern deploy hello "$hello" >/dev/null
token=""
for _ in $(seq 1 200); do
  token=$(tern token create bench --scope invoke:hello 2>/dev/null | grep '^tern_' || true)
  [ -n "$token" ] && break
  sleep 0.05
done
[ -n "$token" ] || { echo "no token" >&2; exit 1; }
for n in new base; do
  for _ in $(seq 1 400); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
      "http://127.0.0.1:${port[$n]}/fn/hello")" = 200 ] && break
    sleep 0.05
  done
done

run_wrk() {  # url -> "rps p50 p99 non2xx" (latencies in us)
  wrk -t1 -c8 -d"$duration" --latency -H "Authorization: Bearer $token" "$1" 2>&1 | wrk_stats
}

echo "## Token checks in a cluster"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
echo "| round | baseline req/s | baseline p50 / p99 (us) | copy req/s | copy p50 / p99 (us) | non-2xx (baseline, copy) |"
echo "|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  read -r br bp50 bp99 bbad < <(run_wrk "http://127.0.0.1:${port[base]}/fn/hello")
  read -r nr np50 np99 nbad < <(run_wrk "http://127.0.0.1:${port[new]}/fn/hello")
  echo "| $r | $br | $bp50 / $bp99 | $nr | $np50 / $np99 | $bbad, $nbad |"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
