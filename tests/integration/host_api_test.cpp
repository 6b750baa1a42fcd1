// The "tern" host API through a real ternd: guests built with the SDKs (tests/guests/
// host_api.c, kv_counter.rs) call kv, publish, stream_publish, invoke and log over real HTTP
// invocations.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern {
namespace {

using test::HttpReply;
using test::request;

std::string guest(const char* name) {
  auto b = test::readFile(test::guestsDir() / (std::string(name) + ".wasm"));
  return std::string(b.begin(), b.end());
}

class HostApiTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  test::TerndProcess node{dir.path() / "data"};

  // Deploys compile; on a loaded machine a Rust guest takes a while, so the client waits
  // longer than request()'s default before giving up.
  HttpReply deploy(const std::string& name, const std::string& wasm, const std::string& query) {
    std::string raw = "PUT /v1/functions/" + name + query + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : node.auth()) raw += k + ": " + v + "\r\n";
    raw += "Content-Length: " + std::to_string(wasm.size()) + "\r\nConnection: close\r\n\r\n";
    return test::sendRaw(node.port(), raw + wasm, 120000);
  }
  void deployOk(const std::string& name, const std::string& query,
                const char* module = "host_api") {
    auto r = deploy(name, guest(module), query);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // The body of invoking `name` with `command` as its request.
  std::string call(const std::string& name, const std::string& command) {
    auto r = request(node.port(), "POST", "/fn/" + name, command);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }
  std::string logs(const std::string& name) {
    return request(node.port(), "GET", "/v1/functions/" + name + "/logs", "", node.auth()).body;
  }
};

TEST_F(HostApiTest, KvRoundTripSurvivesRestartAndGoesWithTheFunction) {
  deployOk("store", "?allow=kv");
  EXPECT_EQ(call("store", "version"), "2\n");
  EXPECT_EQ(call("store", "set user/1 Ada Lovelace"), "ok\n");
  EXPECT_EQ(call("store", "set user/2 Grace"), "ok\n");
  EXPECT_EQ(call("store", "set other x"), "ok\n");
  EXPECT_EQ(call("store", "get user/1"), "Ada Lovelace\n");
  EXPECT_EQ(call("store", "list user/"), "user/1\nuser/2\n");
  EXPECT_EQ(call("store", "list user/ user/1"), "user/2\n");
  EXPECT_EQ(call("store", "del user/2"), "ok\n");
  EXPECT_EQ(call("store", "del user/2").rfind("not_found: ", 0), 0u);
  EXPECT_EQ(call("store", "get user/2"), "not_found: no such key\n");

  // Another function has its own namespace.
  deployOk("other", "?allow=kv");
  EXPECT_EQ(call("other", "get user/1"), "not_found: no such key\n");

  ASSERT_EQ(node.terminate(), 0);
  node.restart();
  EXPECT_EQ(call("store", "get user/1"), "Ada Lovelace\n");
  node.kill9();
  node.restart();
  EXPECT_EQ(call("store", "get other"), "x\n");

  // Removing the function removes its state: deployed again, it starts empty.
  ASSERT_EQ(request(node.port(), "DELETE", "/v1/functions/store", "", node.auth()).status, 200);
  deployOk("store", "?allow=kv");
  EXPECT_EQ(call("store", "get user/1"), "not_found: no such key\n");
  EXPECT_EQ(call("store", "list"), "");
}

TEST_F(HostApiTest, RustGuestCountsInKvAndLogs) {
  deployOk("counter", "?allow=kv", "kv_counter");
  EXPECT_EQ(call("counter", ""), "count=1 seen=1\n");
  EXPECT_EQ(call("counter", ""), "count=2 seen=2\n");
  EXPECT_EQ(call("counter", "visits"), "visits=1 seen=2\n");
  EXPECT_NE(logs("counter").find("[info] count is now 2"), std::string::npos) << logs("counter");

  // Without the capability the SDK's Result carries the denial.
  deployOk("nokv", "", "kv_counter");
  std::string out = call("nokv", "");
  EXPECT_EQ(out.rfind("error denied: key-value state needs the \"kv\" capability", 0), 0u) << out;
  EXPECT_NE(logs("nokv").find("[error] denied: "), std::string::npos) << logs("nokv");
}

