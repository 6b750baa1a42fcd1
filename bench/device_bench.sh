#!/usr/bin/env bash
# Devices (docs/benchmarks.md, "Devices"): starts a standalone ternd as the edge, deploys
# the test guest wf_step as `inc` (light) and `work` (a fixed 10,000,000 rounds of
# arithmetic), and runs tern_bench_device:
#   - the decision's own cost per call;
#   - `inc` on the device (in process, the embedded engine) vs at the edge, p50/p99; and
#     `tern run` of the same module as a whole process, the way to run it locally without
#     a device runtime (RUNS times, median);
#   - a mixed workload (inc and work alternating) under the policies local, edge and
#     adaptive, with the device held to QUOTA% of one CPU (cgroup v1 cpu controller, as
#     root; 100: no quota).
#
#   bench/device_bench.sh [QUOTA] [RUNS] [MIXED]      (defaults 20, 50 and 400 calls)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
quota="${1:-20}"
runs="${2:-50}"
mixed="${3:-400}"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start device-bench
port=$(free_port)
"$build/bin/ternd" --data "$work/edge" --listen "127.0.0.1:$port" --coap-listen off 2>"$work/ternd.log" &
pids+=($!)
wait_http "$port"
token=$(cat "$work/edge/admin.token")
step="$build/tests/guests/wf_step.wasm"
curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$step" \
  "http://127.0.0.1:$port/v1/functions/inc?env=OP=inc" >/dev/null
curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$step" \
  "http://127.0.0.1:$port/v1/functions/work?env=OP=work&env=WORK_ITERS=10000000" >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Fetched and compiled once outside the quota.
"$build/bin/tern_bench_device" --edge "http://127.0.0.1:$port" --token "$token" --state-dir "$work/device" \
  --decisions 1000 --calls 2 --mixed 2 >/dev/null
echo
"$build/bin/tern_bench_device" --edge "http://127.0.0.1:$port" --token "$token" --state-dir "$work/device" --mixed 0 |
  grep -v '^mixed'

# tern run of the same module, a whole process per call (its compile cached).
echo '{"n":1}' >"$work/in.json"
TERN_CACHE_DIR="$work/run-cache" "$build/bin/tern" run "$step" --env OP=inc --input "$work/in.json" >/dev/null
times=()
for _ in $(seq 1 "$runs"); do
  t0=$(date +%s%N)
  TERN_CACHE_DIR="$work/run-cache" "$build/bin/tern" run "$step" --env OP=inc --input "$work/in.json" >/dev/null
  times+=($(( ($(date +%s%N) - t0) / 1000 )))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "tern run (a whole process) median $(awk -v us="$median" 'BEGIN { printf "%.3f", us / 1000 }') ms over $runs runs"
echo

# A new device's first call: the object fetched from the node (the device needs no
# compiler) against compiling the module on the device (tern run on a cold cache), each a
# whole process with an empty state directory or cache, 10 runs, median.
first_call() {  # label, command...
  local label=$1
  shift
  local t=()
  for i in $(seq 1 10); do
    local dir="$work/first-$label-$i"
    local t0
    t0=$(date +%s%N)
    "$@" "$dir" >/dev/null
    t+=($(( ($(date +%s%N) - t0) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk -v l="$label" '{ v[NR] = $1 } END { printf "first call, %s: median %.1f ms over %d runs\n", l, v[int((NR + 1) / 2)] / 1000, NR }'
}
device_first() {
  "$build/bin/tern" --token "$token" device call inc --edge "http://127.0.0.1:$port" --policy local \
    --count 1 --data '{"n":1}' --state-dir "$1"
}
compile_first() {
  TERN_CACHE_DIR="$1" "$build/bin/tern" run "$step" --env OP=inc --input "$work/in.json"
}
first_call "object from the node" device_first
first_call "compiled on the device" compile_first
for target in aarch64 x86_64; do
  t0=$(date +%s%N)
  code=$(curl -s -o "$work/object-$target.so" -w '%{http_code}' -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/v1/functions/inc/object?target=$target")
  echo "the node's first $target object: HTTP $code in $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(stat -c %s "$work/object-$target.so") bytes"
done
echo

cg=""
if [ "$quota" -lt 100 ] && [ "$(id -u)" = 0 ] && [ -w /sys/fs/cgroup/cpu ]; then
  cg="/sys/fs/cgroup/cpu/tern-device-bench-$$"
  mkdir "$cg"
  echo 10000 >"$cg/cpu.cfs_period_us"
  echo $((quota * 100)) >"$cg/cpu.cfs_quota_us"
  echo "mixed workload with the device held to $quota% of one CPU:"
else
  echo "mixed workload (no CPU quota):"
fi
sh -c "${cg:+echo \$\$ > $cg/cgroup.procs && }exec '$build/bin/tern_bench_device' --edge 'http://127.0.0.1:$port' \
  --token '$token' --state-dir '$work/device' --decisions 1000 --calls 2 --mixed $mixed" | grep '^mixed'
[ -n "$cg" ] && rmdir "$cg"
