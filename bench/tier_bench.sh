#!/usr/bin/env bash
# Tiered compilation (docs/design/tiers.md), measured on one node over loopback:
#   1. deploy to first response with an empty compile cache, for a realistic C function
#      (report.wasm: wasi-libc, reads its environment and body, printf) and the Rust hello
#      (hello_rust.wasm), at the baseline tier (compile_tier=baseline, TinyCC) and at the
#      optimized tier (compile_tier=optimized, cc -O2), taking turns in each round. Every
#      deploy is of a module made unique by a custom section of random bytes, so nothing is
#      ever found in the cache;
#   2. the swap under load: report.wasm deployed with the default tier (auto) while wrk
#      (-t1 -c32) runs against it in consecutive 1-second windows; for each window the
#      requests per second, the latency at p99 and the slowest request, the failed requests
#      (non-2xx and socket errors) and the tier the node reported at its end. Throughput
#      before and after the swap is the median of the windows at each tier; a request slowed
#      by the swap shows as a p99 or maximum in the swap's window above those of the windows
#      around it.
#
#   bench/tier_bench.sh [ROUNDS] [WINDOWS]     (defaults 5 rounds, 12 windows)
#
# Needs: build/release (ternd, examples), curl, wrk.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
bin="$build/bin"
examples="$build/examples/functions"
rounds="${1:-5}"
windows="${2:-12}"
work="$(mktemp -d /tmp/tern-tier-bench.XXXXXX)"
port=18490
cleanup() {
  [ -n "${ternd_pid:-}" ] && kill -TERM "$ternd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

"$bin/ternd" --listen 127.0.0.1:$port --data "$work/node" 2>"$work/ternd.log" &
ternd_pid=$!
for _ in $(seq 1 100); do
  [ -f "$work/node/admin.token" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
token="$(cat "$work/node/admin.token")"
auth=(-H "Authorization: Bearer $token")

# A copy of module $1 made unique: a custom section "uniq" holding 8 random bytes.
unique() {
  cp "$1" "$2"
  { printf '\000\015\004uniq'; head -c 8 /dev/urandom; } >> "$2"
}
# ms of one request as curl measures it (connect to last byte).
timed() { curl -sf -o /dev/null -w '%{time_total}' "$@" | awk '{ printf "%.1f", $1 * 1000 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# wrk's latencies (850.00us, 1.20ms, 2.01s) in ms.
to_ms() {
  awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/ && $1 !~ /ms$/) v *= 1000
         printf "%.2f\n", v }'
}

echo "## Deploy to first response: baseline tier vs -O2 (empty cache, $rounds rounds, medians)"
echo
echo "| module | wasm bytes | tier | deploy ms | first response ms | total ms | per round (total ms) |"
echo "|---|---|---|---|---|---|---|"
n=0
for m in report hello_rust; do
  for tier in baseline optimized; do : > "$work/$m-$tier.txt"; done
  for r in $(seq 1 "$rounds"); do
    for tier in baseline optimized; do
      n=$((n + 1))
      unique "$examples/$m.wasm" "$work/m.wasm"
      d=$(timed -X PUT "${auth[@]}" --data-binary @"$work/m.wasm" \
        "http://127.0.0.1:$port/v1/functions/f$n?compile_tier=$tier")
      f=$(timed -X POST --data-binary "some body" "http://127.0.0.1:$port/fn/f$n")
      echo "$d $f" | awk '{ printf "%s %s %.1f\n", $1, $2, $1 + $2 }' >> "$work/$m-$tier.txt"
      curl -sf -X DELETE "${auth[@]}" "http://127.0.0.1:$port/v1/functions/f$n" >/dev/null
    done
  done
  for tier in baseline optimized; do
    t="$work/$m-$tier.txt"
    echo "| $m | $(stat -c %s "$examples/$m.wasm") | $tier | $(cut -d' ' -f1 "$t" | median) |" \
         "$(cut -d' ' -f2 "$t" | median) | $(cut -d' ' -f3 "$t" | median) |" \
         "$(cut -d' ' -f3 "$t" | tr '\n' ' ')|"
  done
done
echo

# The swap under load.
unique "$examples/report.wasm" "$work/swap.wasm"
curl -sf -o /dev/null -X PUT "${auth[@]}" --data-binary @"$work/swap.wasm" \
  "http://127.0.0.1:$port/v1/functions/swap"
tier_now() {
  curl -sf "${auth[@]}" "http://127.0.0.1:$port/v1/functions/swap" |
    sed -n 's/.*"tier":"\([a-z]*\)".*/\1/p'
}
: > "$work/windows.txt"
for w in $(seq 1 "$windows"); do
  wrk -t1 -c32 -d1s --latency "http://127.0.0.1:$port/fn/swap" > "$work/wrk.txt" 2>&1 || true
  rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt" | to_ms)
  max=$(awk '$1 == "Latency" && NF >= 5 { print $4 }' "$work/wrk.txt" | to_ms)
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.txt")
  sockerr=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$work/wrk.txt")
  echo "$w $rps ${non2xx:-0} ${sockerr:-0} $(tier_now) ${p99:-?} ${max:-?}" >> "$work/windows.txt"
done
echo "## Swap under load: report.wasm deployed with compile tier auto, wrk -t1 -c32 in 1 s windows"
echo
echo "| window | req/s | p99 ms | max ms | failed (non-2xx) | socket errors | tier at the window's end |"
echo "|---|---|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $6, $7, $3, $4, $5 }' "$work/windows.txt"
echo
b=$(awk '$5 == "baseline" { print $2 }' "$work/windows.txt" | median)
o=$(awk '$5 == "optimized" { print $2 }' "$work/windows.txt" | median)
failed=$(awk '{ s += $3 + $4 } END { print s + 0 }' "$work/windows.txt")
echo "median req/s at the baseline tier: ${b:-none}; at the optimized tier: ${o:-none}; failed requests in all windows: $failed"
echo
echo "node metrics after the run:"
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^tern_(compiles_total|compile_seconds_total|tier_|function_tier\{function="swap")'
