// Direct links with mutual TLS between real ternd processes on a real nats-server
// (docs/design/tls.md, "Direct links"): two nodes with --tls-cert and --peer-ca forward
// calls over their TLS link; a plain node of the same site and a node whose certificate is
// not from the site's CA are refused a link, say so in their logs, and their calls still
// succeed through NATS. Which path a call took is read from
// tern_cluster_forward_sends_total{path=...}; every wait polls for that state.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cluster_fixture.h"
#include "http/http_client.h"
#include "http/tls.h"
#include "test_certs.h"
#include "test_support.h"
#include "util/error.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;

const std::string kDirect = "tern_cluster_forward_sends_total{path=\"direct\"}";
const std::string kViaNats = "tern_cluster_forward_sends_total{path=\"nats\"}";

class ClusterTlsTest : public test::ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    certs = std::make_unique<test::TestCerts>(dir.path() / "certs");
  }

  // A node of site-a; `tls`: the certificate it serves HTTPS and its direct links with
  // (peers checked against the test CA), or none for a plain node.
  std::unique_ptr<test::TerndProcess> node(const std::string& name, const test::CertPair* tls,
                                           std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--coap-listen", "off", "--cluster", nats->url(),
                                  "--cluster-secret-file", secret.string(), "--node-name", name,
                                  "--site", "site-a", "--heartbeat-ms", "100", "--member-ttl-ms",
                                  "1500", "--forward-timeout-ms", "20000"};
    if (tls) {
      args.insert(args.end(), {"--tls-cert", tls->cert.string(), "--tls-key", tls->key.string(),
                               "--peer-ca", certs->ca().string()});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<test::TerndProcess>(dir.path() / name, args);
  }

  // One request to a node, over HTTPS (verified against `ca`) or plain HTTP.
  http::HttpResponse call(const test::TerndProcess& n, const std::string& method,
                          const std::string& target, std::string body = {},
                          const std::filesystem::path* ca = nullptr) {
    auto url = http::parseNodeUrl(
        fmt::format("{}://127.0.0.1:{}", ca ? "https" : "http", n.port()));
    EXPECT_TRUE(url.ok());
    http::HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = std::move(body);
    req.headers.push_back({"Authorization", "Bearer " + n.token()});
    http::HttpClientOptions o;
    if (ca) {
      auto tls = http::loadClientTls(ca->string());
      EXPECT_TRUE(tls.ok());
      if (tls.ok()) o.tls = *tls;
    }
    auto r = http::sendHttp(*url, req, o);
    return r.ok() ? *r : http::HttpResponse{};
  }

  // The node that ran a call (X-Tern-Node), or "" when it failed.
  std::string ranOn(const test::TerndProcess& n, const std::filesystem::path* ca) {
    auto r = call(n, "POST", "/fn/work", "hi", ca);
    const std::string* node = r.header("x-tern-node");
    return r.status == 200 && r.body == "hi" && node ? *node : "";
  }

  double metric(const test::TerndProcess& n, const std::string& series,
                const std::filesystem::path* ca) {
    auto r = call(n, "GET", "/metrics", {}, ca);
    size_t at = r.body.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(r.body.substr(at + series.size() + 2));
  }

  std::unique_ptr<test::TestCerts> certs;
};

