#!/usr/bin/env bash
# Providers (docs/benchmarks.md, "Providers"): one function routed across three providers
# (a cloud at 300 ms, two edges at 20 ms, one of which turns volatile during the middle
# third of each run) under each routing policy and under the cloud alone, the baseline.
# Starts a fresh standalone ternd on its own data directory with a probe period of
# PROBE_MS, so that the policies react within a run, and runs tern_bench_provider
# (provider_bench.cpp), which serves the providers itself and prints, per variant of the
# volatile edge (slow, failing, mixed) and per policy, the makespan of CALLS calls at
# concurrency CONCURRENCY, the latency at the client, the errors and each provider's share.
# Builds nothing: build ternd and tern_bench_provider first.
#
#   bench/provider_bench.sh [CALLS] [CONCURRENCY] [PROBE_MS] [VARIANTS]
#                           (defaults 400, 8, 200 and slow,failing,mixed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
calls="${1:-400}"
concurrency="${2:-8}"
probe="${3:-200}"
variants="${4:-slow,failing,mixed}"
# The middle third of the run, by the number of the call issued (134..266 of 400).
from=$((calls / 3 + 1))
to=$((2 * calls / 3))
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start provider-bench
port=$(free_port)
"$build/bin/ternd" --data "$work/node" --listen "127.0.0.1:$port" --coap-listen off \
  --provider-probe-ms "$probe" 2>"$work/ternd.log" &
pids+=($!)
wait_http "$port"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "ternd: --provider-probe-ms $probe (attempt and call timeouts at their defaults)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: tern_bench_provider --calls $calls --concurrency $concurrency --volatile-from $from --volatile-to $to --variants $variants"
if ! "$build/bin/tern_bench_provider" --node "http://127.0.0.1:$port" --token "$(cat "$work/node/admin.token")" \
  --calls "$calls" --concurrency "$concurrency" --volatile-from "$from" --volatile-to "$to" \
  --variants "$variants" ${TERN_BENCH_TRACE:+--trace "$TERN_BENCH_TRACE"}; then
  echo "tern_bench_provider failed; the node's log ends with:" >&2
  tail -n 20 "$work/ternd.log" >&2
  exit 1
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -Ei 'error|warn' "$work/ternd.log" | head -n 5 || true
