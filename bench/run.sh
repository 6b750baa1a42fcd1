#!/usr/bin/env bash
# Runs every tern benchmark and prints a markdown report on stdout (progress on stderr).
#
#   bench/run.sh [--quick] [BUILD_DIR]
#
# BUILD_DIR defaults to build/release; build it first with
#   cmake --preset release && cmake --build --preset release
# --quick runs each benchmark with far fewer samples: a smoke test of the harness, not
# figures to publish. The full run takes about five minutes on two cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
if [[ ${1:-} == --quick ]]; then
  quick=1
  shift
fi
build=${1:-$root/build/release}
bin=$build/bin

for exe in tern_bench_startup tern_bench_kernels tern_bench_memory tern_bench_compile \
           hello_native hello_native_static kernels_native; do
  if [[ ! -x $bin/$exe ]]; then
    echo "run.sh: $bin/$exe is missing; build with cmake --build --preset release" >&2
    exit 1
  fi
done

if ((quick)); then
  startup_args=(--warmup 1000 --samples 10000 --spawn-samples 100 --per-thread 10000
                --spawn-per-thread 100 --rounds 1)
  kernels_args=(--rounds 1 --reps 2)
  memory_args=(--sequential 20000 --sample-every 5000 --alive 1000)
  compile_args=(--repeats 1 --generated 100 --generated 1000)
else
  startup_args=(--warmup 20000 --samples 200000 --spawn-samples 2000 --per-thread 200000
                --spawn-per-thread 500 --rounds 5)
  kernels_args=(--rounds 7 --reps 5)
  memory_args=(--sequential 100000 --sample-every 10000 --alive 1000)
  compile_args=(--repeats 3 --generated 100 --generated 1000 --generated 4000
                --generated 16000)
fi

first_line() { "$@" 2>&1 | head -n 1 || true; }
# A tool the build configured, from its CMake cache.
cached_tool() { sed -n "s/^$1:FILEPATH=//p" "$build/CMakeCache.txt"; }

# Runs one benchmark: shows the command (relative to the repository root) and the load
# average before it, since other work on a shared machine shifts absolute times.
section() {
  local exe=$1
  shift
  echo "\`\`\`sh"
  echo "${bin#"$root"/}/$exe $*"
  echo "\`\`\`"
  echo
  echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  "$bin/$exe" "$@"
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]]; then
  commit="$commit (with local changes)"
fi

virt=$(systemd-detect-virt 2>/dev/null || true)
hypervisor=$( (dmesg 2>/dev/null || true) | sed -n 's/.*Hypervisor detected: //p' | head -n 1)

echo "# tern benchmark report"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, build \`${build#"$root"/}\`."
if ((quick)); then
  echo
  echo "**Quick run: too few samples for figures worth quoting.**"
fi
echo
echo "## Machine"
echo
echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs" \
     "($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
echo "- Memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "- Kernel: $(uname -sr); virtualisation: ${virt:-unknown}" \
     "${hypervisor:+(hypervisor $hypervisor)}"
echo "- C compiler (compiles wasm2c output; builds kernels_native and hello_native):" \
     "$(first_line cc --version)"
echo "- C++ compiler (builds tern): $(first_line "$(cached_tool CMAKE_CXX_COMPILER)" --version)"
echo "- wasm2c: $(first_line wasm2c --version)"
echo "- clang (builds the C guests and kernels_native_clang):" \
     "$(first_line "$(cached_tool TERN_WASM_CLANG)" --version)"
echo "- rustc (builds hello_rust.wasm): $(first_line "$(cached_tool TERN_RUSTC)" --version)"
echo

section tern_bench_startup "${startup_args[@]}"
section tern_bench_kernels "${kernels_args[@]}"
section tern_bench_memory "${memory_args[@]}"
section tern_bench_compile "${compile_args[@]}"
