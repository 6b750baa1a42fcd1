#!/usr/bin/env bash
# Cluster benchmark on loopback, side by side in one run (docs/benchmarks.md, "Cluster"):
#   - forwarded vs local call: three ternd nodes of one site on one nats-server
#     (JetStream); `hello` is placed on n2 only (label role=x). wrk with one connection
#     against n2 (the call runs there), against n1 (n1 forwards it to n2 over a direct
#     link and relays the answer) and against n3 (started with --direct-listen off, so it
#     forwards over NATS request/reply), in turn for ROUNDS rounds; p50, p99 and
#     requests/s of each; and in each round a bare libnats request/reply through the same
#     nats-server (tern_bench_nats_rtt, 5000 round trips), the floor under the NATS path;
#   - throughput of one node vs three: `hello-all` on every node; one wrk with three
#     threads and 96 connections against one node, then three wrk with one thread and 32
#     connections at once, one per node (each serving locally): the same client either way;
#     requests/s.
#
#   bench/cluster_bench.sh [ROUNDS] [DURATION]      (defaults 3 rounds of 8 s)
#   TERN_BENCH_TERND=PATH selects another ternd binary (a baseline build).
#
# Needs: build/release (ternd, tern, tern_bench_nats_rtt, examples), nats-server and wrk.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release/bin"
ternd="${TERN_BENCH_TERND:-$bin/ternd}"
hello="$root/build/release/examples/functions/hello.wasm"
rounds="${1:-3}"
duration="${2:-8}s"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start cluster-bench

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
start_nats
declare -A port
for n in n1 n2 n3; do
  port[$n]=$(free_port)
  labels=()
  [ "$n" = n2 ] && labels=(--labels role=x)
  [ "$n" = n3 ] && labels=(--direct-listen off)
  start_node "$ternd" "$n" "${port[$n]}" "${labels[@]}"
done
for n in n1 n2 n3; do wait_http "${port[$n]}"; done

tern() { "$bin/tern" --node "http://127.0.0.1:${port[n1]}" --token "$(cat "$work/n1/admin.token")" "$@"; }
tern deploy hello "$hello" --labels role=x >/dev/null
tern deploy hello-all "$hello" >/dev/null
# Wait until the cluster has replicated: n1 forwards `hello`, every node serves `hello-all`.
for _ in $(seq 1 400); do
  ok=1
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[n1]}/fn/hello")" = 200 ] || ok=0
  for n in n1 n2 n3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$n]}/fn/hello-all")" = 200 ] || ok=0
  done
  [ $ok = 1 ] && break
  sleep 0.05
done
for n in n1 n3; do
  for _ in $(seq 1 100); do
    [ "$(node_of "http://127.0.0.1:${port[$n]}/fn/hello")" = n2 ] && break
    sleep 0.05
  done
  [ "$(node_of "http://127.0.0.1:${port[$n]}/fn/hello")" = n2 ] ||
    { echo "cluster_bench: $n does not forward hello to n2" >&2; exit 1; }
done
sends() {  # node path -> forwarded calls it sent on that path
  metric "http://127.0.0.1:${port[$1]}/metrics" "tern_cluster_forward_sends_total{path=\"$2\"}"
}

run_wrk() {  # threads connections url -> "rps p50 p99 non2xx" (latencies in us)
  wrk -t"$1" -c"$2" -d"$duration" --latency "$3" 2>&1 | wrk_stats
}

echo "## Cluster: forwarded vs local call"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
echo "| round | local p50 / p99 (us) | local req/s | direct link p50 / p99 (us) | direct req/s | over NATS p50 / p99 (us) | NATS req/s | bare NATS round trip p50 / p99 (us) |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  read -r lr lp50 lp99 _ < <(run_wrk 1 1 "http://127.0.0.1:${port[n2]}/fn/hello")
  read -r dr dp50 dp99 _ < <(run_wrk 1 1 "http://127.0.0.1:${port[n1]}/fn/hello")
  read -r nr np50 np99 _ < <(run_wrk 1 1 "http://127.0.0.1:${port[n3]}/fn/hello")
  read -r bp50 bp99 < <("$bin/tern_bench_nats_rtt" --url "nats://127.0.0.1:$nats_port" --count 5000)
  echo "| $r | $lp50 / $lp99 | $lr | $dp50 / $dp99 | $dr | $np50 / $np99 | $nr | $bp50 / $bp99 |"
done
echo
echo "forwarded calls sent: n1 direct $(sends n1 direct), n1 nats $(sends n1 nats); n3 direct $(sends n3 direct), n3 nats $(sends n3 nats)"
echo
echo "## Cluster: throughput of one node vs three"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | one node req/s | three nodes req/s (n1 + n2 + n3) |"
echo "|---|---|---|"
for r in $(seq 1 "$rounds"); do
  read -r one _ < <(run_wrk 3 96 "http://127.0.0.1:${port[n1]}/fn/hello-all")
  w=()
  for n in n1 n2 n3; do
    run_wrk 1 32 "http://127.0.0.1:${port[$n]}/fn/hello-all" >"$work/three.$n" &
    w+=($!)
  done
  wait "${w[@]}"
  a=$(cut -d' ' -f1 "$work/three.n1"); b=$(cut -d' ' -f1 "$work/three.n2"); c=$(cut -d' ' -f1 "$work/three.n3")
  rm -f "$work"/three.*
  echo "| $r | $one | $((a + b + c)) ($a + $b + $c) |"
done
