// Workflow orchestration overhead against the same tasks called by a client itself
// (docs/benchmarks.md, "Workflows"). Talks to a running ternd (bench/workflow_bench.sh
// starts one) with the test guest wf_step deployed as `inc` ({"n": X} -> {"n": X+1}, a
// wasi-libc C function that reads its environment and stdin):
//   seq10   a 10-task sequence (each task's output is the next one's input) run by
//           POST /wf/seq10, vs the client making the 10 calls to /fn/inc itself over one
//           keep-alive connection;
//   par10k  a parallelFor of 10,000 iterations, vs the client making the 10,000 calls over
//           as many keep-alive connections as the node has worker slots.
// For each: the run's wall time at the client (p50 over the runs), the sum of the tasks'
// own durations from the run's trace, and the orchestration overhead per task
// ((wall - sum of durations / parallelism) / tasks is not used: the report gives wall time
// per task and, for the sequence, (wall - sum of durations) / tasks).
//
// With --fusion (bench/fusion_bench.sh): a chain of 5 `inc` tasks deployed twice with a
// Costless plan that runs every function in the cloud tier, fused (one group of five) and
// unfused (five groups of one); latency p50/p99 over interleaved runs, then throughput
// (runs/s with --connections clients at once) of each, side by side.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// One keep-alive HTTP/1.1 connection to 127.0.0.1:port.
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("connect");
      std::exit(1);
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Connection() { ::close(fd_); }

  // Sends one request and returns {status, body}; keeps the connection.
  std::pair<int, std::string> call(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& token = "",
                                   std::string* runId = nullptr) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "\r\n" + body;
    for (size_t sent = 0; sent < req.size();) {
      ssize_t n = ::write(fd_, req.data() + sent, req.size() - sent);
      if (n <= 0) std::exit(2);
      sent += static_cast<size_t>(n);
    }
    std::string in = std::move(rest_);
    rest_.clear();
    size_t end;
    char buf[65536];
    while ((end = in.find("\r\n\r\n")) == std::string::npos) read(in, buf, sizeof buf);
    size_t cl = in.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) cl = in.find("content-length: ");
    size_t length = std::stoul(in.substr(cl + 16));
    while (in.size() < end + 4 + length) read(in, buf, sizeof buf);
    int status = std::stoi(in.substr(9, 3));
    if (runId) {
      size_t h = in.find("X-Tern-Run-Id: ");
      if (h != std::string::npos && h < end) *runId = in.substr(h + 15, in.find("\r\n", h) - h - 15);
    }
    std::string out = in.substr(end + 4, length);
    rest_ = in.substr(end + 4 + length);
    return {status, out};
  }

 private:
  void read(std::string& in, char* buf, size_t size) {
    ssize_t n = ::read(fd_, buf, size);
    if (n <= 0) {
      std::fprintf(stderr, "connection closed\n");
      std::exit(2);
    }
    in.append(buf, static_cast<size_t>(n));
  }
  int fd_;
  std::string rest_;
};

std::string seqAfcl(int n) {
  std::string y = "name: seq\ndataIns: [{name: n, type: number, source: n}]\nworkflowBody:\n";
  for (int i = 1; i <= n; ++i) {
    std::string src = i == 1 ? "seq/n" : "F" + std::to_string(i - 1) + "/n";
    y += "- function: {name: F" + std::to_string(i) + ", type: Inc, dataIns: [{name: n, type: number, source: \"" +
         src + "\"}], dataOuts: [{name: n, type: number}]}\n";
  }
  y += "dataOuts: [{name: n, type: number, source: F" + std::to_string(n) + "/n}]\n";
  return y;
}

const char* kParAfcl = R"(name: par
dataIns: [{name: items, type: collection, source: items}]
workflowBody:
- parallelFor:
    name: P
    dataIns: [{name: item, type: collection, source: par/items}]
    iterators: [item]
    loopBody:
    - function: {name: F, type: Inc, dataIns: [{name: n, type: number, source: P/item}], dataOuts: [{name: n, type: number}]}
    dataOuts: [{name: all, type: collection, source: F/n}]
dataOuts: [{name: all, type: collection, source: P/all}]
)";

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

double us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Sum of the tasks' own durations in a run's trace, in microseconds.
double taskMicros(Connection& c, const std::string& token, const std::string& runId, size_t* tasks) {
  auto [status, body] = c.call("GET", "/v1/runs/" + runId, "", token);
  json t = json::parse(body);
  double sum = 0;
  for (const auto& k : t["tasks"]) sum += k["duration_us"].get<double>();
  *tasks = t["tasks"].size();
  return sum;
}

struct Measured {
  std::vector<double> wall;
  double runsPerSecond = 0;
};

