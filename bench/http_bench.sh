#!/usr/bin/env bash
# HTTP benchmark of a node against nginx, side by side in one run, on loopback:
#   - wrk (closed loop) against ternd's /fn/hello (a fresh sandbox per request) and against
#     nginx returning the same 17-byte body from its config (no file I/O), same parameters;
#     several alternating rounds, median of each side reported with the ratio;
#   - deploy-to-first-response: PUT a module into a fresh node (cold compile cache) and into
#     a node that compiled it before (warm), then the first GET.
#
#   bench/http_bench.sh [ROUNDS] [DURATION]      (defaults 5 rounds of 5 s)
#   TERN_BENCH_TERND=PATH selects another ternd binary (a baseline build).
#
# Needs: build/release (ternd, examples), nginx and wrk (scripts/install-deps.sh has wrk;
# nginx comes from Debian's nginx-light package).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release/bin"
hello="$root/build/release/examples/functions/hello.wasm"
rounds="${1:-5}"
duration="${2:-5}s"
work="$(mktemp -d /tmp/tern-http-bench.XXXXXX)"
tern_port=18480
nginx_port=18481
cleanup() {
  [ -n "${ternd_pid:-}" ] && kill -TERM "$ternd_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }

cat > "$work/nginx.conf" <<EOF2
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type application/octet-stream; return 200 "Hello from tern!\n"; }
  }
}
EOF2
nginx -c "$work/nginx.conf" -p "$work" &
"${TERN_BENCH_TERND:-$bin/ternd}" --listen 127.0.0.1:$tern_port --data "$work/node" 2>"$work/ternd.log" &
ternd_pid=$!
for _ in $(seq 1 100); do
  [ -f "$work/node/admin.token" ] && curl -sf "http://127.0.0.1:$tern_port/healthz" >/dev/null && break
  sleep 0.1
done
token="$(cat "$work/node/admin.token")"

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

run_wrk() {  # url -> "rps p50 p99" (latencies in ms)
  wrk -t1 -c32 -d"$duration" --latency "$1" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%d %.3f %.3f\n", rps, p50, p99 }'
}

wrk -t1 -c32 -d2s "http://127.0.0.1:$tern_port/fn/hello" >/dev/null 2>&1  # warm-up
wrk -t1 -c32 -d2s "http://127.0.0.1:$nginx_port/fn/hello" >/dev/null 2>&1
: > "$work/tern.txt"
: > "$work/nginx.txt"
for r in $(seq 1 "$rounds"); do
  run_wrk "http://127.0.0.1:$nginx_port/fn/hello" >> "$work/nginx.txt"
  run_wrk "http://127.0.0.1:$tern_port/fn/hello" >> "$work/tern.txt"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
t_rps=$(cut -d' ' -f1 "$work/tern.txt" | median); n_rps=$(cut -d' ' -f1 "$work/nginx.txt" | median)
t_p50=$(cut -d' ' -f2 "$work/tern.txt" | median); n_p50=$(cut -d' ' -f2 "$work/nginx.txt" | median)
t_p99=$(cut -d' ' -f3 "$work/tern.txt" | median); n_p99=$(cut -d' ' -f3 "$work/nginx.txt" | median)

echo "## HTTP: ternd /fn/hello vs nginx (wrk -t1 -c32 -d$duration, $rounds alternating rounds, medians)"
echo
echo "| server | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|"
echo "| nginx (static body) | $n_rps | $n_p50 | $n_p99 |"
echo "| ternd (fresh sandbox per request) | $t_rps | $t_p50 | $t_p99 |"
echo
awk -v t="$t_rps" -v n="$n_rps" 'BEGIN { printf "throughput ratio ternd/nginx: %.2f\n", t / n }'
echo
echo "per round (req/s p50 p99): nginx: $(tr '\n' ';' < "$work/nginx.txt")"
echo "per round (req/s p50 p99): ternd: $(tr '\n' ';' < "$work/tern.txt")"
echo
echo "## Deploy to first response (hello.wasm, $(stat -c %s "$hello") bytes)"
echo
echo "| case | deploy (PUT answered) ms | first response after deploy ms | total ms |"
echo "|---|---|---|---|"
total() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a + b }'; }
echo "| cold (compiles) | $d_cold | $f_cold | $(total "$d_cold" "$f_cold") |"
echo "| warm (compiled object cached) | $d_warm | $f_warm | $(total "$d_warm" "$f_warm") |"
