// Devices (docs/benchmarks.md, "Devices"; bench/device_bench.sh starts the node):
//   decision  the cost of the decision itself per call: choose() + record() over a device,
//             an edge and a cloud environment, adaptive UCB1 and Bayes-UCB (ns per call);
//   local     a local call on the device (the embedded engine, the function fetched from
//             the node once) vs the edge call of the same function: p50/p99;
//   mixed     a mixed workload (light `inc` and compute-heavy `work` calls alternating)
//             under the policies local, edge and adaptive: the total time of each, side
//             by side (run the program in a CPU quota to make the device slow).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "device/decision.h"
#include "device/device.h"

namespace {

using namespace tern::device;
using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

void decisionCost(size_t calls) {
  std::vector<Environment> envs = {{Where::kLocal, "local"}, {Where::kEdge, "e"}, {Where::kCloud, "c"}};
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  const double latency[] = {5.0, 2.0, 8.0};
  for (auto algorithm : {Algorithm::kUcb1, Algorithm::kBayesUcb}) {
    DecisionParams p;
    p.algorithm = algorithm;
    History h;
    size_t sink = 0;
    auto t0 = Clock::now();
    for (size_t k = 0; k < calls; ++k) {
      auto i = choose(envs, h, p, Force::kNone, true);
      sink += *i;
      record(h, *i, latency[*i] * noise(rng), p.window);
    }
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(calls);
    std::printf("decision %-9s %8.1f ns per call (choose + record, 3 environments, window %zu; %zu calls)\n",
                algorithm == Algorithm::kUcb1 ? "ucb1" : "bayes-ucb", ns, p.window, sink > 0 ? calls : 0);
  }
}

std::unique_ptr<Device> open(const std::string& edge, const std::string& token, const std::string& state, Policy policy) {
  DeviceOptions o;
  o.stateDir = state;
  o.edges = {edge};
  o.token = token;
  o.decision.policy = policy;
  auto d = Device::open(o);
  if (!d.ok()) {
    std::fprintf(stderr, "device: %s\n", d.error().message().c_str());
    std::exit(1);
  }
  return std::move(*d);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("device decision cost, local vs edge calls, policies on a mixed workload");
  std::string edge, token, state;
  size_t decisions = 1000000;
  int calls = 300, mixed = 100;
  app.add_option("--edge", edge, "the edge node's URL")->required();
  app.add_option("--token", token, "the node's token (to fetch functions)")->required();
  app.add_option("--state-dir", state, "the device's state directory")->required();
  app.add_option("--decisions", decisions, "decisions to time");
  app.add_option("--calls", calls, "local and edge calls to time");
  app.add_option("--mixed", mixed, "calls of the mixed workload per policy");
  CLI11_PARSE(app, argc, argv);

  decisionCost(decisions);

  for (auto [name, policy] : {std::pair{"local", Policy::kLocal}, {"edge", Policy::kEdge}}) {
    auto d = open(edge, token, state, policy);
    std::vector<double> ms;
    for (int k = 0; k < calls; ++k) {
      auto r = d->call("inc", "{\"n\":1}");
      if (!r.ok) {
        std::fprintf(stderr, "inc: %s\n", r.error ? r.error->message().c_str() : "failed");
        return 1;
      }
      if (k > 0) ms.push_back(r.ms);  // the first pays for getting the function ready
    }
    std::printf("inc on the %-5s p50 %8.3f ms  p99 %8.3f ms  (%d calls)\n", name, percentile(ms, 50), percentile(ms, 99),
                calls - 1);
  }

  std::filesystem::remove(std::filesystem::path(state) / "history.json");
  for (auto [name, policy] : {std::pair{"local", Policy::kLocal}, {"edge", Policy::kEdge}, {"adaptive", Policy::kAdaptive}}) {
    auto d = open(edge, token, state, policy);
    // Both functions ready before the clock starts.
    d->call("inc", "{}", Force::kLocal);
    d->call("work", "{}", Force::kLocal);
    double total = 0;
    int here = 0;
    for (int k = 0; k < mixed; ++k) {
      auto r = d->call(k % 2 ? "work" : "inc", "{\"n\":1}");
      if (!r.ok) {
        std::fprintf(stderr, "mixed: %s\n", r.error ? r.error->message().c_str() : "failed");
        return 1;
      }
      total += r.ms;
      here += r.where == Where::kLocal;
    }
    std::printf("mixed %-8s total %9.1f ms  (%d calls, %d on the device)\n", name, total, mixed, here);
  }
  return 0;
}
