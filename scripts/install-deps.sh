#!/usr/bin/env bash
# Installs the Debian 12 packages tern needs to build, test and run its examples.
# Safe to run repeatedly; uses sudo when not already root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  # WebAssembly toolchain: wasm2c/wast2json, C and Rust guests
  wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32
  # libraries
  libssl-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libsqlite3-dev
  libboost-dev libyaml-cpp-dev
  # event triggers: MQTT (libmosquitto; the broker and clients for tests and examples), CoAP
  libmosquitto-dev mosquitto mosquitto-clients libcoap3-dev libcoap3-bin
  # the cluster: the NATS server (JetStream; hub, leaf nodes, tests) and the C client
  nats-server libnats-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # clang's sanitizer and libFuzzer runtimes (the asan preset with clang, -DTERN_FUZZ=ON)
  libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
