# Shared by the benchmark scripts (source it after `set -euo pipefail`):
#   bench_start NAME    a work directory $work (/tmp/tern-NAME.XXXXXX), removed on exit
#                       with every process whose pid is in $pids (TERM, then waited for)
#   free_port           a free TCP port on 127.0.0.1
#   wait_http PORT      waits (up to 10 s) until the node on PORT answers /healthz
#   start_nats          a nats-server with JetStream in $work (its port in $nats_port)
#                       and a cluster secret in $work/secret

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
