// Ahead-of-time compile time per module size: each module is compiled with a fresh cache
// directory (wasm2c, then the C compiler at the default -O2, then dlopen), then loaded again
// from the cache by a new engine. Besides the example functions, modules of N functions are
// generated (WebAssembly text written here, assembled by wat2wasm) to show how compile time
// grows with size.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench_support.h"
#include "util/subprocess.h"
#include "wasm/engine.h"

namespace tern::bench {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::vector<fs::path> modules = {examplesDir() / "hello.wasm", examplesDir() / "echo.wasm",
                                   examplesDir() / "hello_rust.wasm",
                                   examplesDir() / "kernels.wasm"};
  std::vector<uint32_t> generated = {100, 1000, 4000, 16000};
  uint32_t repeats = 3;
  // Modules whose first compile takes longer than this are compiled once.
  double repeatBelowSeconds = 10;
  std::string wat2wasm = "wat2wasm";
  std::string wasm2c = "wasm2c";
};

// One function of a generated module, shaped like a small compiled C function: a loop that
// reads and writes linear memory and mixes integers, then (when n is not zero) calls to two
// earlier functions. Every function is reachable from _start and has several callers, and
// n comes from linear memory, so the C compiler can neither drop nor fold any of them.
void writeFunction(std::ostream& wat, uint32_t k) {
  uint32_t offset = (k % 1024) * 4;
  wat << fmt::format("(func $f{} (param $a i32) (param $n i32) (result i32)\n", k)
      << "  (local $i i32) (local $acc i32) (local $p i32)\n"
      << fmt::format("  (local.set $acc (i32.xor (local.get $a) (i32.const {})))\n",
                     (k * 2654435761u) & 0xffffu)
      << "  (block $done\n    (loop $next\n"
      << "      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
      << "      (local.set $p (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const "
         "0xfffc)))\n"
      << fmt::format(
             "      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const {}))\n"
             "        (i32.load offset={} (local.get $p))))\n",
             31 + 2 * (k % 64), offset)
      << fmt::format(
             "      (if (i32.and (local.get $acc) (i32.const {}))\n"
             "        (then (local.set $acc (i32.rotl (local.get $acc) (i32.const {}))))\n"
             "        (else (local.set $acc (i32.sub (local.get $acc) (local.get $i)))))\n",
             1u << (k % 8), 1 + k % 31)
      << fmt::format("      (i32.store offset={} (local.get $p) (local.get $acc))\n", offset)
      << "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
      << "      (br $next)))\n";
  if (k == 0) {
    wat << "  (local.get $acc))\n";
    return;
  }
  wat << "  (if (result i32) (i32.eqz (local.get $n))\n"
      << "    (then (local.get $acc))\n"
      << fmt::format(
             "    (else (i32.add\n"
             "      (call $f{} (local.get $acc) (i32.shr_u (local.get $n) (i32.const 1)))\n"
             "      (call $f{} (i32.xor (local.get $acc) (i32.const {}))\n"
             "                 (i32.shr_u (local.get $n) (i32.const 2)))))))\n",
             k - 1, k / 2, k);
}

// A WASI command with `functions` functions besides _start; n for the first call is read
// from linear memory.
std::string generateWat(uint32_t functions) {
  std::ostringstream wat;
  wat << "(module\n  (memory (export \"memory\") 1)\n";
  for (uint32_t k = 0; k < functions; ++k) writeFunction(wat, k);
  wat << fmt::format(
      "  (func (export \"_start\")\n"
      "    (i32.store (i32.const 0) (call $f{} (i32.const 1) (i32.load (i32.const 4))))))\n",
      functions - 1);
  return wat.str();
}

// Runs a tool to completion; dies unless it succeeds.
void runTool(const std::vector<std::string>& argv) {
  SubprocessResult r = orDie(runSubprocess(argv), argv[0]);
  if (r.exitStatus != 0) die(argv[0], r.output);
}

struct ModuleFigures {
  std::string name;
  uint64_t wasmBytes = 0;
  size_t functions = 0;
  uint64_t cBytes = 0;
  uint64_t objectBytes = 0;
  double wasm2cSeconds = 0;   // wasm2c alone, run here
  double compileSeconds = 0;  // Engine::loadFile with an empty cache, median of runs
  size_t runs = 0;
  // Engine::loadFile finding the object in the cache: a new engine's first load, which
  // also identifies the toolchain, and a later load by the same engine.
  double cachedNewEngineMs = 0;
  double cachedSameEngineMs = 0;
};

