// Devices against a real ternd: `tern device call` runs each call here or at the edge as
// its policy decides. A light function stays mostly on the device; a compute-heavy one on
// a slow device (a CPU quota of 2% on the device's process, cgroup v1) goes mostly to
// the edge; forced policies are honoured; a killed edge leaves every later call running
// locally from the state directory; a damaged state directory is set aside or refetched,
// a module that does not match its hash never runs, and edges that hang, answer garbage
// or errors are charged while the calls run here.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>

#include "delay_proxy.h"
#include "device/device.h"
#include "fake_http.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"
#include "wasm/compiler.h"

#include "tern/device.h"

extern "C" int device_c_client(const char* state_dir, const char* edge, const char* token, tern_policy policy,
                               const char* input, char* output, size_t output_len, char* error, size_t error_len);

namespace tern {
namespace {

using json = nlohmann::json;

struct Calls {
  int exitStatus = -1;
  std::string output;
  std::vector<json> lines;  // one per call
  json summary;
  std::map<std::string, int> where;
  int fallbacks = 0, ok = 0;
};

class DeviceTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<test::TerndProcess> node = std::make_unique<test::TerndProcess>(dir.path() / "edge");

  void SetUp() override {
    deploy("inc", "?env=OP=inc");
    deploy("work", "?env=OP=work&env=WORK_ITERS=10000000");
  }
  void deploy(const std::string& name, const std::string& query) {
    auto r = test::request(node->port(), "PUT", "/v1/functions/" + name + query,
                           test::readText(test::guestsDir() / "wf_step.wasm"), node->auth());
    ASSERT_EQ(r.status, 201) << r.body;
  }
  std::string edge() const { return "http://127.0.0.1:" + std::to_string(node->port()); }
  // The device of `tern device call` (its state directory), through the C++ API, calls
  // forced here.
  device::DeviceOptions localDevice() {
    device::DeviceOptions o;
    o.stateDir = dir.path() / "device";
    o.edges = {edge()};
    o.token = token_;
    o.decision.policy = device::Policy::kLocal;
    return o;
  }
  // A device that moves between `edges`, with the edge policy and a probe every
  // `probeEvery` calls.
  device::DeviceOptions mobileDevice(std::vector<std::string> edges, uint32_t probeEvery) {
    device::DeviceOptions o;
    o.stateDir = dir.path() / "mobile";
    o.edges = std::move(edges);
    o.token = token_;
    o.decision.policy = device::Policy::kEdge;
    o.probeEvery = probeEvery;
    return o;
  }
  // How many entries of a device's state of `function` node `n` holds (-1: unreadable).
  static int storedEntries(test::TerndProcess& n, const std::string& device, const std::string& function) {
    auto r = test::request(n.port(), "GET", "/v1/devices/" + device + "/state/" + function, "", n.auth());
    json j = json::parse(r.body, nullptr, false);
    return r.status == 200 && j.contains("entries") ? static_cast<int>(j["entries"].size()) : -1;
  }
  // A second edge node with the same admin token (one deployment's nodes), serving the
  // key-value counter as the first one does.
  std::unique_ptr<test::TerndProcess> secondEdgeWithCounter() {
    auto data = dir.path() / "edge-b";
    std::filesystem::create_directories(data);
    {
      std::ofstream(data / "admin.token") << token_ << "\n";
    }
    std::filesystem::permissions(data / "admin.token", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    auto b = std::make_unique<test::TerndProcess>(data);
    auto counter = test::readText(test::guestsDir() / "kv_counter.wasm");
    EXPECT_EQ(test::request(node->port(), "PUT", "/v1/functions/counter?allow=kv", counter, node->auth()).status, 201);
    EXPECT_EQ(test::request(b->port(), "PUT", "/v1/functions/counter?allow=kv", counter, b->auth()).status, 201);
    return b;
  }

  // `tern --json device call ARGS --state-dir <dir>/device`, in `cgroup` when given.
  Calls device(std::vector<std::string> args, const std::string& cgroup = "") {
    std::vector<std::string> argv{(test::binDir() / "tern").string(), "--json", "--token", token_, "device", "call"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--state-dir");
    argv.push_back((dir.path() / "device").string());
    if (!cgroup.empty()) {
      // The shell joins the cgroup, then becomes tern.
      std::string line = "echo $$ > " + cgroup + "/cgroup.procs && exec";
      for (const auto& a : argv) line += " '" + a + "'";
      argv = {"/bin/sh", "-c", line};
    }
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(300);
    so.maxOutputBytes = 16u << 20;
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok());
    Calls c;
    if (!r.ok()) return c;
    c.exitStatus = r->exitStatus;
    c.output = r->output;
    std::istringstream in(r->output);
    for (std::string l; std::getline(in, l);) {
      json j = json::parse(l, nullptr, false);
      if (!j.is_object()) continue;
      if (j.contains("summary")) {
        c.summary = j["summary"];
        continue;
      }
      c.lines.push_back(j);
      ++c.where[j.value("where", "")];
      c.fallbacks += j.value("fallback", false);
      c.ok += j.value("ok", false);
    }
    return c;
  }
  std::string token_ = node->token();
};

TEST_F(DeviceTest, ALightFunctionStaysMostlyLocalAndForcedPoliciesAreHonoured) {
  auto adaptive = device({"inc", "--edge", edge(), "--count", "60", "--data", R"({"n": 1})"});
  ASSERT_EQ(adaptive.exitStatus, 0) << adaptive.output;
  ASSERT_EQ(adaptive.lines.size(), 60u) << adaptive.output;
  EXPECT_EQ(adaptive.ok, 60);
  // The network costs more than the work: after trying both, the device keeps it.
  EXPECT_GE(adaptive.where["local"], 45) << adaptive.output;
  EXPECT_GE(adaptive.where["edge"], 1) << adaptive.output;
  // What it learned is kept per function, for the next process.
  json history = json::parse(test::readText(dir.path() / "device" / "history.json"), nullptr, false);
  ASSERT_TRUE(history.is_object()) << test::readText(dir.path() / "device" / "history.json");
  ASSERT_TRUE(history["functions"].contains("inc")) << history.dump();
  EXPECT_FALSE(history["functions"].contains("work")) << history.dump();
  EXPECT_EQ(history["functions"]["inc"][0]["where"], "local");
  EXPECT_EQ(history["functions"]["inc"][0]["total"].get<int>(), adaptive.where["local"]);

  auto edgeOnly = device({"inc", "--edge", edge(), "--policy", "edge", "--count", "5", "--data", "{}"});
  EXPECT_EQ(edgeOnly.exitStatus, 0) << edgeOnly.output;
  EXPECT_EQ(edgeOnly.where["edge"], 5) << edgeOnly.output;
  EXPECT_EQ(edgeOnly.lines.at(0)["node"], edge());
  auto localOnly = device({"inc", "--edge", edge(), "--policy", "local", "--count", "5", "--data", "{}"});
  EXPECT_EQ(localOnly.exitStatus, 0) << localOnly.output;
  EXPECT_EQ(localOnly.where["local"], 5) << localOnly.output;
  ASSERT_TRUE(localOnly.summary.is_array());
  EXPECT_EQ(localOnly.summary.at(0)["calls"], 5);
  // A policy whose kind is not configured: a clear error for every call.
  auto noCloud = device({"inc", "--edge", edge(), "--policy", "cloud", "--count", "2", "--data", "{}"});
  EXPECT_NE(noCloud.exitStatus, 0);
  EXPECT_EQ(noCloud.ok, 0);
  EXPECT_NE(noCloud.output.find("no environment the policy allows"), std::string::npos) << noCloud.output;
  // Bad options.
  auto bad = device({"inc", "--edge", "ftp://x", "--count", "1"});
  EXPECT_NE(bad.exitStatus, 0);
  auto unknown = device({"nope", "--edge", edge(), "--count", "1", "--data", "{}"});
  EXPECT_NE(unknown.exitStatus, 0) << unknown.output;
  // The issue's spelling: options after the command, --json last, input from a file.
  std::ofstream(dir.path() / "in.json") << R"({"n": 7})";
  SubprocessOptions so;
  so.timeout = std::chrono::seconds(120);
  auto spelled = runSubprocess({(test::binDir() / "tern").string(), "--token", token_, "device", "call", "inc",
                                "--edge", edge(), "--policy", "local", "--count", "2", "--interval-ms", "1",
                                "--input-file", (dir.path() / "in.json").string(), "--state-dir",
                                (dir.path() / "device").string(), "--json"}, so);
  ASSERT_TRUE(spelled.ok());
  EXPECT_EQ(spelled->exitStatus, 0) << spelled->output;
  EXPECT_NE(spelled->output.find(R"("seq":2)"), std::string::npos) << spelled->output;
  EXPECT_NE(spelled->output.find(R"("summary")"), std::string::npos) << spelled->output;
  auto both = device({"inc", "--edge", edge(), "--data", "{}", "--input-file", (dir.path() / "in.json").string()});
  EXPECT_NE(both.exitStatus, 0);
  EXPECT_NE(both.output.find("not both"), std::string::npos) << both.output;
  // The module route: unknown function, wrong method, no token.
  EXPECT_EQ(test::request(node->port(), "GET", "/v1/functions/nope/module", "", node->auth()).status, 404);
  auto post = test::request(node->port(), "POST", "/v1/functions/inc/module", "", node->auth());
  EXPECT_EQ(post.status, 405);  // the route table's answer to a method a route has not
  EXPECT_EQ(post.headers["allow"], "GET");
  EXPECT_NE(post.body.find("POST is not allowed on /v1/functions/inc/module"), std::string::npos) << post.body;
  EXPECT_EQ(test::request(node->port(), "GET", "/v1/functions/inc/module").status, 401);
  auto module = test::request(node->port(), "GET", "/v1/functions/inc/module", "", node->auth());
  EXPECT_EQ(module.status, 200);
  EXPECT_EQ(module.body, test::readText(test::guestsDir() / "wf_step.wasm"));
  // A name that would reach outside the state directory.
  auto escape = device({"../escape", "--edge", edge(), "--count", "1", "--data", "{}"});
  EXPECT_NE(escape.exitStatus, 0) << escape.output;
  EXPECT_NE(escape.output.find("invalid function name"), std::string::npos) << escape.output;
  // A stored record whose fields are of the wrong types is refused, not trusted.
  std::ofstream(dir.path() / "device" / "functions" / "inc.json")
      << R"({"module_sha256": 7, "memory_mb": "lots", "env": "x"})";
  auto garbled = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", R"({"n": 1})"});
  EXPECT_EQ(garbled.exitStatus, 0) << garbled.output;  // fetched again from the edge
}

TEST_F(DeviceTest, AHeavyFunctionOnASlowDeviceGoesMostlyToTheEdge) {
  const std::filesystem::path root = "/sys/fs/cgroup/cpu";
  if (::geteuid() != 0 || !std::filesystem::exists(root / "cpu.cfs_quota_us")) {
    GTEST_SKIP() << "needs root and the cgroup v1 cpu controller to slow the device down";
  }
  // The device gets 2% of one CPU: the function's fixed work takes about fifty times as long
  // there as on an idle node. The gap must stay wide when the machine is busy, because the
  // node then slows down while the device's share cannot grow: at 10%, with two other
  // processes burning the CPUs, the edge was only about twice as fast, and UCB1 rightly
  // kept trying the device for nearly half the calls.
  std::filesystem::path cg = root / ("tern-device-test-" + std::to_string(::getpid()));
  std::filesystem::create_directory(cg);
  std::ofstream(cg / "cpu.cfs_period_us") << 50000;
  std::ofstream(cg / "cpu.cfs_quota_us") << 1000;
  // The function is fetched outside the quota: getting it ready is no call's latency, but
  // compiling it at 2% would take long.
  auto warm = device({"work", "--edge", edge(), "--policy", "local", "--count", "1", "--data", "{}"});
  ASSERT_EQ(warm.exitStatus, 0) << warm.output;
  std::filesystem::remove(dir.path() / "device" / "history.json");
  auto slow = device({"work", "--edge", edge(), "--count", "40", "--data", R"({"n": 2})"}, cg.string());
  std::filesystem::remove(cg);
  ASSERT_EQ(slow.exitStatus, 0) << slow.output;
  EXPECT_EQ(slow.ok, 40);
  EXPECT_GE(slow.where["edge"], 26) << slow.output;
  EXPECT_GE(slow.where["local"], 1) << slow.output;
}

// A new version on the node (here only its settings change) is what the device runs next.
TEST_F(DeviceTest, ANewVersionOnTheNodeReplacesTheOneOnTheDevice) {
  auto first = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", R"({"n": 1})"});
  ASSERT_EQ(first.exitStatus, 0) << first.output;
  deploy("inc", "?env=OP=tag&env=TAG=v2");
  // The output is not printed by the command; run it through the C++ API.
  device::DeviceOptions o = localDevice();
  auto d = device::Device::open(o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  auto c = (*d)->call("inc", R"({"n": 1})");
  ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
  EXPECT_EQ(c.where, device::Where::kLocal);
  EXPECT_EQ(json::parse(c.output), (json{{"tag", "v2"}, {"n", 1}})) << c.output;
}

TEST_F(DeviceTest, AKilledEdgeLeavesEveryCallRunningLocallyAndBadStateIsNeverRun) {
  auto first = device({"inc", "--edge", edge(), "--count", "4", "--data", R"({"n": 1})"});
  ASSERT_EQ(first.exitStatus, 0) << first.output;
  node->kill9();
  // The function and its settings are in the state directory: the device keeps working.
  auto offline = device({"inc", "--edge", edge(), "--policy", "edge", "--count", "5", "--timeout-ms", "2000", "--data", "{}"});
  EXPECT_EQ(offline.exitStatus, 0) << offline.output;
  EXPECT_EQ(offline.ok, 5) << offline.output;
  EXPECT_EQ(offline.where["local"], 5) << offline.output;
  EXPECT_EQ(offline.fallbacks, 5) << offline.output;
  // Adaptive: the failures are charged to the edge, which soon stops being chosen.
  auto adaptive = device({"inc", "--edge", edge(), "--count", "20", "--timeout-ms", "2000", "--data", "{}"});
  EXPECT_EQ(adaptive.exitStatus, 0) << adaptive.output;
  EXPECT_EQ(adaptive.ok, 20) << adaptive.output;

  // A history, a hand-over list or an identity that does not parse is set aside, and the
  // device starts afresh (a new identity); a node that cannot say the cluster's nodes
  // leaves a warning, not an error.
  std::string identity = test::readText(dir.path() / "device" / "device.id");
  std::ofstream(dir.path() / "device" / "history.json") << "{not json";
  std::ofstream(dir.path() / "device" / "moves.json") << R"({"format": 1, "moves": 7})";
  std::ofstream(dir.path() / "device" / "device.id") << "../../etc/passwd\n";
  auto fresh = device({"inc", "--edge", edge(), "--discover", "http://127.0.0.1:1", "--policy", "local", "--count",
                       "1", "--data", "{}"});
  EXPECT_EQ(fresh.exitStatus, 0) << fresh.output;
  for (const char* file : {"history.json could not be read", "moves.json could not be read",
                           "device.id could not be read", "cannot learn the cluster's nodes from"}) {
    EXPECT_NE(fresh.output.find(file), std::string::npos) << file << " in:\n" << fresh.output;
  }
  std::string renewed = test::readText(dir.path() / "device" / "device.id");
  EXPECT_NE(renewed, identity);
  EXPECT_EQ(renewed.size(), 33u) << renewed;  // 32 hex digits and a newline

  // A stored module whose bytes no longer match its hash is never run, and with the edge
  // gone it cannot be fetched again: the call fails with the reason.
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "device" / "modules")) {
    std::ofstream(e.path(), std::ios::app) << "tampered";
  }
  auto tampered = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", "{}"});
  EXPECT_NE(tampered.exitStatus, 0) << tampered.output;
  EXPECT_EQ(tampered.ok, 0) << tampered.output;

