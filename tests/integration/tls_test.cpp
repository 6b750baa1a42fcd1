// TLS end to end, with throwaway certificates made at test time (test_certs.h): ternd
// serving HTTPS (a function, the management API, a wss:// stream), `tern --ca-file`,
// certificates that do not match refused with a clear error, plain HTTP and TLS sent to the
// wrong port answered clearly while other clients go on being served, an expired
// certificate refused saying so, and bad certificate or key files refused at start-up.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>
#include <thread>

#include "http/http_client.h"
#include "http/tls.h"
#include "http/websocket_client.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_certs.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

class TlsTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  test::TestCerts certs{dir.path() / "certs"};

  std::unique_ptr<test::TerndProcess> tlsNode(const std::string& name, const test::CertPair& pair) {
    return std::make_unique<test::TerndProcess>(
        dir.path() / name, std::vector<std::string>{"--coap-listen", "off", "--tls-cert",
                                                    pair.cert.string(), "--tls-key",
                                                    pair.key.string()});
  }

  static http::Url url(uint16_t port, bool tls) {
    auto u = http::parseNodeUrl(fmt::format("{}://127.0.0.1:{}", tls ? "https" : "http", port));
    EXPECT_TRUE(u.ok());
    return *u;
  }

  std::shared_ptr<const http::ClientTls> trusting(const std::filesystem::path& ca) {
    auto tls = http::loadClientTls(ca.string());
    EXPECT_TRUE(tls.ok()) << tls.error().message();
    return tls.ok() ? *tls : nullptr;
  }

  // One HTTPS request as curl would make it: the node verified against `ca`.
  Result<http::HttpResponse> https(const test::TerndProcess& node, const std::string& method,
                                   const std::string& target, std::string body = {},
                                   bool withToken = false) {
    http::HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = std::move(body);
    if (withToken) req.headers.push_back({"Authorization", "Bearer " + node.token()});
    http::HttpClientOptions o;
    o.tls = trusting(certs.ca());
    return http::sendHttp(url(node.port(), true), req, o);
  }

  static SubprocessResult tern(const std::string& nodeUrl, const std::string& token,
                               std::vector<std::string> args) {
    std::vector<std::string> argv{(test::binDir() / "tern").string(), "--node", nodeUrl,
                                  "--token", token};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(120);
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  }
};

TEST_F(TlsTest, ServesFunctionsAndTheApiOverHttpsToVerifiedClients) {
  auto node = tlsNode("node", certs.node());
  EXPECT_NE(node->log().find("serving on https://127.0.0.1:"), std::string::npos) << node->log();
  const std::string at = fmt::format("https://127.0.0.1:{}", node->port());
  const std::string ca = certs.ca().string();

  auto deployed = tern(at, node->token(),
                       {"--ca-file", ca, "deploy", "hello", (test::examplesDir() / "hello.wasm").string()});
  ASSERT_EQ(deployed.exitStatus, 0) << deployed.output;
  auto invoked = tern(at, node->token(), {"--ca-file", ca, "invoke", "hello"});
  EXPECT_EQ(invoked.exitStatus, 0) << invoked.output;
  EXPECT_NE(invoked.output.find("Hello from tern!"), std::string::npos) << invoked.output;

  auto fn = https(*node, "GET", "/fn/hello");
  ASSERT_TRUE(fn.ok()) << fn.error().message();
  EXPECT_EQ(fn->status, 200);
  EXPECT_EQ(fn->body, "Hello from tern!\n");
  auto listed = https(*node, "GET", "/v1/functions", "", true);
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  EXPECT_EQ(listed->status, 200);
  EXPECT_NE(listed->body.find("\"name\":\"hello\""), std::string::npos) << listed->body;
  // A device calls the function at an https:// edge, verified with the same CA.
  auto device = tern(at, node->token(),
                     {"--ca-file", ca, "device", "call", "hello", "--edge", at, "--policy", "edge",
                      "--state-dir", (dir.path() / "device").string()});
  EXPECT_EQ(device.exitStatus, 0) << device.output;
  EXPECT_NE(device.output.find(fmt::format("edge   https://127.0.0.1:{}", node->port())),
            std::string::npos)
      << device.output;
  EXPECT_NE(device.output.find(" ok\n"), std::string::npos) << device.output;
  auto untrustedDevice = tern(at, node->token(),
                              {"--ca-file", certs.otherCa().string(), "device", "call", "hello",
                               "--edge", at, "--policy", "edge", "--state-dir",
                               (dir.path() / "device2").string()});
  EXPECT_NE(untrustedDevice.output.find("not signed by a CA"), std::string::npos)
      << untrustedDevice.output;

  auto refused = https(*node, "GET", "/v1/functions");
  ASSERT_TRUE(refused.ok()) << refused.error().message();
  EXPECT_EQ(refused->status, 401) << "TLS does not replace the token";
}