TEST_F(HostApiTest, EachCallKindIsDeniedOutsideTheCapabilities) {
  deployOk("bare", "");
  const std::string kvDenied =
      "denied: key-value state needs the \"kv\" capability (granted: none)\n";
  EXPECT_EQ(call("bare", "set k v"), kvDenied);
  EXPECT_EQ(call("bare", "get k"), kvDenied);
  EXPECT_EQ(call("bare", "del k"), kvDenied);
  EXPECT_EQ(call("bare", "list"), kvDenied);
  EXPECT_EQ(call("bare", "publish alerts/x hi"),
            "denied: publishing to topic \"alerts/x\" needs a \"publish:TOPIC_FILTER\" "
            "capability (granted: none)\n");
  EXPECT_EQ(call("bare", "invoke bare version"),
            "denied: invoking function \"bare\" needs an \"invoke:NAME\" capability (granted: "
            "none)\n");
  EXPECT_EQ(call("bare", "log 2 logging needs no grant"), "ok\n");

  deployOk("scoped", "?allow=publish:alerts/%23&allow=invoke:bare&allow=log");
  EXPECT_EQ(call("scoped", "publish x/y hi"),
            "denied: capability \"publish:alerts/#\" does not cover topic \"x/y\"\n");
  EXPECT_EQ(call("scoped", "invoke scoped version"),
            "denied: capability \"invoke:bare\" does not cover function \"scoped\"\n");
  EXPECT_EQ(call("scoped", "invoke bare version"), "2\n");
  EXPECT_EQ(call("scoped", "set k v").rfind("denied: ", 0), 0u);

  // Denials are in the function's log; the level-tagged line too.
  std::string log = logs("bare");
  EXPECT_NE(log.find("[tern] denied: key-value state needs the \\\"kv\\\" capability"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("[warn] logging needs no grant"), std::string::npos) << log;
  EXPECT_NE(logs("scoped").find(
                "[tern] denied: capability \\\"publish:alerts/#\\\" does not cover topic"),
            std::string::npos);
}

TEST_F(HostApiTest, InvalidCapabilitiesAndSignaturesAreRefusedAtDeploy) {
  auto bad = deploy("h", guest("host_api"), "?allow=kv&allow=network");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("invalid capability \\\"network\\\": unknown kind"), std::string::npos)
      << bad.body;
  auto badFilter = deploy("h", guest("host_api"), "?allow=publish:a/%23/b");
  EXPECT_EQ(badFilter.status, 400) << badFilter.body;
  EXPECT_EQ(request(node.port(), "GET", "/fn/h").status, 404);  // nothing was recorded

  auto wrongSignature = test::wat(R"((module
    (import "tern" "kv_get" (func (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start"))))");
  auto r = deploy("h", std::string(wrongSignature.begin(), wrongSignature.end()), "?allow=kv");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("\"code\":\"invalid_module\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("import tern.kv_get has signature i:i, the host provides iiiii:i"),
            std::string::npos)
      << r.body;
  auto unknown = test::wat(R"((module
    (import "tern" "sql_query" (func (param i32 i32) (result i32)))
    (func (export "_start"))))");
  r = deploy("h", std::string(unknown.begin(), unknown.end()), "");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("unknown import tern.sql_query"), std::string::npos) << r.body;
}

TEST_F(HostApiTest, OversizedValuesAreRefused) {
  deployOk("big", "?allow=kv");
  EXPECT_EQ(call("big", "big 1048577"),
            "too_large: the value is 1048577 bytes, the limit is 1048576\n");
  EXPECT_EQ(call("big", "get big"), "not_found: no such key\n");
  EXPECT_EQ(call("big", "big 1048576"), "ok\n");
  std::string value = call("big", "get big");
  EXPECT_EQ(value.size(), 1048577u);  // the value and a newline, read after a retry
  std::string longKey(513, 'k');
  EXPECT_EQ(call("big", "set " + longKey + " v"),
            "too_large: the key is 513 bytes, the limit is 512\n");
}

TEST_F(HostApiTest, InvokeChainsThreeDeepAndRecordsEachCallee) {
  deployOk("a", "?allow=invoke:b&env=NEXT=b&env=ME=a");
  deployOk("b", "?allow=invoke:c&env=NEXT=c&env=ME=b");
  deployOk("c", "?allow=invoke:d&env=NEXT=d&env=ME=c");
  deployOk("d", "?env=ME=d");
  EXPECT_EQ(call("a", "forward"), "a(b(c(leaf)))\n");
  // Each callee's invocation is in its own log, and it knows its caller.
  for (const char* fn : {"b", "c", "d"}) {
    EXPECT_NE(logs(fn).find("\"outcome\":\"ok\""), std::string::npos) << fn << logs(fn);
  }
  deployOk("asker", "?allow=invoke:d");
  EXPECT_EQ(call("asker", "invoke d caller"), "asker\n");
  EXPECT_EQ(call("d", "caller"), "-\n");
}

TEST_F(HostApiTest, ACycleEndsAtTheDepthLimit) {
  deployOk("ping", "?allow=invoke:pong&env=NEXT=pong&env=ME=ping");
  deployOk("pong", "?allow=invoke:ping&env=NEXT=ping&env=ME=pong");
  std::string out = call("ping", "forward");
  // Nine invocations run (depths 0..8); the one at depth 8 is refused its invoke and says
  // so, and the eight above it wrap its answer.
  EXPECT_EQ(out.rfind("ping(pong(ping(pong(ping(pong(ping(pong(depth_exceeded: invoking "
                      "\"pong\" would nest 9 invokes deep, the limit is 8",
                      0),
            0u)
      << out;
}

TEST_F(HostApiTest, InvokeOfAMissingFunction) {
  deployOk("caller", "?allow=invoke:*");
  EXPECT_EQ(call("caller", "invoke ghost x"), "not_found: no function named \"ghost\"\n");
}

TEST_F(HostApiTest, CalleeFailuresAndTimeouts) {
  auto sleeper = guest("sleeper");
  ASSERT_EQ(deploy("nap", sleeper, "?env=SLEEP_MS=3000&timeout_ms=100").status, 201);
  deployOk("boss", "?allow=invoke:*");
  // The callee's own timeout ends it; the caller carries on.
  std::string out = call("boss", "invoke nap");
  EXPECT_EQ(out.rfind("timeout: function \"nap\" (invocation ", 0), 0u) << out;
  EXPECT_NE(out.find("(its own timeout)"), std::string::npos) << out;
  EXPECT_NE(logs("nap").find("\"outcome\":\"timeout\""), std::string::npos);

  // The caller's deadline bounds a callee whose own timeout is longer: both end.
  ASSERT_EQ(deploy("long-nap", sleeper, "?env=SLEEP_MS=10000&timeout_ms=20000").status, 201);
  deployOk("hasty", "?allow=invoke:long-nap&timeout_ms=2000");
  auto r = request(node.port(), "POST", "/fn/hasty", "invoke long-nap");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(logs("long-nap").find("\"outcome\":\"timeout\""), std::string::npos)
      << logs("long-nap");
  EXPECT_NE(logs("hasty").find("\"outcome\":\"timeout\""), std::string::npos);

  // A callee that exits non-zero or traps fails with the reason.
  auto example = [](const char* name) {
    auto b = test::readFile(test::examplesDir() / (std::string(name) + ".wasm"));
    return std::string(b.begin(), b.end());
  };
  ASSERT_EQ(deploy("exit3", example("exit3"), "").status, 201);
  ASSERT_EQ(deploy("divzero", example("divzero"), "").status, 201);
  out = call("boss", "invoke exit3");
  EXPECT_EQ(out.rfind("failed: function \"exit3\" (invocation ", 0), 0u) << out;
  EXPECT_NE(out.find("exited with code 3"), std::string::npos) << out;
  out = call("boss", "invoke divzero");
  EXPECT_NE(out.find("failed: trap: integer divide by zero"), std::string::npos) << out;
}

TEST_F(HostApiTest, OutOfBoundsPointersAreRejectedAndTheNodeCarriesOn) {
  deployOk("wild", "?allow=kv&allow=invoke:*&allow=publish:%23&allow=stream:*");
  std::string out = call("wild", "bad-pointers");
  EXPECT_EQ(out.substr(0, out.find('\n')),
            "fault fault fault fault fault fault fault fault fault fault fault fault fault fault ")
      << out;
  EXPECT_NE(out.find("last_error(bad buffer)=-1"), std::string::npos) << out;
  EXPECT_NE(out.find("lie outside linear memory"), std::string::npos) << out;
  // Nothing was written and the node still serves.
  EXPECT_EQ(call("wild", "list"), "");
  EXPECT_EQ(call("wild", "set k v"), "ok\n");
  EXPECT_EQ(call("wild", "get k"), "v\n");
}

TEST_F(HostApiTest, PublishWithoutABrokerIsUnavailable) {
  deployOk("pub", "?allow=publish:alerts/%23");
  EXPECT_EQ(call("pub", "publish alerts/fire smoke"),
            "unavailable: no MQTT broker configured on this node\n");
  EXPECT_EQ(call("pub", "publish alerts/+ smoke").rfind("invalid_argument: ", 0), 0u);
}

// stream_publish appends to the node's topic: what GET /v1/topics/T shows, with the
// sequence numbers the calls returned.
TEST_F(HostApiTest, StreamPublishAppendsToATopicWithinTheCapability) {
  deployOk("feeder", "?allow=stream:readings");
  EXPECT_EQ(call("feeder", "stream readings {\"celsius\":21.5}"), "1\n");
  EXPECT_EQ(call("feeder", "stream readings warm"), "2\n");
  auto r = request(node.port(), "GET", "/v1/topics/readings?after=0", "", node.auth());
  ASSERT_EQ(r.status, 200) << r.body;
  auto topic = nlohmann::json::parse(r.body);
  EXPECT_EQ(topic["last_seq"], 2) << r.body;
  ASSERT_EQ(topic["updates"].size(), 2u) << r.body;
  EXPECT_EQ(topic["updates"][0]["seq"], 1);
  EXPECT_EQ(topic["updates"][0]["payload"], nlohmann::json({{"celsius", 21.5}}));
  EXPECT_EQ(topic["updates"][1]["seq"], 2);
  EXPECT_EQ(topic["updates"][1]["payload"], "warm");

  // Other topics are outside the grant; a function without one is denied any topic.
  EXPECT_EQ(call("feeder", "stream alerts x"),
            "denied: capability \"stream:readings\" does not cover stream topic \"alerts\"\n");
  deployOk("mqtt-only", "?allow=publish:%23");
  EXPECT_EQ(call("mqtt-only", "stream readings x"),
            "denied: publishing to stream topic \"readings\" needs a \"stream:TOPIC\" "
            "capability (granted: publish:#)\n");
  EXPECT_NE(logs("mqtt-only").find("[tern] denied: publishing to stream topic"), std::string::npos);

  // The topic's own rules: a name, UTF-8.
  EXPECT_EQ(call("feeder", "stream sensors/k1 x").rfind("invalid_argument: stream topic "
                                                        "\"sensors/k1\" is not a topic name",
                                                        0),
            0u);
  EXPECT_EQ(call("feeder", "stream-binary readings").rfind("invalid_argument: an update must be UTF-8", 0),
            0u);

  // stream:* covers every topic; nothing refused above was appended.
  deployOk("any", "?allow=stream:*");
  EXPECT_EQ(call("any", "stream alerts {}"), "1\n");
  EXPECT_EQ(call("any", "stream readings 3"), "3\n");
  r = request(node.port(), "GET", "/v1/topics/readings?after=2", "", node.auth());
  ASSERT_EQ(r.status, 200) << r.body;
  topic = nlohmann::json::parse(r.body);
  ASSERT_EQ(topic["updates"].size(), 1u) << r.body;
  EXPECT_EQ(topic["updates"][0]["payload"], 3);
}

}  // namespace
}  // namespace tern
