#pragma once
// A fixture for tests of a tern cluster: a real nats-server (JetStream) on loopback, the
// cluster secret in a file, nodes started with the flags every test cluster uses, and
// reading a node's metrics.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "nats_process.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern::test {

class ClusterFixture : public ::testing::Test {
 protected:
  static constexpr const char* kSecret = "0123456789abcdef0123456789abcdef";

  TempDir dir;
  std::unique_ptr<NatsProcess> nats;
  std::filesystem::path secret;

  void SetUp() override {
    nats = std::make_unique<NatsProcess>(dir.path() / "nats");
    secret = dir.path() / "cluster.secret";
    std::ofstream(secret) << kSecret << "\n";
  }

  // Starts node `name` (data under dir/name) in the cluster at `url` (empty: this
  // fixture's nats-server) with the secret, CoAP off and 100 ms heartbeats, then `extra`.
  std::unique_ptr<TerndProcess> startNode(const std::string& name,
                                          const std::vector<std::string>& extra = {},
                                          const std::string& url = "") const {
    std::vector<std::string> args{"--coap-listen",         "off",
                                  "--cluster",             url.empty() ? nats->url() : url,
                                  "--cluster-secret-file", secret.string(),
                                  "--node-name",           name,
                                  "--heartbeat-ms",        "100"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<TerndProcess>(dir.path() / name, args);
  }

  // The value of one series of the node's /metrics (e.g. `name{label="x"}`), -1 if absent.
  static double metric(TerndProcess& n, const std::string& series) { return n.metric(series); }
};

}  // namespace tern::test