TEST_F(TlsTest, CertificatesThatDoNotMatchAreRefusedSayingWhy) {
  auto node = tlsNode("node", certs.node());
  auto wrongHost = tlsNode("wrong-host", certs.wrongHost());
  const std::string at = fmt::format("https://127.0.0.1:{}", node->port());

  auto otherCa = tern(at, node->token(), {"--ca-file", certs.otherCa().string(), "status"});
  EXPECT_NE(otherCa.exitStatus, 0);
  EXPECT_NE(otherCa.output.find("certificate is not signed by a CA in the CA file \"" +
                                certs.otherCa().string() + "\""),
            std::string::npos)
      << otherCa.output;
  // Without --ca-file the system's CAs are used, which did not sign the test CA either.
  auto system = tern(at, node->token(), {"status"});
  EXPECT_NE(system.exitStatus, 0);
  EXPECT_NE(system.output.find("not signed by a CA in the system's trusted CAs"), std::string::npos)
      << system.output;

  auto host = tern(fmt::format("https://127.0.0.1:{}", wrongHost->port()), wrongHost->token(),
                   {"--ca-file", certs.ca().string(), "status"});
  EXPECT_NE(host.exitStatus, 0);
  EXPECT_NE(host.output.find("certificate does not match the host name \"127.0.0.1\""),
            std::string::npos)
      << host.output;

  // The same node serves a client that trusts the right CA, by address or by name.
  auto ok = tern(at, node->token(), {"--ca-file", certs.ca().string(), "status"});
  EXPECT_EQ(ok.exitStatus, 0) << ok.output;
  auto byName = tern(fmt::format("https://localhost:{}", node->port()), node->token(),
                     {"--ca-file", certs.ca().string(), "status"});
  EXPECT_EQ(byName.exitStatus, 0) << byName.output;
}

