// The engine's cost per invocation, made to be counted: runs a fixed number of fresh-sandbox
// invocations of one module on one or more threads, each with the request an HTTP call
// brings (argv, the CGI environment the gateway builds, a body), and checks every answer.
// Under `valgrind --tool=callgrind --collect-bus=yes` the difference between two runs of
// different lengths gives instructions, global bus events (atomic read-modify-writes) and
// mutex acquisitions per invocation, which unlike times do not depend on the machine's
// load (bench/invoke_cost.sh does that). Alone it prints the wall time per invocation.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <latch>
#include <thread>

#include "bench_support.h"
#include "wasm/engine.h"

namespace tern::bench {
namespace {

namespace fs = std::filesystem;

struct Options {
  fs::path module = examplesDir() / "hello.wasm";
  size_t invocations = 10000;  // per thread
  size_t threads = 1;
  std::string body;
  std::string expect;  // the stdout every invocation must give, without its last newline
                       // (empty: not checked)
};

// The environment HttpGateway builds for `GET /fn/NAME` from wrk (one Host header), with
// the two variables the invoker adds.
std::vector<std::string> httpEnvironment(const std::string& name, size_t bodyBytes) {
  return {"REQUEST_METHOD=GET",
          "SCRIPT_NAME=/fn/" + name,
          "PATH_INFO=",
          "QUERY_STRING=",
          "SERVER_PROTOCOL=HTTP/1.1",
          "REMOTE_ADDR=127.0.0.1",
          "CONTENT_LENGTH=" + std::to_string(bodyBytes),
          "HTTP_HOST=127.0.0.1:18480",
          "TERN_INVOCATION_ID=5f1e0c2a000000000001",
          "TERN_FUNCTION_VERSION=1"};
}

int run(const Options& o) {
  ScratchDir cache("tern-bench-invoke-cost");
  wasm::EngineConfig config;
  config.compiler.cacheDir = cache.path();
  wasm::Engine engine(config);
  auto module = orDie(engine.loadFile(o.module), o.module.string());
  std::string name = o.module.stem().string();

  wasm::InvocationRequest request;
  request.args = {name};
  request.env = Environment(httpEnvironment(name, o.body.size()));
  request.input = o.body;

  std::latch go(1);
  std::vector<std::thread> threads;
  std::vector<size_t> failures(o.threads, 0);
  std::string firstOutput;
  for (size_t t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      go.wait();
      for (size_t i = 0; i < o.invocations; ++i) {
        wasm::InvocationResult r = engine.invoke(module, request);
        std::string_view out = r.stdoutData;
        if (out.ends_with('\n')) out.remove_suffix(1);
        bool ok = r.outcome == wasm::Outcome::kOk && (o.expect.empty() || out == o.expect);
        if (!ok && failures[t]++ == 0 && t == 0) {
          firstOutput = fmt::format("{} \"{}\" {}", wasm::outcomeName(r.outcome), r.stdoutData,
                                    r.detail);
        }
      }
    });
  }
  int64_t start = nowNs();
  go.count_down();
  for (auto& th : threads) th.join();
  int64_t wall = nowNs() - start;
  size_t failed = 0;
  for (size_t f : failures) failed += f;
  size_t total = o.invocations * o.threads;
  std::cout << fmt::format("{}: {} invocations on {} thread(s), {} failed; {} µs wall per invocation\n",
                           o.module.filename().string(), total, o.threads, failed,
                           micros(wall * static_cast<int64_t>(o.threads) /
                                  static_cast<int64_t>(std::max<size_t>(total, 1))));
  if (failed) {
    std::cerr << "first failure: " << firstOutput << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Fresh-sandbox invocations of one module, counted (see bench/invoke_cost.sh)"};
  app.add_option("--module", o.module, "the module (default: hello.wasm)");
  app.add_option("--invocations", o.invocations, "invocations per thread");
  app.add_option("--threads", o.threads, "threads invoking at once")
      ->check(CLI::Range(size_t{1}, size_t{64}));
  app.add_option("--body", o.body, "the request body (stdin)");
  app.add_option("--expect", o.expect,
                 "the stdout every invocation must give, without its last newline");
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
