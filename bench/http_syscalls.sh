#!/usr/bin/env bash
# System calls per HTTP request of ternd (/fn/hello and /fn/greet) and of nginx returning the
# same bodies, under the same wrk load (-t1 -c32), counted by the kernel's syscall
# tracepoints (perf stat) over each server's threads while wrk runs. On a virtual machine a
# system call costs far more than on bare metal, so at equal work the server that makes
# fewer of them per request serves more requests.
#
#   bench/http_syscalls.sh [DURATION]       (seconds of wrk per server; default 3)
#   TERN_BENCH_BUILD=DIR takes the build from DIR instead of build/release.
#
# Needs root (or perf_event_paranoid -1) for the tracepoints, perf, wrk and nginx.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
duration="${1:-3}"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start http-syscalls
tern_port=$(free_port)
nginx_port=$(free_port)
nginx_conf $nginx_port
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
"$build/bin/ternd" --listen 127.0.0.1:$tern_port --data "$work/node" 2>"$work/ternd.log" &
ternd_pid=$!
pids+=($ternd_pid)
wait_http $tern_port
token="$(cat "$work/node/admin.token")"
for fn in hello greet; do
  m="$build/examples/functions/hello.wasm"
  [ $fn = greet ] && m="$build/bench/guests/greet.wasm"
  curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $token" --data-binary @"$m" \
    "http://127.0.0.1:$tern_port/v1/functions/$fn?compile_tier=optimized"
done
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$nginx_port/" >/dev/null && break; sleep 0.1; done
events="raw_syscalls:sys_enter"
for s in recvfrom recvmsg read sendmsg writev write epoll_wait epoll_ctl getrusage futex timerfd_settime; do
  events="$events,syscalls:sys_enter_$s"
done
# count SERVER PIDS URL: wrk for DURATION s while perf counts the servers' system calls.
count() {
  wrk -t1 -c32 -d1s "$3" >/dev/null  # warm-up
  perf stat -x, -e "$events" -p "$2" -o "$work/stat" -- sleep $((duration + 1)) &
  local perf_pid=$!
  sleep 0.5
  local requests
  requests=$(wrk -t1 -c32 -d"${duration}s" "$3" | awk '/requests in/ { print $1 }')
  wait $perf_pid
  awk -F, -v server="$1" -v n="$requests" '
    $3 ~ /sys_enter/ { name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all";
                       if ($1 + 0 > 0) v[name] = $1 / n }
    END { printf "| %s | %d |", server, n; printf " %.2f |", v["all"];
          s = ""; for (k in v) if (k != "all" && v[k] >= 0.01) s = s sprintf(" %s %.2f,", k, v[k]);
          sub(/,$/, "", s); print s " |" }' "$work/stat"
}
echo "| server | requests | system calls per request | of which, per request |"
echo "|---|---|---|---|"
count "ternd /fn/hello" "$ternd_pid" "http://127.0.0.1:$tern_port/fn/hello"
count "ternd /fn/greet" "$ternd_pid" "http://127.0.0.1:$tern_port/fn/greet"
workers=$(pgrep -f "nginx: worker process" -P "$(cat "$work/nginx.pid")" | paste -sd,)
count "nginx /" "$workers" "http://127.0.0.1:$nginx_port/"
count "nginx /fn/greet" "$workers" "http://127.0.0.1:$nginx_port/fn/greet"