  // The edge back: the module is fetched again and checked, and the call runs.
  node->restart();
  auto back = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", R"({"n": 41})"});
  EXPECT_EQ(back.exitStatus, 0) << back.output;
  EXPECT_EQ(back.ok, 1) << back.output;
}

// A device needs no compiler: the node serves the function's object built for the
// device's machine. An object that is not the module's (another function's, another
// machine's) is refused and fetched again, and never gives a wrong result.
TEST_F(DeviceTest, ObjectsComeFromTheNodeAndAMismatchedOneIsNeverRun) {
  auto first = device({"inc", "--edge", edge(), "--policy", "local", "--count", "2", "--data", R"({"n": 1})"});
  ASSERT_EQ(first.exitStatus, 0) << first.output;
  EXPECT_EQ(first.where["local"], 2) << first.output;
  std::vector<std::filesystem::path> objects;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "device" / "objects")) {
    objects.push_back(e.path());
  }
  ASSERT_EQ(objects.size(), 1u);
  std::string host(wasm::hostTarget());
  EXPECT_NE(objects[0].filename().string().find("-" + host + ".so"), std::string::npos) << objects[0];
  // Nothing was compiled on the device.
  std::error_code ec;
  EXPECT_TRUE(!std::filesystem::exists(dir.path() / "device" / "compiled" / "objects", ec) ||
              std::filesystem::is_empty(dir.path() / "device" / "compiled" / "objects", ec));

  // The node's object route: by target, with the token, for known functions and machines.
  auto echoModule = test::readText(test::examplesDir() / "echo.wasm");
  ASSERT_EQ(test::request(node->port(), "PUT", "/v1/functions/echo", echoModule, node->auth()).status, 201);
  auto echoObject = test::request(node->port(), "GET", "/v1/functions/echo/object?target=" + host, "", node->auth());
  ASSERT_EQ(echoObject.status, 200) << echoObject.body;
  EXPECT_EQ(test::request(node->port(), "GET", "/v1/functions/echo/object?target=" + host, "").status, 401);
  EXPECT_EQ(test::request(node->port(), "GET", "/v1/functions/nope/object?target=" + host, "", node->auth()).status, 404);
  auto noTarget = test::request(node->port(), "GET", "/v1/functions/echo/object", "", node->auth());
  EXPECT_EQ(noTarget.status, 400) << noTarget.body;
  auto mips = test::request(node->port(), "GET", "/v1/functions/echo/object?target=mips", "", node->auth());
  EXPECT_EQ(mips.status, 400);
  EXPECT_NE(mips.body.find("x86_64 and aarch64"), std::string::npos) << mips.body;

  // Another function's object in place of inc's: refused, fetched again, and inc runs.
  std::ofstream(objects[0], std::ios::binary | std::ios::trunc) << echoObject.body;
  auto swapped = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", R"({"n": 1})"});
  ASSERT_EQ(swapped.exitStatus, 0) << swapped.output;
  EXPECT_EQ(swapped.where["local"], 1) << swapped.output;
  device::DeviceOptions o = localDevice();
  {
    auto d = device::Device::open(o);
    ASSERT_TRUE(d.ok()) << d.error().message();
    auto c = (*d)->call("inc", R"({"n": 1})");
    ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
    EXPECT_EQ(json::parse(c.output), (json{{"n", 2}})) << c.output;
  }

  // An object for another machine (when the node has that cross compiler) and no node to
  // fetch the right one from: the call fails with the reason, nothing wrong runs.
  std::string other = host == "x86_64" ? "aarch64" : "x86_64";
  auto foreign = test::request(node->port(), "GET", "/v1/functions/inc/object?target=" + other, "", node->auth());
  if (foreign.status == 503) GTEST_SKIP() << foreign.body;
  ASSERT_EQ(foreign.status, 200) << foreign.body;
  EXPECT_EQ(wasm::objectTarget(std::span(reinterpret_cast<const uint8_t*>(foreign.body.data()), foreign.body.size())),
            other);
  std::ofstream(objects[0], std::ios::binary | std::ios::trunc) << foreign.body;
  node->kill9();
  auto d = device::Device::open(o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  auto c = (*d)->call("inc", R"({"n": 1})");
  EXPECT_FALSE(c.ok) << c.output;
  ASSERT_TRUE(c.error.has_value());
  EXPECT_NE(c.error->message().find("an object for " + other), std::string::npos) << c.error->message();
}

