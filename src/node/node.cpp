#include "node/node.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <thread>

#include "async/async_queue.h"
#include "async/http_callback.h"
#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "http/http_server.h"
#include "store/deployments.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "triggers/coap_server.h"
#include "triggers/http_gateway.h"
#include "util/data_dir.h"
#include "util/metrics.h"
#include "util/process_stats.h"
#include "util/work_queue.h"
#include "wasm/engine.h"

namespace tern::node {

namespace fs = std::filesystem;

namespace {

// Reads <data>/admin.token, creating it (32 random bytes, hex, mode 0600) on first start.
Result<std::string> loadOrCreateToken(const fs::path& dataDir) {
  fs::path path = dataDir / "admin.token";
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && token.size() >= 32) return token;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Error(ErrorCode::kInternal, "no randomness");
  token.clear();
  for (unsigned char c : raw) token += fmt::format("{:02x}", c);
  fs::path tmp = dataDir / "admin.token.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(ErrorCode::kIo, "cannot write " + tmp.string());
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(ErrorCode::kIo, "cannot write " + path.string());
  }
  return token;
}

}  // namespace

struct Node::Impl {
  NodeConfig config;
  std::string token;
  MetricsRegistry metrics;
  std::unique_ptr<wasm::Engine> engine;
  std::unique_ptr<store::Registry> registry;
  std::unique_ptr<store::KvStore> kv;  // functions' key-value state, <data>/kv.db
  // How functions' host API publish calls reach a broker. Without an MQTT broker it
  // refuses; set before start() serves, since invocations call through it.
  std::function<Result<void>(std::string_view, std::string_view)> publish =
      [](std::string_view, std::string_view) -> Result<void> {
    return Error(ErrorCode::kUnavailable, "no MQTT broker configured on this node");
  };
  std::unique_ptr<exec::FunctionTable> table;
  std::unique_ptr<exec::Executor> executor;
  std::unique_ptr<exec::Invoker> invoker;
  std::unique_ptr<store::Deployments> deployments;
  std::unique_ptr<WorkQueue> managementQueue;
  async::SystemClock asyncClock;
  async::SystemRandom asyncRandom;
  // Durable async invocations; origins other than "http" register their delivery hooks on
  // it before it starts (just before the HTTP server).
  std::unique_ptr<async::AsyncQueue> asyncQueue;
  std::unique_ptr<triggers::HttpGateway> gateway;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<triggers::CoapServer> coap;
  // Invocations that do not run inline on a serving thread: slow functions, and queued
  // invocations once a slot frees up. As many threads as worker slots.
  std::unique_ptr<WorkQueue> workers;
  bool running = false;

  std::string engineMetrics() const;
};

std::string Node::Impl::engineMetrics() const {
  std::string out;
  auto c = engine->compiler().stats();
  auto p = engine->pool().stats();
  auto ex = executor->stats();
  auto ps = readProcessStats();
  auto line = [&](const char* name, const char* type, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
  };
  line("tern_compiles_total", "counter", "Modules compiled by this node", double(c.compiles));
  line("tern_compile_seconds_total", "counter", "Time spent compiling modules", c.compileSeconds);
  line("tern_compile_cache_hits_total", "counter", "Module loads served from the compile cache",
       double(c.cacheHits));
  line("tern_sandboxes_alive", "gauge", "Linear-memory slots in use", double(p.slotsInUse));
  line("tern_worker_slots", "gauge", "Worker slots of this node", ex.slots);
  line("tern_worker_slots_busy", "gauge", "Worker slots running an invocation", ex.running);
  line("tern_queue_length", "gauge", "Requests waiting for a worker slot", ex.queued);
  line("tern_rejected_total", "counter", "Requests refused because the queue was full",
       double(ex.rejected));
  line("tern_process_cpu_seconds_total", "counter", "CPU time of the node process",
       ps.cpuSecondsUser + ps.cpuSecondsSystem);
  line("tern_process_resident_memory_bytes", "gauge", "Resident memory of the node process",
       double(ps.residentBytes));
  line("tern_process_virtual_memory_bytes", "gauge", "Virtual memory of the node process",
       double(ps.virtualBytes));
  return out;
}

