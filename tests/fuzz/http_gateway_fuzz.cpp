// Fuzz target: the node's HTTP surface behind the parser (src/triggers/http_gateway): the
// bytes of a request go through http::parseRequest and, when they parse, to
// HttpGateway::handle of a real gateway (the invocation path of node_core.h, registry,
// key-value store, deployments in a temporary data directory; admin token "fuzz-token").
// The engine's wasm2c is /bin/false (fuzz::Compiling::kRefused), so a deploy runs every
// check up to compiling and then fails at once. Checked: every request is
// answered exactly once, with a status of 200-599, and JSON answers are JSON.

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "http/request_rules.h"
#include "node_core.h"
#include "store/deployments.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "store/token_store.h"
#include "triggers/http_gateway.h"
#include "triggers/token_auth.h"
#include "util/work_queue.h"

using namespace tern;

namespace {

// The node parts behind the gateway, beyond the invocation path (node_core.h).
struct Node {
  std::unique_ptr<store::KvStore> kv;
  std::unique_ptr<fuzz::NodeCore> core;
  std::unique_ptr<store::Registry> registry;
  std::unique_ptr<store::Deployments> deployments;
  std::unique_ptr<WorkQueue> management;
  std::unique_ptr<store::SqliteTokenStore> tokens;
  std::unique_ptr<triggers::TokenAuth> auth;
  std::unique_ptr<triggers::HttpGateway> gateway;
};

Node& node() {
  static Node* n = [] {
    auto* n = new Node;
    const std::filesystem::path dir = fuzz::temporaryDirectory("gateway");
    auto kv = store::KvStore::open(dir);
    FUZZ_CHECK(kv.ok());
    n->kv = std::move(*kv);
    exec::HostServices services;
    services.kv = n->kv.get();
    n->core = std::make_unique<fuzz::NodeCore>(dir, fuzz::Compiling::kRefused, services);
    fuzz::NodeCore& c = *n->core;
    auto registry = store::Registry::open(dir);
    FUZZ_CHECK(registry.ok());
    n->registry = std::move(*registry);
    n->deployments =
        std::make_unique<store::Deployments>(*n->registry, *c.engine, *c.table, n->kv.get());
    n->management = std::make_unique<WorkQueue>();
    auto tokens = store::SqliteTokenStore::open(dir / "tokens.db");
    FUZZ_CHECK(tokens.ok());
    n->tokens = std::move(*tokens);
    n->auth = std::make_unique<triggers::TokenAuth>(n->tokens.get(), "fuzz-token",
                                                    triggers::systemTokenClocks());
    triggers::GatewayLimits limits;
    limits.maxInvokeBody = 4096;
    limits.maxModuleBytes = 65536;
    limits.maxManagementBody = 4096;
    n->gateway = std::make_unique<triggers::HttpGateway>(
        triggers::GatewayDeps{*c.invoker, *c.executor, *c.table, *n->registry,
                              *n->deployments, c.metrics, *n->management, *n->auth,
                              "0.0.0-fuzz", [] { return std::string(); }, nullptr,
                              [] { return std::string(); }, [] { return std::string(); },
                              nullptr, n->kv.get(), nullptr, nullptr},
        limits);
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
