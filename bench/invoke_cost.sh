#!/usr/bin/env bash
# Instructions, atomic read-modify-writes and mutex acquisitions per fresh-sandbox
# invocation, counted by callgrind: unlike times, the counts do not change with the
# machine's load, so a before/after comparison holds on a shared machine.
#
#   bench/invoke_cost.sh [BUILD_DIR]        (default build/release)
#
# For each module (hello.wasm: fputs of 17 bytes; greet.wasm: wasi-libc, reads its CGI
# environment and stdin, answers with printf) tern_bench_invoke_cost runs SHORT and then LONG
# invocations on one thread under `valgrind --tool=callgrind --collect-bus=yes`, counting
# only inside Engine::invoke (--toggle-collect); (LONG - SHORT) / the difference in
# invocations is the steady-state cost of one, without the first uses of slots and caches.
# Needs valgrind.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/release}"
bin="$build/bin"
short=${TERN_COST_SHORT:-500}
long=${TERN_COST_LONG:-5500}
work="$(mktemp -d /tmp/tern-invoke-cost.XXXXXX)"
trap 'rm -rf "$work"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

counts() {  # module invocations expected-output -> "Ir Ge locks waits"
  valgrind --tool=callgrind --collect-bus=yes --toggle-collect='tern::wasm::Engine::invoke*' \
    --callgrind-out-file="$work/cg.out" \
    "$bin/tern_bench_invoke_cost" --module "$1" --invocations "$2" --expect "$3" >"$work/run.log" 2>"$work/vg.log" ||
    { cat "$work/run.log" "$work/vg.log" >&2; exit 1; }
  python3 "$root/bench/callgrind_counts.py" "$work/cg.out"
}

echo "| module | instructions per invocation | atomic RMW per invocation | mutex locks per invocation | futex waits per invocation |"
echo "|---|---:|---:|---:|---:|"
for case in "$build/examples/functions/hello.wasm|Hello from tern!" \
            "$build/bench/guests/greet.wasm|Hello, world! GET, 0 bytes, 1 headers"; do
  m="${case%%|*}"
  expect="${case#*|}"
  read -r ir1 ge1 l1 w1 < <(counts "$m" "$short" "$expect")
  read -r ir2 ge2 l2 w2 < <(counts "$m" "$long" "$expect")
  awk -v m="$(basename "$m")" -v n=$((long - short)) -v a="$ir1 $ge1 $l1 $w1" -v b="$ir2 $ge2 $l2 $w2" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    printf "| %s | %.0f | %.2f | %.2f | %.2f |\n", m, (y[1]-x[1])/n, (y[2]-x[2])/n, (y[3]-x[3])/n, (y[4]-x[4])/n }'
done