TEST_F(DeviceTest, MisbehavingEdgesAreChargedAndTheCallsRunLocally) {
  // The function is fetched from the node once; then the broken endpoint is the only edge:
  // every call forced to it fails there and runs here instead.
  auto warm = device({"inc", "--edge", edge(), "--policy", "local", "--count", "1", "--data", "{}"});
  ASSERT_EQ(warm.exitStatus, 0) << warm.output;
  using Mode = test::FakeHttpEndpoint::Mode;
  for (Mode mode : {Mode::kHang, Mode::kGarbage, Mode::kNotHttp, Mode::kError}) {
    test::FakeHttpEndpoint broken(mode);
    auto c = device({"inc", "--edge", broken.url(), "--policy", "edge", "--count", "2", "--timeout-ms", "500",
                     "--data", R"({"n": 1})"});
    EXPECT_EQ(c.exitStatus, 0) << c.output;
    if (mode == Mode::kGarbage) {
      // A 200 is an answer: the device cannot tell garbage from a function's output.
      EXPECT_EQ(c.where["edge"], 2) << c.output;
      continue;
    }
    EXPECT_EQ(c.ok, 2) << int(mode) << "\n" << c.output;
    EXPECT_EQ(c.where["local"], 2) << int(mode) << "\n" << c.output;
    EXPECT_EQ(c.fallbacks, 2) << int(mode) << "\n" << c.output;
    EXPECT_GE(broken.calls(), 2);
  }
}

