// Providers (docs/benchmarks.md, "Providers"): one function served by three providers under
// each routing policy, against a running ternd (bench/provider_bench.sh starts one with a
// short probe period). The providers are HTTP function endpoints in this process, on
// loopback, one thread per connection, each answering after a set latency:
//
//   cloud  300 ms, 0.01 per call, tier cloud
//   edge1   20 ms, 0.05 per call, tier edge
//   edge2   20 ms, 0.02 per call, tier edge; volatile while the client is issuing calls
//           --volatile-from..--volatile-to (134..266 of 400, the middle third):
//             slow     every request answered after a latency uniform in 200..800 ms;
//             failing  every other request dropped (the connection closed once the request
//                      is read, before any byte of a response: the function did not run
//                      there), the others answered in 20 ms;
//             mixed    both: every other request dropped, the others slow.
//           A probe (X-Tern-Probe: 1) is a request like any other: the provider does not
//           treat it apart.
//
// For each variant and policy, the program puts a route for a fresh function name
// (VARIANT-POLICY): the router keeps its statistics and round-robin's position per function,
// so every run starts with none, as a new function would. Then it makes --calls calls
// (POST /fn/NAME, one connection each) from --concurrency threads, each taking the next
// call as soon as its previous one answered, and deletes the route, which stops its probes.
// The baseline `single` routes to the cloud alone; every other policy has the providers
// [edge1, edge2, cloud].
//
// Per run: the makespan (first call sent to last answer), latency at the client p50, p95,
// p99 and max over all calls and per third of the run, errors (any answer but 200), the
// share of calls each provider answered (X-Tern-Provider), the price of those answers, and
// what the providers saw (requests dropped, probes answered). Markdown on stdout, progress
// and the router's statistics at the end of each run on stderr, and one JSON line per run.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "http/http_client.h"

namespace tern::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// What a provider does with one request.
struct Action {
  bool drop = false;  // close the connection without answering
  int delayMs = 0;
};

// What a provider saw of the function under test (requests for other paths are answered
// but not counted).
struct Seen {
  int calls = 0;         // answered
  int probes = 0;        // answered
  int dropped = 0;       // calls dropped
  int probesDropped = 0;
};

// A function provider on 127.0.0.1: reads one HTTP/1.1 request per connection (the
// router's client sends one), asks `decide` what to do, and answers 200
// {"provider": NAME} after the delay, or closes the connection unanswered.
class ProviderEndpoint {
 public:
  using Decide = std::function<Action(bool probe)>;

