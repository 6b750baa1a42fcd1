#!/usr/bin/env bash
# Smoke tests of a cross-built tern (docs/arm64.md), run by CTest in the aarch64 tree:
#
#   smoke.sh start          start the aarch64 ternd under emulation, deploy hello and echo
#   smoke.sh http           call both over HTTP
#   smoke.sh device-edge    tern device call --policy edge: offloaded to the node
#   smoke.sh device-local   tern device call --policy local: run on the device itself
#   smoke.sh device-c-api   the same two through tern/device.h (tern_device_smoke)
#   smoke.sh stop           SIGTERM the node and check that it drained and exited 0
#   smoke.sh package        the build's .deb: its architecture, and its programs run
#
# The environment (tests/arm64/CMakeLists.txt) names the emulator (TERN_SMOKE_EMULATOR,
# "qemu-aarch64 -L /" in the aarch64 build, empty in a native one), the target (TERN_SMOKE_ARCH), the cross
# C compiler the node builds its objects with (TERN_SMOKE_CC), the built programs
# (TERN_SMOKE_BIN), the example modules (TERN_SMOKE_FUNCTIONS) and a scratch directory
# (TERN_SMOKE_WORK) that the node shares with the checks. Every wait polls observable state
# against a deadline; qemu is slow, so deadlines are generous.
set -euo pipefail

step="${1:?usage: smoke.sh start|http|device-edge|device-local|device-c-api|stop|package}"
read -r -a emulator <<<"${TERN_SMOKE_EMULATOR-}"  # empty in a native build
arch="${TERN_SMOKE_ARCH:?}"
cc="${TERN_SMOKE_CC:?}"
bin="${TERN_SMOKE_BIN:?}"
fns="${TERN_SMOKE_FUNCTIONS:?}"
work="${TERN_SMOKE_WORK:?}"
data="$work/node-data"
log="$work/ternd.log"
export TERN_CACHE_DIR="$work/cache"

say() { echo "smoke[$step]: $*"; }

# Prints why the step failed and the end of the node's log, then exits 1.
fail() {
  echo "smoke[$step]: FAILED: $*" >&2
  if [ -f "$log" ]; then
    echo "---- last 60 lines of $log ----" >&2
    tail -n 60 "$log" >&2
    echo "----" >&2
  fi
  exit 1
}

# Runs a program built for the target, under the emulator in a cross build.
target() { "${emulator[@]}" "$@"; }

node_url() {
  [ -s "$work/port" ] || fail "no node: the arm64_node_start step did not finish"
  echo "http://127.0.0.1:$(cat "$work/port")"
}

ternd_pid() { cat "$work/ternd.pid" 2>/dev/null || true; }

# now + N seconds, and whether that moment has passed
deadline() { echo $((SECONDS + $1)); }
past() { [ "$SECONDS" -ge "$1" ]; }

# The machine an ELF executable is for (e_machine, bytes 18-19, little-endian).
elf_machine() {
  local m
  m=$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')
  case "$m" in
    b700) echo aarch64 ;;
    3e00) echo x86_64 ;;
    *) echo "unknown($m)" ;;
  esac
}

# Checks a device call's --json lines: COUNT call lines, each ok and run at WHERE.
check_device_lines() {
  local out="$1" where="$2" count="$3" calls good
  calls=$(grep -c '"seq":' <<<"$out" || true)
  good=$(grep '"seq":' <<<"$out" | grep '"ok":true' | grep -c "\"where\":\"$where\"" || true)
  [ "$calls" -eq "$count" ] && [ "$good" -eq "$count" ] ||
    fail "expected $count calls with \"where\":\"$where\" and \"ok\":true, got:"$'\n'"$out"
}

