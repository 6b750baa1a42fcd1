#pragma once
// A fixture for tests of a tern cluster: a real nats-server (JetStream) on loopback, the
// cluster secret in a file, and reading a node's metrics. Tests start their ternd nodes
// with the flags they need (nats->url(), secret).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

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

  // The value of one series of the node's /metrics (e.g. `name{label="x"}`), -1 if absent.
  static double metric(TerndProcess& n, const std::string& series) { return n.metric(series); }
};

}  // namespace tern::test
