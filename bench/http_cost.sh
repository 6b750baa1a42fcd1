#!/usr/bin/env bash
# Instructions per HTTP request of a node, counted by callgrind and split into the layers of
# the request path (guest, WASI calls, memory reset, engine, invoker, gateway, HTTP): unlike
# req/s, the counts do not change with the machine's load, so before/after comparisons hold
# on a shared machine.
#
#   bench/http_cost.sh [BUILD_DIR] [REQUESTS]       (defaults build/release, 2000)
#   TERN_COST_TOP=N also prints each function's N costliest functions (exclusive).
#   TERN_COST_TERND=PATH counts another ternd binary (a build before a change).
#   TERN_COST_KEEP=DIR keeps the callgrind dumps there (DIR/hello.out, DIR/greet.out).
#
# ternd runs under `valgrind --tool=callgrind --instr-atstart=no`; hello.wasm and greet.wasm
# are deployed with compile_tier=optimized (the -O2 object that serves them in the steady
# state, not the baseline tier's) and warmed up (500 requests each) uninstrumented; then for
# each function instrumentation is switched on, the counters zeroed, REQUESTS requests sent
# one after the other over one keep-alive connection (bench/http_requests.py, as wrk sends them: a Host
# header only; every answer checked), and the counters dumped. Everything ternd's threads
# did meanwhile is in the count; the kernel's work (system calls) is not.
# Needs valgrind and python3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/release}"
requests="${2:-2000}"
top="${TERN_COST_TOP:-0}"
bin="$build/bin"
hello="$build/examples/functions/hello.wasm"
greet="$build/bench/guests/greet.wasm"
port=18490
work="$(mktemp -d /tmp/tern-http-cost.XXXXXX)"
cleanup() {
  [ -n "${vg_pid:-}" ] && kill -TERM "$vg_pid" 2>/dev/null && wait "$vg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
  "${TERN_COST_TERND:-$bin/ternd}" --listen 127.0.0.1:$port --data "$work/node" 2>"$work/ternd.log" &
vg_pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/node/admin.token" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
[ -f "$work/node/admin.token" ] || { echo "http_cost.sh: ternd did not start" >&2; cat "$work/ternd.log" >&2; exit 1; }
token="$(cat "$work/node/admin.token")"
for fn in hello greet; do
  m="$hello"; [ $fn = greet ] && m="$greet"
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $token" --data-binary @"$m" \
    "http://127.0.0.1:$port/v1/functions/$fn?compile_tier=optimized"
done

echo "| function | requests | guest | wasi | reset | engine | invoker | gateway | http | other threads | total |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
n=0
for fn in hello greet; do
  want="Hello from tern!"
  [ $fn = greet ] && want="Hello, world! GET, 0 bytes, 1 headers"
  python3 "$root/bench/http_requests.py" $port /fn/$fn 500 "$want"$'\n'
  callgrind_control -i on $vg_pid >/dev/null
  callgrind_control -z $vg_pid >/dev/null
  python3 "$root/bench/http_requests.py" $port /fn/$fn "$requests" "$want"$'\n'
  callgrind_control -d "$fn" $vg_pid >/dev/null
  callgrind_control -i off $vg_pid >/dev/null
  n=$((n + 1))
  dump="$(ls "$work"/cg.out.* | sort -t. -k3 -n | tail -1)"
  python3 "$root/bench/callgrind_split.py" "$dump" "$requests" "$top" > "$work/$fn.split"
  awk -v fn=$fn -v n="$requests" 'NF == 2 { v[$1] = $2 } END {
    printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", fn, n, v["guest"], v["wasi"],
      v["reset"], v["engine"], v["invoker"], v["gateway"], v["http"], v["other"], v["total"] }' "$work/$fn.split"
  cp "$work/$fn.split" "$work/$fn.keep"
  [ -n "${TERN_COST_KEEP:-}" ] && mkdir -p "$TERN_COST_KEEP" && cp "$dump" "$TERN_COST_KEEP/$fn.out"
done
if [ "$top" -gt 0 ]; then
  for fn in hello greet; do
    echo
    echo "$fn: costliest functions, instructions per request (exclusive)"
    awk 'NF != 2' "$work/$fn.keep"
  done
fi