TEST_F(DeviceTest, TheCApiRunsACallAndReportsErrorsInItsBuffer) {
  char output[256] = {0}, error[256] = {0};
  std::string state = (dir.path() / "c-device").string();
  int s = device_c_client(state.c_str(), edge().c_str(), token_.c_str(), TERN_POLICY_LOCAL, R"({"n": 41})", output,
                          sizeof output, error, sizeof error);
  ASSERT_EQ(s, TERN_OK) << error;
  EXPECT_STREQ(output, R"(local {"n":42})");
  s = device_c_client(state.c_str(), edge().c_str(), token_.c_str(), TERN_POLICY_EDGE, R"({"n": 1})", output,
                      sizeof output, error, sizeof error);
  ASSERT_EQ(s, TERN_OK) << error;
  EXPECT_STREQ(output, R"(remote {"n":2})");
  // No state directory; a cloud policy with no cloud; a truncated error buffer.
  s = device_c_client(nullptr, edge().c_str(), nullptr, TERN_POLICY_LOCAL, "{}", output, sizeof output, error, sizeof error);
  EXPECT_EQ(s, TERN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(error).find("state_dir"), std::string::npos) << error;
  s = device_c_client(state.c_str(), edge().c_str(), nullptr, TERN_POLICY_CLOUD, "{}", output, sizeof output, error, 8);
  EXPECT_EQ(s, TERN_UNAVAILABLE);
  EXPECT_EQ(std::string(error).size(), 7u);
  EXPECT_STREQ(tern_status_name(TERN_UNAVAILABLE), "unavailable");
  tern_device_close(nullptr);
}