double secondsSince(int64_t startNs) { return static_cast<double>(nowNs() - startNs) / 1e9; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

ModuleFigures measure(const Options& o, const std::string& name, const fs::path& path) {
  ModuleFigures f;
  f.name = name;
  f.wasmBytes = fs::file_size(path);

  ScratchDir c("tern-bench-wasm2c");
  int64_t start = nowNs();
  runTool({o.wasm2c, "-n", "m", path.string(), "-o", (c.path() / "m.c").string()});
  f.wasm2cSeconds = secondsSince(start);
  f.cBytes = fs::file_size(c.path() / "m.c") + fs::file_size(c.path() / "m.h");

  std::vector<double> compiles;
  for (uint32_t run = 0; run < o.repeats; ++run) {
    ScratchDir cache("tern-bench-compile");
    wasm::EngineConfig config;
    config.compiler.cacheDir = cache.path();
    {
      wasm::Engine engine(config);
      start = nowNs();
      auto module = orDie(engine.loadFile(path), path.string());
      compiles.push_back(secondsSince(start));
      f.functions = module->info().functionTypes.size();
      for (const auto& im : module->info().imports)
        f.functions -= im.kind == wasm::ExternKind::kFunc;
      f.objectBytes = fs::file_size(module->objectPath());
    }
    {
      wasm::Engine engine(config);
      start = nowNs();
      auto module = orDie(engine.loadFile(path), path.string());
      f.cachedNewEngineMs = secondsSince(start) * 1e3;
      module.reset();  // unloads it: the next load opens the object again
      start = nowNs();
      orDie(engine.loadFile(path), path.string());
      f.cachedSameEngineMs = secondsSince(start) * 1e3;
    }
    if (compiles.back() > o.repeatBelowSeconds) break;
  }
  f.compileSeconds = median(compiles);
  f.runs = compiles.size();
  return f;
}

int run(const Options& o) {
  std::vector<ModuleFigures> figures;
  for (const auto& m : o.modules) {
    std::cerr << "compile: " << m.string() << "\n";
    figures.push_back(measure(o, m.filename().string(), m));
  }
  ScratchDir gen("tern-bench-generated");
  for (uint32_t n : o.generated) {
    std::string name = fmt::format("generated_{}.wasm", n);
    std::cerr << "compile: " << name << "\n";
    fs::path wat = gen.path() / fmt::format("generated_{}.wat", n);
    std::ofstream(wat) << generateWat(n);
    runTool({o.wat2wasm, wat.string(), "-o", (gen.path() / name).string()});
    figures.push_back(measure(o, name, gen.path() / name));
  }

  std::cout << "## Compile time per module size\n\n"
            << "Each module is compiled by `Engine::loadFile` with an empty cache directory "
               "(validate, wasm2c, cc -O2, dlopen): the median of up to "
            << o.repeats << " runs (one when it takes over " << o.repeatBelowSeconds
            << " s). \"wasm2c\" is wasm2c alone on the same module, \"C bytes\" its output "
               "(.c + .h). \"Cached\" loads find the object in the cache: the "
               "first load by a new engine, and a later load by the same engine. "
               "`generated_N` modules have N functions of a loop with memory accesses and a "
               "call (bench/compile_bench.cpp).\n\n"
            << "| module | wasm bytes | functions | C bytes | .so bytes | wasm2c s | compile s | "
               "runs | µs per wasm byte | cached, new engine ms | cached, same engine ms |\n"
            << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& f : figures) {
    std::cout << fmt::format(
        "| {} | {} | {} | {} | {} | {:.3f} | {:.2f} | {} | {:.1f} | {:.2f} | {:.2f} |\n", f.name,
        f.wasmBytes, f.functions, f.cBytes, f.objectBytes, f.wasm2cSeconds, f.compileSeconds,
        f.runs, f.compileSeconds * 1e6 / static_cast<double>(f.wasmBytes), f.cachedNewEngineMs,
        f.cachedSameEngineMs);
  }
  std::cout << "\n";
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Ahead-of-time compile time per module size"};
  app.add_option("--module", o.modules, "modules to compile (repeatable; default: examples)");
  app.add_option("--generated", o.generated, "sizes, in functions, of generated modules");
  app.add_option("--repeats", o.repeats, "compiles per module")->check(CLI::Range(1u, 100u));
  app.add_option("--wat2wasm", o.wat2wasm, "wat2wasm program");
  app.add_option("--wasm2c", o.wasm2c, "wasm2c program");
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
