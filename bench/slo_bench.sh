#!/usr/bin/env bash
# Latency objectives on an oversubscribed node: two functions with different service times
# and objectives share one worker slot (ternd --workers 1) while an open-loop Poisson load
# (tern_bench_openloop) ramps from 50% to 150% of the slot's capacity, each function
# offering half of the load. Two nodes run side by side in the same run, one with the
# deadline scheduler and one with plain FIFO (ternd --scheduler fifo); each load level is
# played against both, alternately.
#
#   bench/slo_bench.sh [SECONDS_PER_LEVEL]     (default 10)
#
#   fast: burns 1 ms per request, objective p95 <= 40 ms, weight 1
#   slow: burns 4 ms per request, objective p95 <= 160 ms, weight 1
#
# The slot's capacity is measured first: with the slot saturated (150% of the nominal load,
# burn times), the slot time each answered request held on the deadline node, tern's own
# work around the guest included; load levels are fractions of 1 / that cost, and goodput counts each request
# within its objective at that cost. TERN_SLO_NOMINAL=1 uses the burn times instead.
#
# Then prints tern's capacity model's answer (tern plan capacity) for each objective with
# the slot 90% busy with that function's requests: "slots: 1" means one slot can meet it at
# 90% load. Then a markdown table: per policy, load and function, the attainment (share of
# sent requests answered within the objective), p95 of answered requests, refusals, the
# function's goodput in slots (requests within objective x cost per request / second), its slot
# share (worker-slot time its invocations held, dispatch to release, per second of the
# level, from the node's tern_function_slot_seconds_total), and the load generator's own
# figures (p99 lateness of its sends, its CPU use in % of one core).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release/bin"
burner="$root/build/release/tests/guests/burner.wasm"
secs="${1:-10}"
fast_slo=40
slow_slo=160
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start slo-bench

start_node() {  # policy port
  # The load generator is one client with a connection per outstanding request: past
  # capacity, the wait queue (256) and more, above the default per-client limit (128).
  "$bin/ternd" --listen "127.0.0.1:$2" --coap-listen off --data "$work/$1" --workers 1 \
    --scheduler "$1" --max-connections-per-client 4096 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    [ -f "$work/$1/admin.token" ] && curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break
    sleep 0.1
  done
  local token
  token="$(cat "$work/$1/admin.token")"
  curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$burner" \
    "http://127.0.0.1:$2/v1/functions/fast?env=BURN_US%3D1000&slo_ms=$fast_slo&slo_percentile=95" >/dev/null
  curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$burner" \
    "http://127.0.0.1:$2/v1/functions/slow?env=BURN_US%3D4000&slo_ms=$slow_slo&slo_percentile=95" >/dev/null
}
start_node deadline 18590
start_node fifo 18591
declare -A port=([deadline]=18590 [fifo]=18591)

slot_seconds() {  # policy function -> worker-slot seconds its invocations have held
  curl -s "http://127.0.0.1:${port[$1]}/metrics" |
    awk -v s="tern_function_slot_seconds_total{function=\"$2\"}" '$1 == s { print $2 }'
}
# What one request of each function costs the slot (seconds): the burn time by default;
# measured by the calibration below unless TERN_SLO_NOMINAL=1.
declare -A cost=([fast]=0.001 [slow]=0.004)
load() {  # policy percent seconds
  local fast slow
  fast=$(awk -v l="$2" -v c="${cost[fast]}" 'BEGIN { printf "%.2f", l / 100 * 0.5 / c }')
  slow=$(awk -v l="$2" -v c="${cost[slow]}" 'BEGIN { printf "%.2f", l / 100 * 0.5 / c }')
  "$bin/tern_bench_openloop" --port "${port[$1]}" --duration-s "$3" --seed "$2" \
    --fn "fast:$fast:$fast_slo" --fn "slow:$slow:$slow_slo"
}
for p in deadline fifo; do load "$p" 50 2 >/dev/null; done  # warm-up
# Calibration: with the slot saturated (150% of the nominal load, so the worker never
# waits for work), the slot time each answered request held on the deadline node, tern's
# work around the guest included. Its inverse is what the slot really serves; the load
# levels are fractions of that.
calibration="nominal (burn times)"
if [ "${TERN_SLO_NOMINAL:-0}" != 1 ]; then
  declare -A before=()
  for f in fast slow; do before[$f]=$(slot_seconds deadline "$f"); done
  load deadline 150 5 >"$work/calibration.out"
  for f in fast slow; do
    ok=$(awk -v f="$f" '$1 == "fn=" f { for (i = 1; i <= NF; i++) if ($i ~ /^ok=/) { sub("ok=", "", $i); print $i } }' "$work/calibration.out")
    cost[$f]=$(awk -v a="$(slot_seconds deadline "$f")" -v b="${before[$f]}" -v n="$ok" 'BEGIN { printf "%.6f", (a - b) / n }')
  done
  calibration="measured with the slot saturated: fast ${cost[fast]} s, slow ${cost[slow]} s of slot time per request"
fi

echo "machine: $(nproc) cores; $(uptime | sed 's/^.*load/load/')"
echo
echo "capacity model, one slot 90% busy with each function's requests:"
for spec in "fast 900 1 $fast_slo" "slow 225 4 $slow_slo"; do
  set -- $spec
  echo "  $1 (rate $2/s, $3 ms, p95 <= $4 ms): $("$bin/tern" plan capacity --rate "$2" \
    --service-ms "$3" --slo-ms "$4" --percentile 95 | grep -E '^(slots|P\(wait >)' | paste -sd ';')"
done
echo
echo "cost per request: $calibration"
echo
echo "| policy | load | function | sent | attainment | p95 ms | refused | goodput slots | slot share | gen lag p99 ms | gen cpu |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for level in 50 70 90 110 130 150; do
  for p in deadline fifo; do
    declare -A held=()
    for f in fast slow; do held[$f]=$(slot_seconds "$p" "$f"); done
    load "$p" "$level" "$secs" >"$work/level.out"
    for f in fast slow; do held[$f]=$(awk -v a="$(slot_seconds "$p" "$f")" -v b="${held[$f]}" 'BEGIN { print a - b }'); done
    while read -r line; do
      eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/r_/')"
      service=${cost[$r_fn]}
      awk -v p="$p" -v l="$level" -v f="$r_fn" -v s="$r_sent" -v a="$r_attainment" \
        -v p95="$r_p95_ms" -v rf="$r_refused" -v w="$r_within" -v sv="$service" -v t="$secs" \
        -v lag="$r_send_lag_p99_ms" -v cpu="$r_gen_cpu_s" -v held="${held[$r_fn]}" \
        'BEGIN { printf "| %s | %d%% | %s | %d | %.1f%% | %.1f | %d | %.3f | %.3f | %.2f | %.1f%% |\n", p, l, f, s, a * 100, p95, rf, w * sv / t, held / t, lag, cpu / t * 100 }'
    done <"$work/level.out"
  done
done
echo
echo "machine after the run: $(uptime | sed 's/^.*load/load/')"
token="$(cat "$work/deadline/admin.token")"
echo "deadline node after the run:"
curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18590/v1/status |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["scheduler"]; print("replans", s["replans"], "sharp", s["sharp_replans"], "last_replan_us", s["last_replan_us"], "max_replan_us", s["max_replan_us"])'