  ProviderEndpoint(std::string name, Decide decide) : name_(std::move(name)), decide_(std::move(decide)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 512) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      die("provider " + name_, "cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }

  ~ProviderEndpoint() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return active_ == 0; });
  }
  ProviderEndpoint(const ProviderEndpoint&) = delete;
  ProviderEndpoint& operator=(const ProviderEndpoint&) = delete;

  const std::string& name() const { return name_; }
  // The provider's URL template for the router.
  std::string urlTemplate() const { return fmt::format("http://127.0.0.1:{}/{{function}}", port_); }

  // Counts the requests for /FUNCTION from now on, from zero.
  void watch(const std::string& function) {
    std::lock_guard lock(mu_);
    watched_ = "/" + function;
    seen_ = {};
  }
  Seen seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void acceptLoop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // the listening socket was shut down
      }
      {
        std::lock_guard lock(mu_);
        ++active_;
      }
      // Detached: a finished connection leaves nothing to join; the destructor waits for
      // the count of active connections to reach zero instead.
      std::thread([this, c] {
        serve(c);
        ::close(c);
        std::lock_guard lock(mu_);
        if (--active_ == 0) idle_.notify_all();
      }).detach();
    }
  }

  void serve(int c) {
    std::string buf;
    char chunk[16384];
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::read(c, chunk, sizeof chunk);
      if (n <= 0 || buf.size() > 65536) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
    size_t length = 0;
    if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos) {
      length = std::strtoul(head.c_str() + at + 17, nullptr, 10);
    }
    while (buf.size() < end + 4 + length) {
      ssize_t n = ::read(c, chunk, sizeof chunk);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    bool probe = head.find("\r\nx-tern-probe: 1") != std::string::npos;
    size_t sp = head.find(' ');
    std::string path = sp == std::string::npos ? "" : head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    Action act = decide_(probe);
    {
      std::lock_guard lock(mu_);
      if (path == watched_) {
        if (act.drop) {
          ++(probe ? seen_.probesDropped : seen_.dropped);
        } else {
          ++(probe ? seen_.probes : seen_.calls);
        }
      }
    }
    if (act.drop) {
      ::shutdown(c, SHUT_RDWR);
      return;
    }
    if (act.delayMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(act.delayMs));
    std::string body = json{{"provider", name_}}.dump();
    std::string resp = fmt::format(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
    size_t off = 0;
    while (off < resp.size()) {
      ssize_t n = ::write(c, resp.data() + off, resp.size() - off);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  std::string name_;
  Decide decide_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
  std::string watched_;
  Seen seen_;
};

enum class Volatility { kSlow, kFailing, kMixed };

std::string_view volatilityName(Volatility v) {
  switch (v) {
    case Volatility::kSlow: return "slow";
    case Volatility::kFailing: return "failing";
    case Volatility::kMixed: return "mixed";
  }
  return "?";
}

struct Options {
  std::string node;
  std::string token;
  int calls = 400;
  int concurrency = 8;
  int volatileFrom = 134;
  int volatileTo = 266;
  int cloudMs = 300;
  int edgeMs = 20;
  int slowMinMs = 200;
  int slowMaxMs = 800;
  int pauseMs = 500;
  uint64_t seed = 1;
  std::vector<std::string> variants{"slow", "failing", "mixed"};
  std::vector<std::string> policies{"single", "round-robin", "lowest-latency", "weighted", "cheapest-within:100"};
  std::string tracePath;
};

// What edge2 does: steady, or volatile while the client is issuing the calls of the middle
// third (by the count of calls issued so far in the current run).
class Edge2Behaviour {
 public:
  Edge2Behaviour(const Options& o, const std::atomic<int>& issued) : o_(o), issued_(issued), rng_(o.seed) {}

  void begin(Volatility v) {
    std::lock_guard lock(mu_);
    mode_ = v;
    volatileRequests_ = 0;
  }

  Action decide(bool /*probe*/) {
    int k = issued_.load();
    if (k < o_.volatileFrom || k > o_.volatileTo) return {false, o_.edgeMs};
    std::lock_guard lock(mu_);
    bool drop = ++volatileRequests_ % 2 == 0;  // every other request: the 2nd, the 4th, ...
    int slow = std::uniform_int_distribution<int>(o_.slowMinMs, o_.slowMaxMs)(rng_);
    switch (mode_) {
      case Volatility::kSlow: return {false, slow};
      case Volatility::kFailing: return {drop, o_.edgeMs};
      case Volatility::kMixed: return {drop, slow};
    }
    return {false, o_.edgeMs};
  }

 private:
  const Options& o_;
  const std::atomic<int>& issued_;
  std::mutex mu_;
  std::mt19937_64 rng_;
  Volatility mode_ = Volatility::kSlow;
  uint64_t volatileRequests_ = 0;
};

struct ProviderSpec {
  std::string name;
  std::string tier;
  double price;
};
const std::vector<ProviderSpec> kProviders = {
    {"edge1", "edge", 0.05}, {"edge2", "edge", 0.02}, {"cloud", "cloud", 0.01}};

double priceOf(const std::string& provider) {
  for (const auto& p : kProviders) {
    if (p.name == provider) return p.price;
  }
  return 0;
}

class NodeApi {
 public:
  NodeApi(const std::string& url, std::string token)
      : node_(orDie(http::parseNodeUrl(url), "--node")), token_(std::move(token)) {}

  http::HttpResponse send(const std::string& method, const std::string& target, const std::string& body,
                          bool admin) const {
    http::HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    if (admin) req.headers.push_back({"Authorization", "Bearer " + token_});
    http::HttpClientOptions o;
    o.responseTimeout = std::chrono::seconds(30);
    auto r = http::sendHttp(node_, req, o);
    if (!r.ok()) {
      http::HttpResponse failed;
      failed.status = 0;
      failed.body = r.error().describe();
      return failed;
    }
    return std::move(*r);
  }

  void admin(const std::string& method, const std::string& target, const json& body) const {
    auto r = send(method, target, body.is_null() ? "" : body.dump(), true);
    if (r.status != 200) die(method + " " + target, fmt::format("HTTP {}: {}", r.status, r.body));
  }

 private:
  http::NodeUrl node_;
  std::string token_;
};

struct CallRecord {
  int number = 0;      // 1-based, in the order issued
  double startMs = 0;  // from the run's start
  double latencyMs = 0;
  int status = 0;      // 0: no answer
  std::string provider;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct RunResult {
  std::string variant;
  std::string policy;
  std::string function;
  double makespanMs = 0;
  std::vector<CallRecord> calls;
  std::map<std::string, Seen> seen;
  json routerStats;
};

std::string functionName(const std::string& variant, const std::string& policy) {
  std::string fn = variant + "-" + policy;
  for (char& ch : fn) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
  }
  return fn;
}

RunResult runPolicy(const Options& o, const NodeApi& api, std::vector<ProviderEndpoint*>& endpoints,
                    Edge2Behaviour& edge2, std::atomic<int>& issued, Volatility variant,
                    const std::string& policy) {
  RunResult res;
  res.variant = std::string(volatilityName(variant));
  res.policy = policy;
  res.function = functionName(res.variant, policy);
  std::vector<std::string> route = policy == "single" ? std::vector<std::string>{"cloud"}
                                                      : std::vector<std::string>{"edge1", "edge2", "cloud"};
  issued = 0;
  edge2.begin(variant);
  for (auto* e : endpoints) e->watch(res.function);
  api.admin("PUT", "/v1/routes/" + res.function, json{{"providers", route}, {"policy", policy}});

  res.calls.resize(static_cast<size_t>(o.calls));
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  auto ms = [t0](Clock::time_point t) { return std::chrono::duration<double, std::milli>(t - t0).count(); };
  std::vector<std::thread> clients;
  for (int t = 0; t < o.concurrency; ++t) {
    clients.emplace_back([&] {
      for (;;) {
        int i = next.fetch_add(1);
        if (i >= o.calls) return;
        issued.store(i + 1);
        auto start = Clock::now();
        auto r = api.send("POST", "/fn/" + res.function, R"({"n":1})", false);
        auto stop = Clock::now();
        CallRecord& c = res.calls[static_cast<size_t>(i)];
        c.number = i + 1;
        c.startMs = ms(start);
        c.latencyMs = std::chrono::duration<double, std::milli>(stop - start).count();
        c.status = r.status;
        if (const auto* p = r.header("X-Tern-Provider")) c.provider = *p;
        if (r.status != 200) std::cerr << fmt::format("call {}: HTTP {}: {}\n", i + 1, r.status, r.body);
      }
    });
  }
  for (auto& t : clients) t.join();
  for (const auto& c : res.calls) res.makespanMs = std::max(res.makespanMs, c.startMs + c.latencyMs);

  auto stats = api.send("GET", "/v1/providers", "", true);
  if (stats.status == 200) {
    auto all = json::parse(stats.body, nullptr, false);
    if (all.is_object() && all.contains("providers")) {
      for (const auto& p : all["providers"]) {
        for (const auto& f : p.value("functions", json::array())) {
          if (f.value("function", "") == res.function) res.routerStats[p.value("name", "?")] = f;
        }
      }
    }
  }
  api.admin("DELETE", "/v1/routes/" + res.function, nullptr);
  // Probes in flight at the deletion finish before the next run's counts start.
  std::this_thread::sleep_for(std::chrono::milliseconds(o.pauseMs));
  for (auto* e : endpoints) res.seen[e->name()] = e->seen();
  return res;
}

std::string fmtMs(double v) { return v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}", v); }

struct Latencies {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
};
Latencies latencies(const std::vector<CallRecord>& calls, int from, int to) {
  std::vector<double> v;
  for (const auto& c : calls) {
    if (c.number >= from && c.number <= to) v.push_back(c.latencyMs);
  }
  Latencies l;
  l.p50 = percentile(v, 0.50);
  l.p95 = percentile(v, 0.95);
  l.p99 = percentile(v, 0.99);
  l.max = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  return l;
}

void report(const Options& o, const std::vector<RunResult>& runs) {
  if (runs.empty()) return;
  std::cout << fmt::format("\n### edge2 volatile: {}\n\n", runs.front().variant);
  std::cout << "| policy | makespan s | p50 ms | p95 ms | p99 ms | max ms | errors | edge1 | edge2 | cloud | "
               "price of the answers | edge2 requests dropped (calls + probes) | probes answered |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : runs) {
    auto all = latencies(r.calls, 1, o.calls);
    int errors = 0;
    std::map<std::string, int> share;
    double price = 0;
    for (const auto& c : r.calls) {
      if (c.status != 200) {
        ++errors;
        continue;
      }
      ++share[c.provider];
      price += priceOf(c.provider);
    }
    auto cell = [&](const std::string& p) {
      int n = share[p];
      return n == 0 ? std::string("0") : fmt::format("{:.0f}% ({})", 100.0 * n / o.calls, n);
    };
    const Seen& e2 = r.seen.at("edge2");
    int probes = 0;
    for (const auto& [name, s] : r.seen) probes += s.probes;
    std::cout << fmt::format("| {} | {:.2f} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2f} | {} + {} | {} |\n",
                             r.policy, r.makespanMs / 1000, fmtMs(all.p50), fmtMs(all.p95), fmtMs(all.p99),
                             fmtMs(all.max), errors, cell("edge1"), cell("edge2"), cell("cloud"), price, e2.dropped,
                             e2.probesDropped, probes);
  }
  std::cout << fmt::format(
      "\nLatency by third of the run (calls 1-{}, {}-{} while edge2 is volatile, {}-{}), p50 / p95 ms:\n\n",
      o.volatileFrom - 1, o.volatileFrom, o.volatileTo, o.volatileTo + 1, o.calls);
  std::cout << "| policy | before | volatile | after | edge2's share before / volatile / after |\n"
               "|---|---:|---:|---:|---:|\n";
  for (const auto& r : runs) {
    const int bounds[3][2] = {{1, o.volatileFrom - 1}, {o.volatileFrom, o.volatileTo}, {o.volatileTo + 1, o.calls}};
    std::string cells;
    std::string shares;
    for (const auto& b : bounds) {
      auto l = latencies(r.calls, b[0], b[1]);
      cells += fmt::format(" {} / {} |", fmtMs(l.p50), fmtMs(l.p95));
      int n = 0, e2 = 0;
      for (const auto& c : r.calls) {
        if (c.number < b[0] || c.number > b[1]) continue;
        ++n;
        e2 += c.provider == "edge2";
      }
      shares += fmt::format("{}{:.0f}%", shares.empty() ? "" : " / ", n ? 100.0 * e2 / n : 0);
    }
    std::cout << fmt::format("| {} |{} {} |\n", r.policy, cells, shares);
  }
}

json jsonLine(const Options& o, const RunResult& r) {
  auto all = latencies(r.calls, 1, o.calls);
  json share = json::object();
  int errors = 0;
  for (const auto& c : r.calls) {
    if (c.status != 200) {
      ++errors;
    } else {
      share[c.provider] = share.value(c.provider, 0) + 1;
    }
  }
  json seen = json::object();
  for (const auto& [name, s] : r.seen) {
    seen[name] = {{"calls", s.calls}, {"probes", s.probes}, {"dropped", s.dropped}, {"probes_dropped", s.probesDropped}};
  }
  return {{"variant", r.variant}, {"policy", r.policy},       {"calls", o.calls},
          {"concurrency", o.concurrency}, {"makespan_ms", r.makespanMs}, {"p50_ms", all.p50},
          {"p95_ms", all.p95},    {"p99_ms", all.p99},        {"max_ms", all.max},
          {"errors", errors},     {"answered_by", share},     {"providers_saw", seen},
          {"router", r.routerStats}};
}

int run(const Options& o) {
  if (o.volatileFrom < 2 || o.volatileTo < o.volatileFrom || o.volatileTo >= o.calls) {
    die("--volatile-from/--volatile-to", "need 2 <= from <= to < calls");
  }
  std::vector<Volatility> variants;
  for (const auto& v : o.variants) {
    if (v == "slow") variants.push_back(Volatility::kSlow);
    else if (v == "failing") variants.push_back(Volatility::kFailing);
    else if (v == "mixed") variants.push_back(Volatility::kMixed);
    else die("--variants", "unknown variant " + v + " (slow, failing, mixed)");
  }
  NodeApi api(o.node, o.token);
  std::atomic<int> issued{0};
  Edge2Behaviour edge2Behaviour(o, issued);
  ProviderEndpoint cloud("cloud", [&o](bool) { return Action{false, o.cloudMs}; });
  ProviderEndpoint edge1("edge1", [&o](bool) { return Action{false, o.edgeMs}; });
  ProviderEndpoint edge2("edge2", [&edge2Behaviour](bool probe) { return edge2Behaviour.decide(probe); });
  std::vector<ProviderEndpoint*> endpoints{&edge1, &edge2, &cloud};
  for (const auto& p : kProviders) {
    const auto* e = *std::find_if(endpoints.begin(), endpoints.end(), [&](auto* x) { return x->name() == p.name; });
    api.admin("PUT", "/v1/providers/" + p.name,
              json{{"kind", "http"}, {"url", e->urlTemplate()}, {"tier", p.tier}, {"price_per_call", p.price}});
  }

  std::cout << fmt::format(
      "{} calls at concurrency {} per run; cloud {} ms (0.01 per call), edge1 {} ms (0.05), edge2 {} ms (0.02), "
      "volatile while calls {}-{} are issued (slow: {}-{} ms; failing: every other request dropped)\n",
      o.calls, o.concurrency, o.cloudMs, o.edgeMs, o.edgeMs, o.volatileFrom, o.volatileTo, o.slowMinMs,
      o.slowMaxMs);
  std::ofstream trace;
  if (!o.tracePath.empty()) {
    trace.open(o.tracePath);
    trace << "variant,policy,call,start_ms,latency_ms,status,provider\n";
  }
  std::vector<json> lines;
  for (Volatility v : variants) {
    std::vector<RunResult> runs;
    for (const auto& policy : o.policies) {
      std::cerr << fmt::format("{} / {}: load average {}", volatilityName(v), policy, [] {
        std::ifstream in("/proc/loadavg");
        std::string a, b, c;
        in >> a >> b >> c;
        return a + " " + b + " " + c;
      }());
      auto r = runPolicy(o, api, endpoints, edge2Behaviour, issued, v, policy);
      std::cerr << fmt::format(", makespan {:.2f} s; router: {}\n", r.makespanMs / 1000, r.routerStats.dump());
      if (trace) {
        for (const auto& c : r.calls) {
          trace << fmt::format("{},{},{},{:.1f},{:.1f},{},{}\n", r.variant, r.policy, c.number, c.startMs,
                               c.latencyMs, c.status, c.provider);
        }
      }
      lines.push_back(jsonLine(o, r));
      runs.push_back(std::move(r));
    }
    report(o, runs);
  }
  std::cout << "\n";
  for (const auto& l : lines) std::cout << l.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Routing policies across three providers, one of which turns volatile (docs/benchmarks.md)"};
  app.add_option("--node", o.node, "the ternd to configure and call, http://HOST:PORT")->required();
  app.add_option("--token", o.token, "its admin token")->required();
  app.add_option("--calls", o.calls, "calls per run")->capture_default_str()->check(CLI::Range(3, 1000000));
  app.add_option("--concurrency", o.concurrency, "calls in flight")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--volatile-from", o.volatileFrom, "edge2 turns volatile when this call is issued")
      ->capture_default_str();
  app.add_option("--volatile-to", o.volatileTo, "and stays so until this one is issued")->capture_default_str();
  app.add_option("--cloud-ms", o.cloudMs, "the cloud's latency")->capture_default_str();
  app.add_option("--edge-ms", o.edgeMs, "the edges' latency")->capture_default_str();
  app.add_option("--slow-min-ms", o.slowMinMs, "a slow edge2's latency, from")->capture_default_str();
  app.add_option("--slow-max-ms", o.slowMaxMs, "to")->capture_default_str();
  app.add_option("--pause-ms", o.pauseMs, "pause between runs")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of edge2's slow latencies")->capture_default_str();
  app.add_option("--variants", o.variants, "slow, failing, mixed")->delimiter(',')->capture_default_str();
  app.add_option("--policies", o.policies, "routing policies (single routes to the cloud alone)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--trace", o.tracePath, "a CSV of every call");
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
