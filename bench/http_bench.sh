#!/usr/bin/env bash
# HTTP benchmark of a node against nginx, side by side in one run, on loopback:
#   - wrk (closed loop) against ternd's /fn/hello (a fresh sandbox per request, 17 bytes from
#     fputs) and /fn/greet (bench/guests/greet.c: wasi-libc, reads its CGI environment and
#     stdin, answers with printf), and against nginx returning the same bodies from its
#     config (no file I/O), same parameters; several alternating rounds, median of each
#     side reported with the ratio;
#   - deploy-to-first-response: PUT a module into a fresh node (cold compile cache) and into
#     a node that compiled it before (warm), then the first GET.
# The wrk rounds begin once every function is served by its optimised (-O2) object: with
# the default compile tier a new function is first served from the baseline object while
# the -O2 compile runs in the background, and that compile competes with both servers.
#
#   bench/http_bench.sh [ROUNDS] [DURATION]      (defaults 5 rounds of 5 s)
#   TERN_BENCH_TERND=PATH selects another ternd binary.
#   TERN_BENCH_BASELINE=PATH adds a second node running that ternd (a build before a
#     change) to every round, so the change is measured against it in the same run.
#   TERN_BENCH_BUILD=DIR takes the build from DIR instead of build/release.
#   TERN_BENCH_THREADS=N serves with N threads on every side: nginx's worker_processes and
#     ternd's --workers (which also sizes its serving threads); default: each side's own
#     default, one per core.
#
# Needs: build/release (ternd, examples, bench guests), nginx and wrk
# (scripts/install-deps.sh installs both: wrk and nginx-light).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
build="${TERN_BENCH_BUILD:-$root/build/release}"
bin="$build/bin"
hello="$build/examples/functions/hello.wasm"
greet="$build/bench/guests/greet.wasm"
rounds="${1:-5}"
duration="${2:-5}s"
work="$(mktemp -d /tmp/tern-http-bench.XXXXXX)"
tern_port=18480
nginx_port=18481
base_port=18482
cleanup() {
  [ -n "${ternd_pid:-}" ] && kill -TERM "$ternd_pid" 2>/dev/null || true
  [ -n "${base_pid:-}" ] && kill -TERM "$base_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }

threads="${TERN_BENCH_THREADS:-}"
if [ -n "$threads" ] && { ! [[ "$threads" =~ ^[1-9][0-9]{0,3}$ ]] || [ "$threads" -gt 1024 ]; }; then
  echo "http_bench.sh: TERN_BENCH_THREADS must be a number of threads from 1 to 1024, got '$threads'" >&2
  exit 2
fi
tern_threads=()
[ -n "$threads" ] && tern_threads=(--workers "$threads")
nginx_conf $nginx_port "$threads"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
nginx -c "$work/nginx.conf" -p "$work" &
"${TERN_BENCH_TERND:-$bin/ternd}" --listen 127.0.0.1:$tern_port --data "$work/node" "${tern_threads[@]}" \
  2>"$work/ternd.log" &
ternd_pid=$!
if [ -n "${TERN_BENCH_BASELINE:-}" ]; then
  "$TERN_BENCH_BASELINE" --listen 127.0.0.1:$base_port --data "$work/base" "${tern_threads[@]}" \
    2>"$work/base.log" &
  base_pid=$!
fi
wait_node() {  # data-dir port
  for _ in $(seq 1 100); do
    [ -f "$1/admin.token" ] && curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "http_bench.sh: the node on port $2 did not start" >&2
  exit 1
}
wait_node "$work/node" $tern_port
token="$(cat "$work/node/admin.token")"
deploy() {  # port token name module
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $2" --data-binary @"$4" \
    "http://127.0.0.1:$1/v1/functions/$3"
}

# Time of one request as curl measures it (connect to last byte), in ms: process start-up
# of curl itself is not counted.
timed() { curl -sf -o /dev/null -w '%{time_total}' "$@" | awk '{ printf "%.1f", $1 * 1000 }'; }
# Deploy-to-first-response, cold: nothing compiled yet in this node's cache.
d_cold=$(timed -X PUT -H "Authorization: Bearer $token" --data-binary @"$hello" \
  "http://127.0.0.1:$tern_port/v1/functions/hello")
f_cold=$(timed "http://127.0.0.1:$tern_port/fn/hello")
# Warm: the same module deployed under another name (already compiled, cache hit).
d_warm=$(timed -X PUT -H "Authorization: Bearer $token" --data-binary @"$hello" \
  "http://127.0.0.1:$tern_port/v1/functions/hello2")
f_warm=$(timed "http://127.0.0.1:$tern_port/fn/hello2")

deploy $tern_port "$token" greet "$greet"
if [ -n "${base_pid:-}" ]; then
  wait_node "$work/base" $base_port
  base_token="$(cat "$work/base/admin.token")"
  deploy $base_port "$base_token" hello "$hello"
  deploy $base_port "$base_token" greet "$greet"
fi
# Functions are deployed with the default compile tier (auto): served at once from the
# baseline object while the optimised one is compiled in the background. The rounds measure
# the steady state, so they wait until every function is served by its optimised object
# (and the compiler has finished taking CPU time from both servers).
wait_optimized() {  # port token name
  for _ in $(seq 1 1200); do
    curl -sf -H "Authorization: Bearer $2" "http://127.0.0.1:$1/v1/functions/$3" |
      grep -q '"tier":"optimized"' && return 0
    sleep 0.1
  done
  echo "http_bench.sh: /fn/$3 on port $1 is not served by its optimised object after 120 s" >&2
  exit 1
}
for fn in hello hello2 greet; do wait_optimized $tern_port "$token" $fn; done
if [ -n "${base_pid:-}" ]; then
  for fn in hello greet; do wait_optimized $base_port "$base_token" $fn; done
fi
for port in $tern_port ${base_pid:+$base_port}; do
  for fn in hello greet; do
    want="Hello from tern!"
    [ $fn = greet ] && want="$(printf "$greet_body")"
    got="$(curl -sf -H "User-Agent:" -H "Accept:" "http://127.0.0.1:$port/fn/$fn")"  # Host only, as wrk
    [ "$got" = "$want" ] || { echo "http_bench.sh: /fn/$fn on port $port answered \"$got\"" >&2; exit 1; }
  done
done

run_wrk() {  # url -> "rps p50 p99" (latencies in ms)
  wrk -t1 -c32 -d"$duration" --latency "$1" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%d %.3f %.3f\n", rps, p50, p99 }'
}

servers=("nginx:$nginx_port" "ternd:$tern_port")
[ -n "${base_pid:-}" ] && servers+=("baseline:$base_port")
for fn in hello greet; do
  for sp in "${servers[@]}"; do
    wrk -t1 -c32 -d2s "http://127.0.0.1:${sp#*:}/fn/$fn" >/dev/null 2>&1  # warm-up
    : > "$work/${sp%%:*}-$fn.txt"
  done
done
for r in $(seq 1 "$rounds"); do
  for fn in hello greet; do
    for sp in "${servers[@]}"; do
      run_wrk "http://127.0.0.1:${sp#*:}/fn/$fn" >> "$work/${sp%%:*}-$fn.txt"
    done
  done
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$work/$1.txt" | median; }

echo "## HTTP: ternd vs nginx (wrk -t1 -c32 -d$duration, $rounds alternating rounds, medians; serving threads: ${threads:-one per core each (default)})"
echo
echo "Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| function | server | req/s | p50 ms | p99 ms | req/s vs nginx |"
echo "|---|---|---:|---:|---:|---:|"
for fn in hello greet; do
  n_rps=$(col "nginx-$fn" 1)
  for sp in "${servers[@]}"; do
    s=${sp%%:*}
    rps=$(col "$s-$fn" 1)
    ratio=$(awk -v t="$rps" -v n="$n_rps" 'BEGIN { printf "%.2f", t / n }')
    echo "| $fn | $s | $rps | $(col "$s-$fn" 2) | $(col "$s-$fn" 3) | $ratio |"
  done
done
echo
for fn in hello greet; do
  for sp in "${servers[@]}"; do
    echo "per round (req/s p50 p99), ${sp%%:*} $fn: $(tr '\n' ';' < "$work/${sp%%:*}-$fn.txt")"
  done
done
echo
echo "## Deploy to first response (hello.wasm, $(stat -c %s "$hello") bytes)"
echo
echo "| case | deploy (PUT answered) ms | first response after deploy ms | total ms |"
echo "|---|---|---|---|"
total() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a + b }'; }
echo "| cold (compiles) | $d_cold | $f_cold | $(total "$d_cold" "$f_cold") |"
echo "| warm (compiled object cached) | $d_warm | $f_warm | $(total "$d_warm" "$f_warm") |"