TEST_F(ClusterTlsTest, TlsNodesForwardOverTheirLinkAndOthersAreRefusedOne) {
  const auto ca = certs->ca(), otherCa = certs->otherCa();
  const auto nodeCert = certs->node(), foreignCert = certs->foreignNode();
  auto t1 = node("t1", &nodeCert);
  auto t2 = node("t2", &nodeCert, {"--labels", "role=w"});
  auto p1 = node("p1", nullptr);
  auto f1 = node("f1", &foreignCert);  // its certificate is from another CA
  ASSERT_TRUE(test::eventually([&] {
    auto r = call(*t1, "GET", "/v1/cluster/nodes", {}, &ca);
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("nodes") && j["nodes"].size() == 4;
  })) << call(*t1, "GET", "/v1/cluster/nodes", {}, &ca).body << "\nt1:\n" << t1->log()
      << "f1:\n" << f1->log();
  auto view = json::parse(call(*t1, "GET", "/v1/cluster/nodes", {}, &ca).body);
  for (const auto& m : view["nodes"]) {
    if (m["id"] == "t2") {
      EXPECT_TRUE(m["direct"].get<std::string>().starts_with("127.0.0.1:")) << view.dump();
      EXPECT_TRUE(m["direct_tls"].get<bool>()) << view.dump();
    }
    if (m["id"] == "p1") {
      EXPECT_FALSE(m["direct_tls"].get<bool>()) << view.dump();
    }
  }
  EXPECT_NE(t1->log().find("direct links (mutual TLS) from peers of site site-a"),
            std::string::npos)
      << t1->log();

  auto deployed = call(*t1, "PUT", "/v1/functions/work?label=role%3Dw",
                       test::readText(test::examplesDir() / "echo.wasm"), &ca);
  ASSERT_EQ(deployed.status, 201) << deployed.body;

  // Two TLS nodes of the site: the first call opens the link (and goes through NATS),
  // later ones take it.
  ASSERT_TRUE(test::eventually(
      [&] { return ranOn(*t1, &ca) == "t2" && metric(*t1, kDirect, &ca) >= 1; }));
  double direct = metric(*t1, kDirect, &ca), viaNats = metric(*t1, kViaNats, &ca);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ranOn(*t1, &ca), "t2");
  EXPECT_EQ(metric(*t1, kDirect, &ca), direct + 5);
  EXPECT_EQ(metric(*t1, kViaNats, &ca), viaNats);

  // A plain node never opens a link to a TLS one: it says why, and its calls take NATS.
  ASSERT_TRUE(test::eventually([&] { return ranOn(*p1, nullptr) == "t2"; }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ranOn(*p1, nullptr), "t2");
  EXPECT_EQ(metric(*p1, kDirect, nullptr), 0);
  EXPECT_GE(metric(*p1, kViaNats, nullptr), 4);
  EXPECT_NE(p1->log().find("no direct link to node t2 (127.0.0.1:"), std::string::npos)
      << p1->log();
  EXPECT_NE(p1->log().find("its direct links use TLS and this node's are plain"),
            std::string::npos)
      << p1->log();

  // A node whose certificate is not from the site's CA is refused by t2; its calls too
  // take NATS and succeed.
  ASSERT_TRUE(test::eventually([&] { return ranOn(*f1, &otherCa) == "t2"; }))
      << "f1:\n" << f1->log() << "t2:\n" << t2->log();
  ASSERT_TRUE(test::eventually([&] {
    return t2->log().find("refused: its certificate is not signed by the site's CA") !=
               std::string::npos &&
           f1->log().find("the peer did not accept the link") != std::string::npos;
  })) << t2->log()
      << f1->log();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ranOn(*f1, &otherCa), "t2");
  EXPECT_EQ(metric(*f1, kDirect, &otherCa), 0);
  EXPECT_GE(metric(*f1, kViaNats, &otherCa), 4);
}

TEST_F(ClusterTlsTest, PeerCaNeedsACertificateAndAReadableFile) {
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{(test::binDir() / "ternd").string(), "--data",
                                  (dir.path() / "bad").string(), "--listen", "127.0.0.1:0",
                                  "--coap-listen", "off"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = runSubprocess(argv, SubprocessOptions{std::chrono::seconds(60), 1 << 20, ""});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  };
  auto noCert = run({"--peer-ca", certs->ca().string()});
  EXPECT_EQ(noCert.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << noCert.output;
  EXPECT_NE(noCert.output.find("--peer-ca needs --tls-cert and --tls-key"), std::string::npos)
      << noCert.output;
  auto missing = (dir.path() / "missing-ca.pem").string();
  auto noFile = run({"--tls-cert", certs->node().cert.string(), "--tls-key",
                     certs->node().key.string(), "--peer-ca", missing});
  EXPECT_EQ(noFile.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << noFile.output;
  EXPECT_NE(noFile.output.find("--peer-ca: CA file \"" + missing + "\": cannot read it"),
            std::string::npos)
      << noFile.output;
}

}  // namespace
}  // namespace tern