// Latency of `names` interleaved run by run, then each one's throughput with `clients`
// connections making `perClient` runs each.
int fusion(uint16_t port, const std::string& token, int runs, int clients, int perClient) {
  Connection admin(port);
  json groupsOfOne = json::array(), oneGroup = json::array();
  for (int i = 1; i <= 5; ++i) {
    groupsOfOne.push_back(json::array({"F" + std::to_string(i)}));
    oneGroup.push_back("F" + std::to_string(i));
  }
  const std::vector<std::pair<std::string, json>> variants = {
      {"fused5", json::array({oneGroup})}, {"unfused5", groupsOfOne}};
  for (const auto& [name, groups] : variants) {
    json body{{"afcl", seqAfcl(5)},
              {"options", {{"plan", {{"edge", json::array()}, {"cloud_groups", groups}}}}}};
    auto [s, b] = admin.call("PUT", "/v1/workflows/" + name, body.dump(), token);
    if (s != 201) {
      std::fprintf(stderr, "deploy %s: %d %s\n", name.c_str(), s, b.c_str());
      return 1;
    }
  }
  auto once = [](Connection& c, const std::string& name) {
    auto [s, b] = c.call("POST", "/wf/" + name, "{\"n\":0}");
    if (s != 200 || json::parse(b, nullptr, false).value("n", 0) != 5) {
      std::fprintf(stderr, "%s: %d %s\n", name.c_str(), s, b.c_str());
      std::exit(1);
    }
  };
  std::map<std::string, Measured> m;
  Connection c(port);
  for (int r = 0; r < runs; ++r) {
    for (const auto& [name, groups] : variants) {
      auto t0 = Clock::now();
      once(c, name);
      m[name].wall.push_back(us(Clock::now() - t0));
    }
  }
  for (const auto& [name, groups] : variants) {
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int k = 0; k < clients; ++k) {
      threads.emplace_back([&, name = name] {
        Connection cc(port);
        for (int i = 0; i < perClient; ++i) once(cc, name);
      });
    }
    for (auto& t : threads) t.join();
    m[name].runsPerSecond = clients * perClient / std::chrono::duration<double>(Clock::now() - t0).count();
  }
  for (const auto& [name, groups] : variants) {
    const Measured& x = m[name];
    std::printf("%-9s p50 %8.1f us  p99 %8.1f us  throughput %8.1f runs/s (%d clients)\n", name.c_str(),
                percentile(x.wall, 50), percentile(x.wall, 99), x.runsPerSecond, clients);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("workflow orchestration overhead vs client-side calls");
  uint16_t port = 0;
  std::string token;
  int runs = 200, parRuns = 3, parallel = 2;
  app.add_option("--port", port, "the node's HTTP port")->required();
  app.add_option("--token", token, "the node's admin token")->required();
  app.add_option("--runs", runs, "sequence runs (and client sequences)");
  app.add_option("--par-runs", parRuns, "parallelFor runs (and client batches)");
  app.add_option("--connections", parallel, "client connections for the 10,000 calls (with --fusion: clients at once)");
  bool fused = false;
  int perClient = 200;
  app.add_flag("--fusion", fused, "fused vs unfused chain of 5 under a plan (the node: a cloud-tier node, or an edge node with a cloud peer)");
  app.add_option("--per-client", perClient, "with --fusion: runs per client in the throughput phase");
  CLI11_PARSE(app, argc, argv);
  if (fused) return fusion(port, token, runs, parallel, perClient);

  Connection admin(port);
  auto put = [&](const std::string& name, const std::string& afcl) {
    auto [s, b] = admin.call("PUT", "/v1/workflows/" + name, json{{"afcl", afcl}}.dump(), token);
    if (s != 201) {
      std::fprintf(stderr, "deploy %s: %d %s\n", name.c_str(), s, b.c_str());
      std::exit(1);
    }
  };
  put("seq10", seqAfcl(10));
  put("par10k", kParAfcl);

  // Sequence: workflow vs the client's own chain of calls, interleaved run by run.
  Connection c(port);
  std::vector<double> wfWall, wfOverhead, clientWall;
  for (int r = 0; r < runs; ++r) {
    std::string id;
    auto t0 = Clock::now();
    auto [s, b] = c.call("POST", "/wf/seq10", "{\"n\":0}", "", &id);
    double wall = us(Clock::now() - t0);
    if (s != 200 || json::parse(b)["n"] != 10) {
      std::fprintf(stderr, "seq10: %d %s\n", s, b.c_str());
      return 1;
    }
    size_t tasks = 0;
    double fn = taskMicros(admin, token, id, &tasks);
    wfWall.push_back(wall);
    wfOverhead.push_back((wall - fn) / static_cast<double>(tasks));
    t0 = Clock::now();
    std::string in = "{\"n\":0}";
    for (int i = 0; i < 10; ++i) in = c.call("POST", "/fn/inc", in).second;
    clientWall.push_back(us(Clock::now() - t0));
  }
  std::printf("seq10  workflow   p50 %8.1f us  p99 %8.1f us  (overhead per task p50 %.1f us, p99 %.1f us)\n",
              percentile(wfWall, 50), percentile(wfWall, 99), percentile(wfOverhead, 50),
              percentile(wfOverhead, 99));
  std::printf("seq10  client     p50 %8.1f us  p99 %8.1f us  (10 calls over one keep-alive connection)\n",
              percentile(clientWall, 50), percentile(clientWall, 99));

  // parallelFor of 10,000: workflow vs the client's 10,000 calls over `parallel` connections.
  json items = json::array();
  for (int i = 0; i < 10000; ++i) items.push_back(i);
  std::string input = json{{"items", items}}.dump();
  for (int r = 0; r < parRuns; ++r) {
    std::string id;
    auto t0 = Clock::now();
    auto [s, b] = c.call("POST", "/wf/par10k", input, "", &id);
    double wall = us(Clock::now() - t0);
    if (s != 200) {
      std::fprintf(stderr, "par10k: %d %s\n", s, b.substr(0, 300).c_str());
      return 1;
    }
    size_t tasks = 0;
    double fn = taskMicros(admin, token, id, &tasks);
    t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int k = 0; k < parallel; ++k) {
      threads.emplace_back([&, k] {
        Connection cc(port);
        for (int i = k; i < 10000; i += parallel) cc.call("POST", "/fn/inc", "{\"n\":" + std::to_string(i) + "}");
      });
    }
    for (auto& t : threads) t.join();
    double client = us(Clock::now() - t0);
    std::printf("par10k workflow %9.1f ms (%.1f us per task; tasks ran %.1f ms in all)   client %9.1f ms (%.1f us per call, %d connections)\n",
                wall / 1000, wall / static_cast<double>(tasks), fn / 1000, client / 1000, client / 10000, parallel);
  }
  return 0;
}
