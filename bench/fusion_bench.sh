#!/usr/bin/env bash
# Fused vs unfused execution of a planned chain (docs/benchmarks.md, "Fused execution"):
# a chain of 5 small functions (the test guest wf_step as `inc`: wasi-libc C that reads its
# environment and stdin, {"n": X} -> {"n": X+1}) deployed twice with a Costless plan that
# runs all five in the cloud tier, as one fused group and as five groups of one.
#   - edge to cloud: nats-server, an edge node e1 (site a) and a cloud node c1 (site
#     cloud); the runs start at e1, the units run on c1 (fused: one forwarded call per
#     run; unfused: five);
#   - one node: the same two workflows on c1 itself (cloud tier: the units run there), so
#     only the orchestration differs.
# Each prints latency p50/p99 (RUNS interleaved runs) and throughput (CLIENTS clients at
# once, PER_CLIENT runs each) of both variants side by side.
#
#   bench/fusion_bench.sh [RUNS] [CLIENTS] [PER_CLIENT]     (defaults 300, 4, 200)
#
# Needs: build/release (ternd, tern_bench_workflow, tests/guests/wf_step.wasm) and
# nats-server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
runs="${1:-300}"
clients="${2:-4}"
per_client="${3:-200}"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start fusion-bench
start_nats
declare -A port
for n in e1 c1; do
  port[$n]=$(free_port)
  where=(--site a --tier edge)
  [ "$n" = c1 ] && where=(--site cloud --tier cloud)
  "$build/bin/ternd" --data "$work/$n" --listen "127.0.0.1:${port[$n]}" --coap-listen off \
    --cluster "nats://127.0.0.1:$nats_port" --cluster-secret-file "$work/secret" \
    --node-name "$n" "${where[@]}" 2>"$work/$n.log" &
  pids+=($!)
done
for n in e1 c1; do wait_http "${port[$n]}"; done
token() { cat "$work/$1/admin.token"; }
curl -sf -X PUT -H "Authorization: Bearer $(token e1)" --data-binary @"$build/tests/guests/wf_step.wasm" \
  "http://127.0.0.1:${port[e1]}/v1/functions/inc?env=OP=inc" >/dev/null
# e1 places by its view of c1: wait until c1's heartbeats list inc.
for _ in $(seq 1 400); do
  curl -s -H "Authorization: Bearer $(token e1)" "http://127.0.0.1:${port[e1]}/v1/cluster/nodes" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(m["id"]=="c1" and "inc" in m["functions"] for m in d["nodes"]) else 1)' &&
    break
  sleep 0.05
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "edge to cloud (runs start at e1, units run on c1):"
"$build/bin/tern_bench_workflow" --fusion --port "${port[e1]}" --token "$(token e1)" --runs "$runs" \
  --connections "$clients" --per-client "$per_client"
echo
echo "one node (c1, cloud tier):"
"$build/bin/tern_bench_workflow" --fusion --port "${port[c1]}" --token "$(token c1)" --runs "$runs" \
  --connections "$clients" --per-client "$per_client"
echo
served() { curl -s "http://127.0.0.1:${port[c1]}/metrics" | awk '$1 == "tern_cluster_served_total" { print $2 }'; }
echo "calls c1 served for e1: $(served)"
