#!/usr/bin/env bash
# Workflow orchestration overhead (docs/benchmarks.md, "Workflows"): starts a standalone
# ternd on a temporary data directory (durable run state on), deploys the test guest
# wf_step as `inc`, and runs tern_bench_workflow against it: a 10-task sequence and a
# 10,000-iteration parallelFor, each side by side with a client calling the same function
# itself over HTTP keep-alive.
#
#   bench/workflow_bench.sh [RUNS] [PAR_RUNS]     (defaults 300 and 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
work="$(mktemp -d /tmp/tern-workflow-bench.XXXXXX)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$build/bin/ternd" --data "$work/data" --listen "127.0.0.1:$port" --coap-listen off 2>"$work/ternd.log" &
pid=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done
token=$(cat "$work/data/admin.token")
curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$build/tests/guests/wf_step.wasm" \
  "http://127.0.0.1:$port/v1/functions/inc?env=OP=inc" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$build/bin/tern_bench_workflow" --port "$port" --token "$token" --runs "${1:-300}" --par-runs "${2:-3}" \
  --connections "$(nproc)"
