#!/usr/bin/env bash
# Forwarded calls over a TLS direct link vs a plain one vs NATS, side by side in one run
# (docs/benchmarks.md, "Cluster: direct links with TLS"). One nats-server (JetStream) and
# five ternd nodes of one site on loopback:
#   p1, p2, p3  plain nodes; `hello` runs on p2 only (label role=x); p1 forwards it over a
#               plain direct link, p3 (--direct-listen off) over NATS;
#   t1, t2      TLS nodes (--tls-cert, --tls-key, --peer-ca; certificates made here with
#               openssl); `hello-tls` runs on t2 only (label role=t); t1 forwards it over a
#               mutual-TLS direct link.
# wrk with one connection (-t1 -c1 --latency) calls each in turn, for ROUNDS rounds: p2
# and t2 locally (the baselines, plain HTTP and HTTPS), p1, p3 and t1 forwarding; p50,
# p99 and requests/s of each. A forwarded call's cost is its p50 minus the local p50 of
# the same protocol in the same round (HTTPS to t1 and t2 alike).
#
#   bench/peer_tls_bench.sh [ROUNDS] [DURATION]      (defaults 3 rounds of 8 s)
#   TERN_BENCH_BUILD=DIR selects the build directory (default build/release).
#
# Needs: the build (ternd, tern, examples), nats-server, wrk, curl and openssl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TERN_BENCH_BUILD:-$root/build/release}"
bin="$build/bin"
hello="$build/examples/functions/hello.wasm"
rounds="${1:-3}"
duration="${2:-8}s"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start peer-tls-bench

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
# A site CA and one node certificate for 127.0.0.1, usable as server and client.
certs="$work/certs"
mkdir -p "$certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$certs/ca.key" -out "$certs/ca.pem" -subj "/CN=bench site CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$certs/node.key" -out "$certs/node.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$certs/node.ext"
openssl x509 -req -in "$certs/node.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" \
  -CAcreateserial -days 2 -extfile "$certs/node.ext" -out "$certs/node.pem" 2>/dev/null

start_nats
declare -A port scheme
for n in p1 p2 p3 t1 t2; do
  port[$n]=$(free_port)
  extra=()
  scheme[$n]=http
  case $n in
    p2) extra=(--labels role=x) ;;
    p3) extra=(--direct-listen off) ;;
    t1 | t2)
      scheme[$n]=https
      extra=(--tls-cert "$certs/node.pem" --tls-key "$certs/node.key" --peer-ca "$certs/ca.pem")
      [ "$n" = t2 ] && extra+=(--labels role=t)
      ;;
  esac
  start_node "$bin/ternd" "$n" "${port[$n]}" "${extra[@]}"
done
url() { echo "${scheme[$1]}://127.0.0.1:${port[$1]}$2"; }
for n in p1 p2 p3 t1 t2; do
  for _ in $(seq 1 200); do
    curl -skf "$(url "$n" /healthz)" >/dev/null 2>&1 && break
    sleep 0.05
  done
done

tern() { "$bin/tern" --node "$(url p1 "")" --token "$(cat "$work/p1/admin.token")" "$@"; }
tern deploy hello "$hello" --labels role=x >/dev/null
tern deploy hello-tls "$hello" --labels role=t >/dev/null
for pair in p1:hello:p2 p3:hello:p2 t1:hello-tls:t2; do
  IFS=: read -r from fn to <<<"$pair"
  for _ in $(seq 1 400); do
    [ "$(node_of "$(url "$from" "/fn/$fn")")" = "$to" ] && break
    sleep 0.05
  done
  [ "$(node_of "$(url "$from" "/fn/$fn")")" = "$to" ] ||
    { echo "peer_tls_bench: $from does not forward $fn to $to" >&2; exit 1; }
done
sends() {  # node path -> forwarded calls it sent on that path
  metric "$(url "$1" /metrics)" "tern_cluster_forward_sends_total{path=\"$2\"}"
}
# Wait until the links are open (the first calls open them and take NATS).
for n in p1 t1; do
  for _ in $(seq 1 400); do
    curl -sk -o /dev/null "$(url "$n" /fn/$([ "$n" = t1 ] && echo hello-tls || echo hello))"
    [ "$(sends "$n" direct)" != 0 ] && break
    sleep 0.05
  done
done

run_wrk() {  # url -> "rps p50 p99 non2xx" (latencies in us)
  wrk -t1 -c1 -d"$duration" --latency "$1" 2>&1 | wrk_stats
}

echo "## Cluster: direct links with TLS"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
echo "| round | local HTTP p50 / p99 (us) | plain link p50 / p99 | over NATS p50 / p99 | local HTTPS p50 / p99 | TLS link p50 / p99 | req/s: local HTTP, plain link, NATS, local HTTPS, TLS link |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  read -r lr lp50 lp99 _ < <(run_wrk "$(url p2 /fn/hello)")
  read -r pr pp50 pp99 _ < <(run_wrk "$(url p1 /fn/hello)")
  read -r nr np50 np99 _ < <(run_wrk "$(url p3 /fn/hello)")
  read -r sr sp50 sp99 _ < <(run_wrk "$(url t2 /fn/hello-tls)")
  read -r tr tp50 tp99 _ < <(run_wrk "$(url t1 /fn/hello-tls)")
  echo "| $r | $lp50 / $lp99 | $pp50 / $pp99 | $np50 / $np99 | $sp50 / $sp99 | $tp50 / $tp99 | $lr, $pr, $nr, $sr, $tr |"
done
echo
echo "forwarded calls sent: p1 direct $(sends p1 direct), nats $(sends p1 nats); p3 direct $(sends p3 direct), nats $(sends p3 nats); t1 direct $(sends t1 direct), nats $(sends t1 nats)"