Node::Node(NodeConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

Node::~Node() {
  if (impl_->running) stop();
}

Result<void> Node::start() {
  Impl& n = *impl_;
  NodeConfig& cfg = n.config;
  if (cfg.dataDir.empty()) cfg.dataDir = tern::defaultDataDir();
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  std::error_code ec;
  fs::create_directories(cfg.dataDir, ec);
  if (ec) {
    return Error(ErrorCode::kIo,
                 fmt::format("cannot create data directory {}: {}", cfg.dataDir.string(), ec.message()));
  }
  auto token = loadOrCreateToken(cfg.dataDir);
  if (!token.ok()) return token.error();
  n.token = *token;

  wasm::EngineConfig ec2;
  ec2.compiler.cacheDir = cfg.dataDir / "cache";
  ec2.compiler.maxModuleBytes = cfg.maxModuleBytes;
  n.engine = std::make_unique<wasm::Engine>(ec2);
  auto registry = store::Registry::open(cfg.dataDir);
  if (!registry.ok()) return registry.error();
  n.registry = std::move(*registry);
  n.table = std::make_unique<exec::FunctionTable>(n.metrics);
  n.executor = std::make_unique<exec::Executor>(exec::Executor::Options{cfg.workers, cfg.queueLimit});
  n.workers = std::make_unique<WorkQueue>(cfg.workers);
  auto kv = store::KvStore::open(cfg.dataDir);
  if (!kv.ok()) return kv.error();
  n.kv = std::move(*kv);
  exec::HostServices services;
  services.kv = n.kv.get();
  services.publish = [this](std::string_view topic, std::string_view payload) {
    return impl_->publish(topic, payload);
  };
  n.invoker = std::make_unique<exec::Invoker>(
      *n.engine, *n.executor, *n.table,
      [this](std::function<void()> task) { impl_->workers->post(std::move(task)); },
      std::move(services));
  n.deployments =
      std::make_unique<store::Deployments>(*n.registry, *n.engine, *n.table, n.kv.get());

  auto report = n.deployments->loadAll();
  spdlog::info("loaded {} function(s) from {}", report.loaded, cfg.dataDir.string());
  for (const auto& f : report.failures) spdlog::error("cannot load function {}", f);

  async::AsyncOptions ao;
  ao.file = cfg.dataDir / "queue.db";
  ao.retry.maxAttempts = cfg.async.attempts;
  ao.retry.baseMs = cfg.async.backoff.count();
  ao.deliveryRetry = ao.retry;
  ao.maxInFlight = cfg.async.concurrency ? cfg.async.concurrency : cfg.workers;
  ao.maxPending = cfg.async.maxPending;
  ao.retentionMs = cfg.async.retention.count();
  ao.stopTimeout = cfg.drainTimeout;
  auto asyncQueue = async::AsyncQueue::open(
      ao, async::AsyncDeps{*n.invoker, *n.table, n.metrics, n.asyncClock, n.asyncRandom});
  if (!asyncQueue.ok()) return asyncQueue.error();
  n.asyncQueue = std::move(*asyncQueue);
  n.asyncQueue->setDelivery("http", async::httpCallbackDelivery(std::chrono::seconds(10)),
                            async::hasCallbackUrl);

  n.managementQueue = std::make_unique<WorkQueue>();
  triggers::GatewayLimits limits;
  limits.maxInvokeBody = cfg.maxInvokeBodyBytes;
  limits.maxModuleBytes = cfg.maxModuleBytes;
  n.gateway = std::make_unique<triggers::HttpGateway>(
      triggers::GatewayDeps{*n.invoker, *n.executor, *n.table, *n.registry, *n.deployments,
                            n.metrics, *n.managementQueue, n.token, "0.1.0",
                            [this] { return impl_->engineMetrics(); }, n.asyncQueue.get()},
      limits);

  http::ServerOptions so;
  so.address = cfg.listenAddress;
  so.port = cfg.port;
  // Serving threads run short invocations inline; slow ones go to the worker pool, so the
  // serving threads stay free to read requests, queue them or refuse them.
  so.threads = cfg.workers;
  so.maxHeaderBytes = cfg.maxHeaderBytes;
  so.maxConnections = cfg.maxConnections;
  so.readTimeout = cfg.readTimeout;
  so.idleTimeout = cfg.idleTimeout;
  n.server = std::make_unique<http::Server>(
      so,
      [this](std::string_view m, std::string_view t) { return impl_->gateway->bodyLimit(m, t); },
      [this](http::Request&& r, http::Respond respond) {
        impl_->gateway->handle(std::move(r), std::move(respond));
      });
  if (auto ok = n.asyncQueue->start(); !ok.ok()) return ok.error();
  if (auto ok = n.server->start(); !ok.ok()) {
    n.asyncQueue->stop();
    return ok.error();
  }
  if (cfg.coap.enabled) {
    n.coap = std::make_unique<triggers::CoapServer>(
        *n.invoker, n.metrics,
        triggers::CoapOptions{cfg.coap.address, cfg.coap.port, cfg.maxInvokeBodyBytes});
    if (auto ok = n.coap->start(); !ok.ok()) {
      n.server->stop(std::chrono::milliseconds(0));
      return ok.error();
    }
    bool v6 = cfg.coap.address.find(':') != std::string::npos;
    spdlog::info("serving CoAP on coap://{}{}{}:{}", v6 ? "[" : "", cfg.coap.address,
                 v6 ? "]" : "", n.coap->port());
  }
  n.running = true;
  spdlog::info("serving on http://{}:{} with {} worker slot(s); data in {}", cfg.listenAddress,
               n.server->port(), cfg.workers, cfg.dataDir.string());
  return {};
}

void Node::stop() {
  Impl& n = *impl_;
  if (!n.running) return;
  n.running = false;
  spdlog::info("draining: no new requests; waiting for invocations in flight");
  // CoAP answers new requests with 5.03 and waits for its invocations in flight.
  if (n.coap) n.coap->stop(n.config.drainTimeout);
  // The server stops accepting, closes idle connections, answers keep-alive requests with
  // "Connection: close", and waits for the requests in flight (running or queued).
  n.server->stop(n.config.drainTimeout);
  // Async attempts in flight finish (they need the executor and workers); queued jobs wait
  // in queue.db for the next start.
  n.asyncQueue->stop();
  bool drained = n.executor->stop(std::chrono::milliseconds(100));
  n.managementQueue->stop();
  n.workers->stop();
  spdlog::info(drained ? "stopped" : "stopped (drain timed out)");
}

uint16_t Node::port() const { return impl_->server ? impl_->server->port() : 0; }

uint16_t Node::coapPort() const { return impl_->coap ? impl_->coap->port() : 0; }

const std::string& Node::adminToken() const { return impl_->token; }

}  // namespace tern::node
