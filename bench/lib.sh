# Shared by the benchmark scripts (source it after `set -euo pipefail`):
#   bench_start NAME    a work directory $work (/tmp/tern-NAME.XXXXXX), removed on exit
#                       with every process whose pid is in $pids (TERM, then waited for)
#   free_port           a free TCP port on 127.0.0.1
#   wait_http PORT      waits (up to 10 s) until the node on PORT answers /healthz
#   start_nats          a nats-server with JetStream in $work (its port in $nats_port)
#                       and a cluster secret in $work/secret
#   start_node TERND NAME PORT [FLAG...]
#                       the ternd binary TERND as node NAME of that cluster, serving
#                       127.0.0.1:PORT, CoAP off, its data in $work/NAME and its log in
#                       $work/NAME.log, with the extra flags (its pid in $pids)
#   wrk_stats           reads `wrk --latency` output; prints "rps p50 p99 non2xx"
#                       (latencies in us; non2xx: answers that were not 2xx)
#   metric URL SERIES   the value of one series (e.g. name{label="x"}) of a /metrics page
#   node_of URL         the X-Tern-Node header of the answer to URL (the node that ran it)
#   nginx_conf PORT [WORKERS]  writes $work/nginx.conf: nginx on 127.0.0.1:PORT (WORKERS
#                       worker processes, default auto) answering / with
#                       hello.wasm's body and /fn/greet with greet.wasm's answer to wrk's
#                       request ($greet_body), from its config (no file I/O); its pid file
#                       is $work/nginx.pid

bench_start() {
  work="$(mktemp -d "/tmp/tern-$1.XXXXXX")"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): node on port $1 did not start" >&2
  exit 1
}

start_nats() {
  command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 1; }
  nats_port=$(free_port)
  nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" 2>"$work/nats.log" &
  pids+=($!)
  openssl rand -hex 32 >"$work/secret"
}

start_node() {
  local ternd="$1" name="$2" port="$3"
  shift 3
  "$ternd" --data "$work/$name" --listen "127.0.0.1:$port" --coap-listen off \
    --cluster "nats://127.0.0.1:$nats_port" --cluster-secret-file "$work/secret" \
    --node-name "$name" "$@" 2>"$work/$name.log" &
  pids+=($!)
}

wrk_stats() {
  awk '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
    /Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    END { printf "%d %d %d %d\n", rps, p50, p99, bad }'
}

metric() {
  curl -sk "$1" | awk -v s="$2" '$1 == s { print $2 }'
}

node_of() {
  curl -sk -D - -o /dev/null "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-tern-node" { print $2 }'
}

# greet.wasm's answer to a request with a Host header only, as wrk sends it.
greet_body='Hello, world! GET, 0 bytes, 1 headers\n'

nginx_conf() {
  cat > "$work/nginx.conf" <<EOF
worker_processes ${2:-auto};
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
    listen 127.0.0.1:$1;
    location / { default_type application/octet-stream; return 200 "Hello from tern!\n"; }
    location /fn/greet { default_type application/octet-stream; return 200 "$greet_body"; }
  }
}
EOF
}
