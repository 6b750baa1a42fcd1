// Fuzz target: the node's HTTP surface behind the parser (src/triggers/http_gateway): the
// bytes of a request go through http::parseRequest and, when they parse, to
// HttpGateway::handle of a real gateway (engine, registry, key-value store, executor,
// invoker, deployments in a temporary data directory; admin token "fuzz-token"). The
// engine's wasm2c is /bin/false, so a deploy runs every check up to compiling and then
// fails at once instead of spending the run in the C compiler. Checked: every request is
// answered exactly once, with a status of 200-599, and JSON answers are JSON.

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "fuzz_check.h"
#include "http/request_rules.h"
#include "store/deployments.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "store/token_store.h"
#include "triggers/http_gateway.h"
#include "triggers/token_auth.h"
#include "util/metrics.h"
#include "util/work_queue.h"
#include "wasm/engine.h"

using namespace tern;

namespace {

struct Node {
  std::filesystem::path dir;
  MetricsRegistry metrics;
  std::unique_ptr<wasm::Engine> engine;
  std::unique_ptr<store::Registry> registry;
  std::unique_ptr<store::KvStore> kv;
  std::unique_ptr<exec::FunctionTable> table;
  std::unique_ptr<exec::Executor> executor;
  std::unique_ptr<WorkQueue> workers;
  std::unique_ptr<exec::Invoker> invoker;
  std::unique_ptr<store::Deployments> deployments;
  std::unique_ptr<WorkQueue> management;
  std::unique_ptr<store::SqliteTokenStore> tokens;
  std::unique_ptr<triggers::TokenAuth> auth;
  std::unique_ptr<triggers::HttpGateway> gateway;
};

Node& node() {
  static Node* n = [] {
    auto* n = new Node;
    spdlog::set_level(spdlog::level::off);  // refusals are logged; the checks are the output
    char dir[] = "/tmp/tern-gateway-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != nullptr);
    n->dir = dir;
    wasm::EngineConfig ec;
    ec.compiler.cacheDir = n->dir / "cache";
    ec.compiler.wasm2c = "/bin/false";
    n->engine = std::make_unique<wasm::Engine>(ec);
    auto registry = store::Registry::open(n->dir);
    FUZZ_CHECK(registry.ok());
    n->registry = std::move(*registry);
    auto kv = store::KvStore::open(n->dir);
    FUZZ_CHECK(kv.ok());
    n->kv = std::move(*kv);
    n->table = std::make_unique<exec::FunctionTable>(n->metrics);
    n->executor = std::make_unique<exec::Executor>(exec::Executor::Options{1, 4});
    n->workers = std::make_unique<WorkQueue>(1);
    exec::HostServices services;
    services.kv = n->kv.get();
    n->invoker = std::make_unique<exec::Invoker>(
        *n->engine, *n->executor, *n->table,
        [n](std::function<void()> task) { n->workers->post(std::move(task)); }, services);
    n->deployments =
        std::make_unique<store::Deployments>(*n->registry, *n->engine, *n->table, n->kv.get());
    n->management = std::make_unique<WorkQueue>();
    auto tokens = store::SqliteTokenStore::open(n->dir / "tokens.db");
    FUZZ_CHECK(tokens.ok());
    n->tokens = std::move(*tokens);
    n->auth = std::make_unique<triggers::TokenAuth>(n->tokens.get(), "fuzz-token",
                                                    triggers::systemTokenClocks());
    triggers::GatewayLimits limits;
    limits.maxInvokeBody = 4096;
    limits.maxModuleBytes = 65536;
    limits.maxManagementBody = 4096;
    n->gateway = std::make_unique<triggers::HttpGateway>(
        triggers::GatewayDeps{*n->invoker, *n->executor, *n->table, *n->registry,
                              *n->deployments, n->metrics, *n->management, *n->auth,
                              "0.0.0-fuzz", [] { return std::string(); }, nullptr,
                              [] { return std::string(); }, [] { return std::string(); },
                              nullptr, n->kv.get(), nullptr, nullptr},
        limits);
    std::atexit([] { std::filesystem::remove_all(node().dir); });
    return n;
  }();
  return *n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Node& n = node();
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = http::parseRequest(
      bytes, 8192, [&n](std::string_view method, std::string_view target) {
        return n.gateway->bodyLimit(method, target);
      });
  auto* req = std::get_if<http::Request>(&parsed);
  if (!req) return 0;
  req->remoteAddress = "127.0.0.1";
  auto answered = std::make_shared<std::atomic<int>>(0);
  std::promise<http::Response> promise;
  auto future = promise.get_future();
  n.gateway->handle(std::move(*req), [answered, &promise](http::Response r) {
    FUZZ_CHECK(answered->fetch_add(1) == 0);  // exactly once
    promise.set_value(std::move(r));
  });
  http::Response r = future.get();
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  if (r.contentType == "application/json") {
    FUZZ_CHECK(!nlohmann::json::parse(r.body, nullptr, false).is_discarded());
  }
  return 0;
}
