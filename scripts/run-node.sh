#!/usr/bin/env bash
# Starts a standalone tern node with the example functions deployed, prints how to call
# them, and keeps serving until Ctrl-C (which drains the node and stops it).
#
#   scripts/run-node.sh [--listen ADDR:PORT] [--data DIR]
#
# Defaults: 127.0.0.1:8080 and build/release/node-data (kept between runs, so deployed
# functions survive a restart).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release/bin"
fns="$root/build/release/examples/functions"
listen="127.0.0.1:8080"
data="${TERN_DATA:-$root/build/release/node-data}"
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) listen="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    *) echo "usage: $0 [--listen ADDR:PORT] [--data DIR]" >&2; exit 64 ;;
  esac
done
[ -x "$bin/ternd" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }

node="http://$listen"
export TERN_NODE="$node" TERN_DATA="$data"
"$bin/ternd" --listen "$listen" --data "$data" &
ternd_pid=$!
trap 'kill -TERM $ternd_pid 2>/dev/null; wait $ternd_pid' INT TERM

for _ in $(seq 1 100); do
  "$bin/tern" status >/dev/null 2>&1 && break
  kill -0 $ternd_pid 2>/dev/null || { echo "ternd did not start" >&2; exit 1; }
  sleep 0.1
done

# Deploy each example once; a restarted node already serves them from its data directory.
deploy() {
  "$bin/tern" info "$1" >/dev/null 2>&1 || "$bin/tern" deploy "$@"
}
deploy hello "$fns/hello.wasm"
deploy echo "$fns/echo.wasm"
deploy hello-rust "$fns/hello_rust.wasm"
deploy kernels "$fns/kernels.wasm" --env KERNEL=fib --timeout-ms 30000
# The Caesar cipher workflow (examples/caesar): its three functions and the AFCL file.
for f in split shift assemble; do deploy "$f" "$fns/$f.wasm"; done
"$bin/tern" workflow deploy caesar "$root/examples/caesar/caesar.yaml" >/dev/null

cat <<EOF2

tern node serving on $node (data in $data). Try:

  curl $node/fn/hello
  curl --data-binary 'any bytes' $node/fn/echo
  curl -X POST --data 'hi' $node/fn/hello-rust/some/path?x=1
  curl $node/metrics | grep tern_invocations_total

  export TERN_NODE=$node TERN_DATA=$data
  $bin/tern ls
  $bin/tern invoke echo --data 'hello'
  $bin/tern info hello
  $bin/tern logs kernels
  $bin/tern deploy my-fn path/to/module.wasm
  $bin/tern workflow run caesar --input $root/examples/caesar/input.json
  $bin/tern new my-fn --lang c && cd my-fn && make test && $bin/tern up

The web console: $node/ui (log in with the admin token in $data/admin.token, or one
made with: $bin/tern token create console --scope read).

Ctrl-C stops the node (it drains invocations in flight first).
EOF2
wait $ternd_pid
