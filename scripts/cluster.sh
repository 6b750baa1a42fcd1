#!/usr/bin/env bash
# A local tern cluster on loopback for demos and tests (docs/design/cluster.md):
#
#   scripts/cluster.sh up [--sites N] [--nodes-per-site M] [--dir DIR]
#   scripts/cluster.sh down [--dir DIR]
#
# `up` starts a NATS hub with JetStream (the cloud), one NATS leaf node per edge site
# connected to the hub, M ternd processes per site attached to their site's leaf, and one
# cloud-tier ternd attached to the hub. Everything listens on 127.0.0.1 with free ports;
# state, logs and pids go to DIR (default /tmp/tern-cluster). `down` stops them all.
set -euo pipefail

cmd="${1:-}"
[ -n "$cmd" ] && shift
sites=2
per_site=2
dir=/tmp/tern-cluster
while [ $# -gt 0 ]; do
  case "$1" in
    --sites) sites="$2"; shift 2 ;;
    --nodes-per-site) per_site="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin="${TERN_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/release/bin}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cluster.sh: nothing listens on port $1" >&2
  return 1
}

start() {  # NAME COMMAND...: runs in the background, logs to DIR/NAME.log, pid in DIR/NAME.pid
  local name="$1"; shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

case "$cmd" in
  up)
    if ls "$dir"/*.pid >/dev/null 2>&1; then
      echo "cluster.sh: a cluster is already up in $dir (cluster.sh down --dir $dir)" >&2
      exit 1
    fi
    mkdir -p "$dir"
    [ -f "$dir/cluster.secret" ] || openssl rand -hex 32 >"$dir/cluster.secret"
    hub_port=$(free_port)
    leaf_port=$(free_port)
    cat >"$dir/hub.conf" <<CONF
listen: 127.0.0.1:$hub_port
server_name: hub
jetstream { store_dir: "$dir/hub-js", domain: hub }
leafnodes { listen: 127.0.0.1:$leaf_port }
CONF
    start hub nats-server -c "$dir/hub.conf"
    wait_port "$hub_port"
    echo "hub      nats://127.0.0.1:$hub_port (JetStream; leaf nodes on $leaf_port)"
    for s in $(seq 1 "$sites"); do
      site="site$s"
      port=$(free_port)
      cat >"$dir/$site-leaf.conf" <<CONF
listen: 127.0.0.1:$port
server_name: $site-leaf
leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:$leaf_port" } ] }
CONF
      start "$site-leaf" nats-server -c "$dir/$site-leaf.conf"
      wait_port "$port"
      echo "$site    leaf nats://127.0.0.1:$port"
      for n in $(seq 1 "$per_site"); do
        node="$site-n$n"
        http=$(free_port)
        start "$node" "$bin/ternd" --data "$dir/$node" --listen "127.0.0.1:$http" \
          --coap-listen off --cluster "nats://127.0.0.1:$port" \
          --cluster-secret-file "$dir/cluster.secret" --cluster-js-domain hub --node-name "$node" --site "$site" \
          --tier edge
        wait_port "$http"
        echo "  $node http://127.0.0.1:$http"
      done
    done
    http=$(free_port)
    start cloud-n1 "$bin/ternd" --data "$dir/cloud-n1" --listen "127.0.0.1:$http" \
      --coap-listen off --cluster "nats://127.0.0.1:$hub_port" \
      --cluster-secret-file "$dir/cluster.secret" --cluster-js-domain hub --node-name cloud-n1 --site cloud --tier cloud
    wait_port "$http"
    echo "cloud    cloud-n1 http://127.0.0.1:$http"
    echo "admin tokens: $dir/<node>/admin.token; e.g."
    echo "  tern --node http://127.0.0.1:$http --token \$(cat $dir/cloud-n1/admin.token) nodes"
    ;;
  down)
    shopt -s nullglob
    pids=("$dir"/*.pid)
    [ ${#pids[@]} -eq 0 ] && { echo "cluster.sh: no cluster in $dir"; exit 0; }
    # ternd processes first (they drain), then the leaf nodes, then the hub.
    for f in "$dir"/*-n*.pid "$dir"/*-leaf.pid "$dir"/hub.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$f"
    done
    echo "stopped the cluster in $dir (state kept; rm -r $dir to forget it)"
    ;;
  *)
    echo "usage: cluster.sh up [--sites N] [--nodes-per-site M] [--dir DIR] | down [--dir DIR]" >&2
    exit 2
    ;;
esac