// A node serving a certificate that expired (valid only on 1 January 2020, signed by the
// CA the client trusts): `tern` refuses it with one line saying so, exit 81 (unavailable).
TEST_F(TlsTest, AnExpiredCertificateIsRefusedSayingItExpired) {
  auto node = tlsNode("expired", certs.expired());
  const std::string at = fmt::format("https://127.0.0.1:{}", node->port());
  auto r = tern(at, node->token(), {"--ca-file", certs.ca().string(), "status"});
  EXPECT_EQ(r.exitStatus, errorKind(ErrorCode::kUnavailable).exitStatus) << r.output;
  EXPECT_NE(r.output.find("certificate has expired"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  // The same CA's valid certificate on another node is accepted.
  auto valid = tlsNode("valid", certs.node());
  auto ok = tern(fmt::format("https://127.0.0.1:{}", valid->port()), valid->token(),
                 {"--ca-file", certs.ca().string(), "status"});
  EXPECT_EQ(ok.exitStatus, 0) << ok.output;
}

TEST_F(TlsTest, PlainHttpToTheTlsPortIsAnsweredWhileAStreamGoesOn) {
  auto node = tlsNode("node", certs.node());
  // A device on wss:// holds its stream open throughout.
  http::WebSocketClient device;
  auto connected = device.connect(url(node->port(), true), "/v1/streams",
                                  {{"Authorization", "Bearer " + node->token()}},
                                  std::chrono::seconds(30), trusting(certs.ca()));
  ASSERT_TRUE(connected.ok()) << connected.error().message();
  ASSERT_TRUE(device.send(R"({"type":"subscribe","stream":1,"topic":"news"})").ok());
  auto subscribed = device.receive(Clock::now() + std::chrono::seconds(60));
  ASSERT_EQ(subscribed.kind, http::WebSocketReceive::Kind::kMessage);
  EXPECT_EQ(json::parse(subscribed.text)["type"], "subscribed") << subscribed.text;

  // Plain HTTP to the TLS port: a plain-text 400 saying so, then the connection closes.
  auto plain = test::request(node->port(), "GET", "/healthz");
  EXPECT_EQ(plain.status, 400) << plain.raw;
  EXPECT_NE(plain.body.find("this port speaks HTTPS"), std::string::npos) << plain.raw;
  // tern's client turns that answer into an error that says what to do.
  auto viaClient = http::sendHttp(url(node->port(), false), {"GET", "/healthz", {}, ""}, {});
  ASSERT_FALSE(viaClient.ok());
  EXPECT_NE(viaClient.error().message().find(
                fmt::format("serves HTTPS, not plain HTTP: use https://127.0.0.1:{}", node->port())),
            std::string::npos)
      << viaClient.error().message();

  // The device was not disturbed: an update published over HTTPS reaches it.
  auto published = https(*node, "POST", "/v1/topics/news", R"({"n":1})", true);
  ASSERT_TRUE(published.ok()) << published.error().message();
  EXPECT_EQ(published->status, 200) << published->body;
  auto update = device.receive(Clock::now() + std::chrono::seconds(60));
  ASSERT_EQ(update.kind, http::WebSocketReceive::Kind::kMessage);
  auto frame = json::parse(update.text);
  EXPECT_EQ(frame["type"], "data") << update.text;
  EXPECT_EQ(frame["payload"], json::parse(R"({"n":1})")) << update.text;
  EXPECT_TRUE(device.close().ok());
}

TEST_F(TlsTest, TlsToAPlainPortIsClosedAndLoggedWhileAStreamGoesOn) {
  test::TerndProcess node(dir.path() / "plain", {"--coap-listen", "off"});
  http::WebSocketClient device;
  ASSERT_TRUE(device
                  .connect(url(node.port(), false), "/v1/streams",
                           {{"Authorization", "Bearer " + node.token()}}, std::chrono::seconds(30))
                  .ok());
  ASSERT_TRUE(device.send(R"({"type":"subscribe","stream":1,"topic":"news"})").ok());
  auto subscribed = device.receive(Clock::now() + std::chrono::seconds(60));
  ASSERT_EQ(subscribed.kind, http::WebSocketReceive::Kind::kMessage);

  http::HttpClientOptions o;
  o.tls = trusting(certs.ca());
  auto tls = http::sendHttp(url(node.port(), true), {"GET", "/healthz", {}, ""}, o);
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.error().message().find("does not speak TLS on this port"), std::string::npos)
      << tls.error().message();
  EXPECT_TRUE(test::eventually(
      [&] { return node.log().find("began a TLS handshake on port") != std::string::npos; }))
      << node.log();

  auto published = test::request(node.port(), "POST", "/v1/topics/news", R"({"n":2})", node.auth());
  EXPECT_EQ(published.status, 200) << published.raw;
  auto update = device.receive(Clock::now() + std::chrono::seconds(60));
  ASSERT_EQ(update.kind, http::WebSocketReceive::Kind::kMessage);
  EXPECT_EQ(json::parse(update.text)["payload"], json::parse(R"({"n":2})")) << update.text;
  EXPECT_TRUE(device.close().ok());
}

TEST_F(TlsTest, TernStreamSubscribeSpeaksWss) {
  auto node = tlsNode("node", certs.node());
  const std::string at = fmt::format("https://127.0.0.1:{}", node->port());
  const std::string ca = certs.ca().string();
  SubprocessResult subscribed;
  std::thread viewer([&] {
    subscribed = tern(at, node->token(),
                      {"--ca-file", ca, "stream", "subscribe", "alerts", "--count", "1", "--json"});
  });
  ASSERT_TRUE(test::eventually([&] {
    auto s = https(*node, "GET", "/v1/streams", "", true);
    return s.ok() && json::parse(s->body, nullptr, false).value("streams", 0) == 1;
  }));
  auto p = tern(at, node->token(), {"--ca-file", ca, "stream", "publish", "alerts", "--data", R"({"level":"high"})"});
  EXPECT_EQ(p.exitStatus, 0) << p.output;
  viewer.join();
  EXPECT_EQ(subscribed.exitStatus, 0) << subscribed.output;
  EXPECT_NE(subscribed.output.find(R"("payload":{"level":"high"})"), std::string::npos)
      << subscribed.output;

  // Without the CA, the subscription fails with the reason.
  auto untrusted = tern(at, node->token(), {"stream", "subscribe", "alerts", "--count", "1"});
  EXPECT_NE(untrusted.exitStatus, 0);
  EXPECT_NE(untrusted.output.find("certificate is not signed by a CA"), std::string::npos)
      << untrusted.output;
}

TEST_F(TlsTest, TerndRefusesToStartWithABadCertificateOrKey) {
  auto ternd = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{(test::binDir() / "ternd").string(), "--listen", "127.0.0.1:0",
                                  "--coap-listen", "off", "--data", (dir.path() / "refused").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(60);
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  };
  const std::string missing = (dir.path() / "missing.pem").string();
  auto r = ternd({"--tls-cert", missing, "--tls-key", certs.node().key.string()});
  EXPECT_NE(r.exitStatus, 0);
  EXPECT_FALSE(r.timedOut);
  EXPECT_NE(r.output.find("certificate file \"" + missing + "\": cannot read it"), std::string::npos)
      << r.output;

  r = ternd({"--tls-cert", certs.node().key.string(), "--tls-key", certs.node().key.string()});
  EXPECT_NE(r.exitStatus, 0);
  EXPECT_NE(r.output.find("holds no PEM certificate"), std::string::npos) << r.output;

  r = ternd({"--tls-cert", certs.node().cert.string(), "--tls-key", certs.wrongHost().key.string()});
  EXPECT_NE(r.exitStatus, 0);
  EXPECT_NE(r.output.find("key file \"" + certs.wrongHost().key.string() +
                          "\": does not match the certificate"),
            std::string::npos)
      << r.output;

  r = ternd({"--tls-cert", certs.node().cert.string()});
  EXPECT_NE(r.exitStatus, 0);
  EXPECT_NE(r.output.find("--tls-cert and --tls-key go together"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tern