// With a broken edge and a good one, the probe finds only the good one reachable: the
// device attaches there and never calls the broken one.
TEST_F(DeviceTest, ADeviceAttachesToTheEdgeThatAnswers) {
  test::FakeHttpEndpoint broken(test::FakeHttpEndpoint::Mode::kError);
  auto c = device({"inc", "--edge", broken.url(), "--edge", edge(), "--policy", "edge", "--count", "3", "--data", "{}"});
  EXPECT_EQ(c.exitStatus, 0) << c.output;
  EXPECT_EQ(c.where["edge"], 3) << c.output;
  EXPECT_EQ(c.lines.at(0)["attached"], edge()) << c.output;
  EXPECT_EQ(broken.calls(), 1);  // the probe; no call
}

// A node list with addresses that are no URLs: those nodes are left out with a warning,
// and the device runs on the one that is.
TEST_F(DeviceTest, NodesListedWithBadAddressesAreLeftOut) {
  test::FakeHttpEndpoint listing(R"({"nodes": [
      {"id": "a", "tier": "edge", "http": "128.0.0.1://:12", "state": "alive"},
      {"id": "b", "tier": "edge", "http": "http://10.0.0.1:99999", "state": "alive"},
      {"id": "c", "tier": "cloud", "http": "no host:1", "state": "alive"},
      {"id": "d", "tier": "edge", "http": ")" + edge().substr(7) + R"(", "state": "alive"}]})");
  auto c = device({"inc", "--discover", listing.url(), "--policy", "edge", "--count", "2", "--data", "{}"});
  EXPECT_EQ(c.exitStatus, 0) << c.output;
  EXPECT_EQ(c.where["edge"], 2) << c.output;
  EXPECT_EQ(c.lines.at(0)["attached"], edge()) << c.output;
  EXPECT_NE(c.output.find("lists a node at http://10.0.0.1:99999, left out"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("lists a node at http://no host:1, left out"), std::string::npos) << c.output;
  EXPECT_EQ(c.output.find("128.0.0.1"), std::string::npos) << c.output;
  EXPECT_EQ(listing.calls(), 1);
}

