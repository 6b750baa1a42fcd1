#!/usr/bin/env bash
# Installs the Debian 12 packages tern needs to build, test and run its examples.
# Safe to run repeatedly; uses sudo when not already root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  # WebAssembly toolchain: wasm2c/wast2json, C and Rust guests
  wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32
  # C++ guests (tern new --lang cpp): libc++ for wasm32-wasi
  libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
  # the baseline compiler tier (docs/design/tiers.md): TinyCC builds wasm2c's output in tens
  # of milliseconds. Debian builds it for amd64 and arm64 alike; a node on either machine
  # uses its own (the aarch64 cross build and devices take their objects from a node's
  # optimized tier, which needs no tcc on the device).
  tcc
  # libraries
  libssl-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libsqlite3-dev
  libboost-dev libyaml-cpp-dev libhttp-parser-dev
  # ternd's allocator (TERN_MALLOC, docs/design/serving.md)
  libmimalloc-dev
  # the openssl command: TLS tests make their certificates with it
  openssl
  # event triggers: MQTT (libmosquitto; the broker and clients for tests and examples), CoAP
  libmosquitto-dev mosquitto mosquitto-clients libcoap3-dev libcoap3-bin
  # the cluster: the NATS server (JetStream; hub, leaf nodes, tests) and the C client
  nats-server libnats-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # clang's sanitizer and libFuzzer runtimes (the asan preset with clang, -DTERN_FUZZ=ON)
  libclang-rt-14-dev
  # benchmarks: wrk and nginx (bench/http_bench.sh), valgrind (bench/invoke_cost.sh counts
  # instructions, atomic operations and locks with callgrind)
  wrk nginx-light valgrind
  # the package test (tests/package): a network namespace's loopback is brought up with ip
  iproute2
  # the console's browser test (tests/console): headless Chromium driven over the DevTools
  # protocol
  chromium
)

# Cross-building for 64-bit ARM (the aarch64 preset, docs/arm64.md): Debian's cross
# toolchain, qemu-user to run the result here, and the arm64 builds of the libraries tern
# and ternd link (multiarch, beside the amd64 ones). Boost, nlohmann-json and CLI11 are
# headers only, shared with the native build. libyaml-cpp-dev and libhttp-parser-dev cannot
# be installed for two architectures at once: the cross build takes the arm64 libraries and
# the amd64 headers.
# TERN_DEPS_ARM64=0 leaves all this out.
arm64=()
if [ "${TERN_DEPS_ARM64:-1}" != 0 ]; then
  arm64=(
    crossbuild-essential-arm64 qemu-user
    libc6:arm64 libstdc++6:arm64 libssl-dev:arm64 libfmt-dev:arm64 libspdlog-dev:arm64
    libsqlite3-dev:arm64 libyaml-cpp0.7:arm64 libmosquitto-dev:arm64 libcoap3-dev:arm64
    libnats-dev:arm64 libhttp-parser2.9:arm64 libmimalloc-dev:arm64
  )
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#arm64[@]} -gt 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: adding the arm64 architecture"
  $sudo dpkg --add-architecture arm64
fi

# AssemblyScript guests (tern new --lang assemblyscript) build with npm. A machine with its
# own Node.js and npm keeps them; Debian's npm (which brings nodejs) only when there is none.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}" "${arm64[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all $((${#packages[@]} + ${#arm64[@]})) packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# One transaction for both architectures: the arm64 libraries must have the same versions
# as their amd64 twins, which apt upgrades alongside when needed.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
