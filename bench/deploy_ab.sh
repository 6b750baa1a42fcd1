#!/usr/bin/env bash
# Deploy to first response at the baseline tier, two ternd builds side by side: both nodes
# run at once and take turns, deploy by deploy, so that both see the same machine. Each
# deploy is of a module made unique (a custom section of random bytes), so nothing is found
# in a compile cache. Prints, per module and build, the medians of the PUT, of the first
# GET and of their sum (curl's timing, ms), then every sum.
#
#   bench/deploy_ab.sh BEFORE_BIN_DIR AFTER_BIN_DIR [N]      (N deploys of each; default 7)
#   TERN_BENCH_BUILD=DIR takes the modules from DIR instead of build/release.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
before="$1"; after="$2"; n="${3:-7}"
examples="${TERN_BENCH_BUILD:-$root/build/release}/examples/functions"
work="$(mktemp -d /tmp/tern-deploy-ab.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$before/ternd" --listen 127.0.0.1:18611 --data "$work/before" 2>"$work/before.log" & pids+=($!)
"$after/ternd" --listen 127.0.0.1:18612 --data "$work/after" 2>"$work/after.log" & pids+=($!)
nodes="before:18611 after:18612"
for node in $nodes; do
  for _ in $(seq 1 100); do
    [ -f "$work/${node%%:*}/admin.token" ] && curl -sf "http://127.0.0.1:${node##*:}/healthz" >/dev/null && break
    sleep 0.1
  done
done
ms() { awk '{ printf "%.1f", $1 * 1000 }'; }
for m in report hello_rust; do
  for i in $(seq 1 "$n"); do
    for node in $nodes; do
      name="${node%%:*}"; port="${node##*:}"; token="$(cat "$work/$name/admin.token")"
      cp "$examples/$m.wasm" "$work/m.wasm"
      { printf '\000\015\004uniq'; head -c 8 /dev/urandom; } >> "$work/m.wasm"
      fn="f${m//_/-}$i"
      put=$(curl -sf -o /dev/null -w '%{time_total}' -X PUT -H "Authorization: Bearer $token" \
        --data-binary @"$work/m.wasm" "http://127.0.0.1:$port/v1/functions/$fn?compile_tier=baseline" | ms)
      get=$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/fn/$fn" | ms)
      echo "$name $m $put $get"
    done
  done
done > "$work/times"
echo "| module | build | PUT ms | first response ms | total ms | every total |"
echo "|---|---|---|---|---|---|"
awk '{ k = $2 " | " $1; put[k] = put[k] " " $3; get[k] = get[k] " " $4; tot[k] = tot[k] " " ($3 + $4) }
     END { for (k in tot) print k "\t" put[k] "\t" get[k] "\t" tot[k] }' "$work/times" | sort |
  while IFS=$'\t' read -r k p g t; do
    med() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    echo "| $k | $(echo "$p" | med) | $(echo "$g" | med) | $(echo "$t" | med) |$t |"
  done