TEST_F(DeviceTest, TheDeviceMovesToTheNearerEdgeWhenTheDelaysSwap) {
  // Two edges behind delay proxies: A near, B 300 ms away; then the other way round. The
  // gap is wide enough that no scheduling stall on a busy machine reverses it.
  test::TerndProcess b(dir.path() / "edge-b");
  auto r = test::request(b.port(), "PUT", "/v1/functions/inc?env=OP=inc",
                         test::readText(test::guestsDir() / "wf_step.wasm"), b.auth());
  ASSERT_EQ(r.status, 201) << r.body;
  test::DelayProxy nearA(node->port(), 0), farB(b.port(), 300);
  std::string a = "http://127.0.0.1:" + std::to_string(nearA.port());
  std::string bUrl = "http://127.0.0.1:" + std::to_string(farB.port());
  device::DeviceOptions o;
  o.stateDir = dir.path() / "mobile";
  o.edges = {bUrl, a};  // the configured order is not the order of nearness
  o.token = token_;
  o.decision.policy = device::Policy::kEdge;
  o.probeEvery = 5;
  auto d = device::Device::open(o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  for (int k = 0; k < 10; ++k) {
    auto c = (*d)->call("inc", R"({"n": 1})");
    ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
    EXPECT_EQ(c.attached, a);
    EXPECT_EQ(c.node, a);
    EXPECT_FALSE(c.moved);
  }
  nearA.setDelay(300);
  farB.setDelay(0);
  int moves = 0;
  device::CallResult last;
  for (int k = 0; k < 10; ++k) {
    last = (*d)->call("inc", R"({"n": 1})");
    ASSERT_TRUE(last.ok) << (last.error ? last.error->message() : "");
    moves += last.moved;
  }
  EXPECT_GE(moves, 1);
  EXPECT_EQ(last.attached, bUrl);
  EXPECT_EQ(last.node, bUrl);
}

// A function's per-device state follows the device: what it stored through edge A is read
// through edge B after the move, and A keeps no copy. A node's own callers (no device)
// have the function's own namespace, apart from every device's.
TEST_F(DeviceTest, PerDeviceStateWrittenBeforeTheMoveIsReadAfterIt) {
  auto edgeB = secondEdgeWithCounter();
  test::TerndProcess& b = *edgeB;
  test::DelayProxy proxyA(node->port(), 0), proxyB(b.port(), 300);
  std::string a = "http://127.0.0.1:" + std::to_string(proxyA.port());
  std::string bUrl = "http://127.0.0.1:" + std::to_string(proxyB.port());
  device::DeviceOptions o = mobileDevice({a, bUrl}, 3);
  auto d = device::Device::open(o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  for (int k = 1; k <= 3; ++k) {
    auto c = (*d)->call("counter", "count");
    ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
    EXPECT_EQ(c.node, a);
    EXPECT_EQ(c.output, fmt::format("count={} seen={}\n", k, k));
  }
  // The node's own callers do not see the device's state.
  auto plain = test::request(node->port(), "POST", "/fn/counter", "count");
  EXPECT_EQ(plain.body, "count=1 seen=1\n");
  auto forged = test::request(node->port(), "POST", "/fn/counter", "count", {{"X-Tern-Device", "../etc"}});
  EXPECT_EQ(forged.status, 400) << forged.body;

  proxyA.setDelay(300);
  proxyB.setDelay(0);
  std::string answer;
  for (int k = 0; k < 6 && answer.empty(); ++k) {
    auto c = (*d)->call("counter", "count");
    ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
    if (c.node == bUrl) answer = c.output;
  }
  // Three calls at A before the swap, then some at A until the probe, then the first at B:
  // the count goes on from where A left it.
  ASSERT_FALSE(answer.empty()) << "the device never moved to B";
  int count = 0, seen = 0;
  ASSERT_EQ(std::sscanf(answer.c_str(), "count=%d seen=%d", &count, &seen), 2) << answer;
  EXPECT_GE(count, 4) << answer;
  EXPECT_EQ(seen, count) << answer;
  EXPECT_EQ(storedEntries(*node, (*d)->id(), "counter"), 0);
  EXPECT_EQ(storedEntries(b, (*d)->id(), "counter"), count + 1);
  // The routes' errors: a bad device id, a bad body, a bad mode, no token.
  std::string route = "/v1/devices/" + (*d)->id() + "/state/counter";
  EXPECT_EQ(test::request(b.port(), "GET", "/v1/devices/x/state/counter", "", b.auth()).status, 400);
  EXPECT_EQ(test::request(b.port(), "PUT", route, "{\"entries\": [{\"key\": \"!!\"}]}", b.auth()).status, 400);
  EXPECT_EQ(test::request(b.port(), "PUT", route + "?mode=merge", "{\"entries\": []}", b.auth()).status, 400);
  EXPECT_EQ(test::request(b.port(), "GET", route, "").status, 401);
  EXPECT_EQ(test::request(b.port(), "PUT", route, "[1, 2]", b.auth()).status, 400);
  EXPECT_EQ(test::request(b.port(), "PUT", route, "{\"entries\": [{\"key\": \"\", \"value\": \"\"}]}", b.auth()).status,
            400);  // an empty key
  EXPECT_EQ(test::request(b.port(), "POST", route, "", b.auth()).status, 405);  // GET, PUT, DELETE only
  EXPECT_EQ(test::request(b.port(), "GET", "/v1/devices/" + (*d)->id() + "/state/-bad", "", b.auth()).status, 400);
  EXPECT_EQ(test::request(b.port(), "GET", "/v1/devices/" + (*d)->id() + "/other", "", b.auth()).status, 404);
  // The state is what it was: nothing above changed it.
  EXPECT_EQ(storedEntries(b, (*d)->id(), "counter"), count + 1);
}

// The edge the device leaves is down: its state is brought over when it answers again, and
// what was written at the new edge meanwhile stays.
TEST_F(DeviceTest, StateLeftAtAnUnreachableEdgeFollowsWhenItIsBack) {
  auto edgeB = secondEdgeWithCounter();
  test::TerndProcess& b = *edgeB;
  test::DelayProxy proxyA(node->port(), 0), proxyB(b.port(), 300);
  std::string a = "http://127.0.0.1:" + std::to_string(proxyA.port());
  std::string bUrl = "http://127.0.0.1:" + std::to_string(proxyB.port());
  device::DeviceOptions o = mobileDevice({a, bUrl}, 2);
  o.remoteTimeout = std::chrono::milliseconds(3000);
  auto d = device::Device::open(o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  for (int k = 1; k <= 2; ++k) {
    auto c = (*d)->call("counter", "count");
    ASSERT_TRUE(c.ok && c.node == a) << c.node << " " << (c.error ? c.error->message() : "");
  }
  node->kill9();
  proxyB.setDelay(0);
  // Calls at A fail over; the next probe finds only B and the device moves there.
  std::string atB;
  for (int k = 0; k < 6 && atB.empty(); ++k) {
    auto c = (*d)->call("counter", "other");
    if (c.ok && c.node == bUrl) atB = c.output;
  }
  EXPECT_EQ(atB, "other=1 seen=1\n");
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "mobile" / "moves.json", ec));
  // A back, and farther than B: the device stays at B and, at its next probe, brings A's
  // state over (calls under another key until then: what B has keeps its values).
  proxyA.setDelay(300);
  node->restart();
  proxyA.setUpstream(node->port());
  auto pending = [&] {
    auto text = test::readText(dir.path() / "mobile" / "moves.json");
    return json::parse(text, nullptr, false).value("moves", json::array()).size();
  };
  for (int k = 0; k < 6 && pending() > 0; ++k) {
    auto c = (*d)->call("counter", "tick");
    ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
    EXPECT_EQ(c.node, bUrl);
  }
  ASSERT_EQ(pending(), 0u);
  auto c = (*d)->call("counter", "count");
  ASSERT_TRUE(c.ok) << (c.error ? c.error->message() : "");
  EXPECT_EQ(c.node, bUrl);
  // A's two counts are there: the third.
  EXPECT_EQ(c.output.substr(0, c.output.find(' ')), "count=3") << c.output;
  auto other = (*d)->call("counter", "other");
  EXPECT_EQ(other.output.substr(0, other.output.find(' ')), "other=2") << other.output;
  EXPECT_EQ(storedEntries(*node, (*d)->id(), "counter"), 0);
}

}  // namespace
}  // namespace tern