# A device that ran a call itself holds the object it ran: one for its own machine.
check_device_objects() {
  local state="$1" o n=0
  for o in "$state"/objects/*; do
    [ -f "$o" ] || continue
    n=$((n + 1))
    [ "$(elf_machine "$o")" = "$arch" ] || fail "$o is an object for $(elf_machine "$o"), not $arch"
  done
  [ "$n" -gt 0 ] || fail "the device ran a call locally but $state/objects holds no object"
}

device_call() {
  local policy="$1" node out rc=0
  node=$(node_url)
  local state="$work/device-$policy"
  rm -rf "$state"
  out=$(TERN_TOKEN="$(cat "$data/admin.token")" target "$bin/tern" device call echo \
          --edge "$node" --policy "$policy" --count 2 --data "from an $arch device" \
          --timeout-ms 60000 --state-dir "$state" --json 2>&1) || rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] || fail "tern device call --policy $policy exited $rc"
  check_device_lines "$out" "$policy" 2
  if [ "$policy" = local ]; then check_device_objects "$state"; fi
  say "2 calls ran at $policy, ok"
}

case "$step" in
start)
  # A node left over from an interrupted run is stopped first.
  if old=$(ternd_pid) && [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then kill -TERM "$old" || true; fi
  rm -rf "$work"
  mkdir -p "$work"
  for p in ternd tern tern_device_smoke; do
    [ -x "$bin/$p" ] || fail "$bin/$p is not built (cmake --build --preset aarch64)"
    m=$(elf_machine "$bin/$p")
    [ "$m" = "$arch" ] || fail "$bin/$p is an executable for $m, not $arch"
  done
  for f in hello echo; do [ -s "$fns/$f.wasm" ] || fail "$fns/$f.wasm is not built"; done
  if [ ${#emulator[@]} -gt 0 ]; then
    command -v "${emulator[0]}" >/dev/null || fail "${emulator[0]} is not installed (scripts/install-deps.sh)"
  fi
  command -v "$cc" >/dev/null || fail "$cc is not installed (scripts/install-deps.sh)"

  # ternd runs in its own session with every descriptor redirected, so this step can end
  # while the node serves the next ones; `timeout` bounds its life if no stop step comes.
  setsid bash -c '"$@" </dev/null >>"$0" 2>&1 & echo $! >"${0%/*}/ternd.pid"; wait $!; echo $? >"${0%/*}/ternd.status"' \
    "$log" timeout -k 10 3600 "${emulator[@]}" "$bin/ternd" --listen 127.0.0.1:0 --coap-listen off \
    --data "$data" --cc "$cc" --disk-reserve-mb 0 --workers 2 </dev/null >/dev/null 2>&1 &
  until_t=$(deadline 180)
  port=""
  while [ -z "$port" ]; do
    port=$(grep -oE 'serving on http://127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    [ -f "$work/ternd.status" ] && fail "ternd exited (status $(cat "$work/ternd.status")) before serving"
    past "$until_t" && fail "ternd did not report its port within 180 s"
    sleep 0.2
  done
  node="http://127.0.0.1:$port"
  until_t=$(deadline 60)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$node/healthz")" = 200 ]; do
    past "$until_t" && fail "$node/healthz did not answer 200 within 60 s"
    sleep 0.2
  done
  echo "$port" >"$work/port"
  say "ternd ($arch, pid $(ternd_pid)) serving on $node"

  # The first deploy compiles with the cross compiler; the CLI waits for the node's answer.
  # Under emulation a function's first run is slow (qemu translates its code as it goes:
  # seconds, and more on a busy machine), and a device applies the function's own timeout
  # to its local runs: the functions get 5 minutes, not the default 10 s.
  export TERN_NODE="$node" TERN_TOKEN="$(cat "$data/admin.token")"
  for f in hello echo; do
    started=$SECONDS
    target "$bin/tern" deploy "$f" "$fns/$f.wasm" --timeout-ms 300000 || fail "tern deploy $f failed"
    say "deployed $f in $((SECONDS - started)) s"
  done
  ;;

http)
  node=$(node_url)
  answer=$(curl -sS --max-time 60 "$node/fn/hello") || fail "GET /fn/hello failed"
  [ "$answer" = "Hello from tern!" ] || fail "GET /fn/hello answered \"$answer\""
  answer=$(curl -sS --max-time 60 --data-binary "echo on $arch" "$node/fn/echo") ||
    fail "POST /fn/echo failed"
  [ "$answer" = "echo on $arch" ] || fail "POST /fn/echo answered \"$answer\""
  answer=$(TERN_NODE="$node" target "$bin/tern" invoke echo --data "invoked on $arch") ||
    fail "tern invoke echo failed"
  [ "$answer" = "invoked on $arch" ] || fail "tern invoke echo printed \"$answer\""
  say "hello and echo answered over HTTP and through tern invoke"
  ;;

device-edge)
  device_call edge
  ;;

device-local)
  device_call local
  ;;

device-c-api)
  node=$(node_url)
  token="$(cat "$data/admin.token")"
  for policy in edge local; do
    rc=0
    out=$(target "$bin/tern_device_smoke" "$work/c-api-$policy" "$node" "$token" echo \
            "through tern/device.h" "$policy" 2>&1) || rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || fail "tern_device_smoke ($policy) exited $rc"
    [ "$out" = "where=$policy fallback=0 output=through tern/device.h" ] ||
      fail "tern_device_smoke ($policy) printed \"$out\""
  done
  check_device_objects "$work/c-api-local"
  say "a C program ran echo at the edge and on the device"
  ;;

stop)
  pid=$(ternd_pid)
  [ -n "$pid" ] || { say "no node was started"; exit 0; }
  kill -TERM "$pid" 2>/dev/null || true
  until_t=$(deadline 120)
  until [ -f "$work/ternd.status" ]; do
    past "$until_t" && { kill -KILL "$pid" 2>/dev/null || true; fail "ternd did not exit within 120 s of SIGTERM"; }
    sleep 0.2
  done
  status=$(cat "$work/ternd.status")
  [ "$status" = 0 ] || fail "ternd exited with status $status after SIGTERM"
  say "ternd drained and exited 0"
  ;;

package)
  # The .deb of this build (cmake/packaging.cmake, docs/packages.md): made by cpack, for
  # the target's architecture, and its programs run.
  build="${TERN_SMOKE_BUILD:?}"
  # Beside the node's directory, not in it: ctest runs this step alongside the node's
  # start, which empties that directory.
  pkg="$work-package"
  rm -rf "$pkg"; mkdir -p "$pkg"
  (cd "$build" && cpack -G DEB -B "$pkg/out") > "$pkg/cpack.log" 2>&1 ||
    { cat "$pkg/cpack.log" >&2; fail "cpack"; }
  deb=$(ls "$pkg"/out/tern_*.deb)
  want=$([ "$arch" = aarch64 ] && echo arm64 || dpkg --print-architecture)
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$want" ] ||
    fail "$(basename "$deb") is for $(dpkg-deb -f "$deb" Architecture), not $want"
  dpkg-deb -x "$deb" "$pkg/root"
  for p in ternd tern; do
    [ "$(elf_machine "$pkg/root/usr/bin/$p")" = "$arch" ] ||
      fail "the packaged $p is for $(elf_machine "$pkg/root/usr/bin/$p")"
    v=$(target "$pkg/root/usr/bin/$p" --version) || fail "the packaged $p --version"
    [[ "$v" == "$p "* ]] || fail "the packaged $p --version said '$v'"
  done
  [ -f "$pkg/root/usr/lib/systemd/system/ternd.service" ] || fail "no systemd unit in the package"
  say "$(basename "$deb"): $want, $(dpkg-deb -f "$deb" Installed-Size) KiB, ternd and tern run: $v"
  ;;

*)
  echo "usage: smoke.sh start|http|device-edge|device-local|device-c-api|stop|package" >&2
  exit 64
  ;;
esac
