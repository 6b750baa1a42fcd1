// A tern cluster on a real nats-server (JetStream) with real ternd processes on loopback:
// replication and placement, forwarding with X-Tern-Node (over direct links within a site,
// over NATS between sites), spill under overload, a killed node, a NATS outage with a node
// restarted while disconnected, a hanging JetStream behind a leaf node, and forged or
// malformed peer messages on both paths. Heartbeats and TTLs are short (flags); every wait polls for the state a
// user would see, up to a generous limit, and asserts nothing about time.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "cluster/envelope.h"
#include "cluster/function_record.h"
#include "cluster/membership.h"
#include "cluster/nats_options.h"
#include "cluster/peer_link.h"
#include "cluster_fixture.h"
#include "nats_auth.h"
#include "nats_process.h"
#include "raw_http.h"
#include "test_certs.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::HttpReply;
using test::request;

class ClusterTest : public test::ClusterFixture {
 protected:
  // `url`: the NATS server the node connects to (empty: the fixture's).
  std::unique_ptr<test::TerndProcess> node(const std::string& name, const std::string& site,
                                           std::vector<std::string> extra = {},
                                           const std::string& url = "") {
    std::vector<std::string> args{"--site", site, "--member-ttl-ms", "1500",
                                  "--forward-timeout-ms", "20000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return startNode(name, args, url);
  }

  static void deploy(test::TerndProcess& n, const std::string& name,
                     const std::filesystem::path& wasm, const std::string& query = "") {
    auto r = request(n.port(), "PUT", "/v1/functions/" + name + query, test::readText(wasm), n.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }

  static json nodes(test::TerndProcess& n) {
    auto r = request(n.port(), "GET", "/v1/cluster/nodes", "", n.auth());
    if (r.status != 200) return json::object();
    return json::parse(r.body, nullptr, false);
  }

  static size_t memberCount(test::TerndProcess& n) {
    auto j = nodes(n);
    return j.contains("nodes") ? j["nodes"].size() : 0;
  }

  // The node that ran a call (X-Tern-Node), or "" when the call failed.
  static std::string ranOn(test::TerndProcess& n, const std::string& fn, const std::string& body,
                           std::string* output = nullptr) {
    auto r = request(n.port(), "POST", "/fn/" + fn, body);
    if (r.status != 200) return "";
    if (output) *output = r.body;
    return r.headers["x-tern-node"];
  }
};

// A workflow deployed on one node runs each task where its type mapping's placement
// says: the cloud tier, and the node with a label; the trace names the node.
TEST_F(ClusterTest, WorkflowTasksRunWherePlacementPutsThem) {
  auto a1 = node("a1", "site-a");
  auto a2 = node("a2", "site-a", {"--labels", "gpu=yes"});
  auto c1 = node("c1", "cloud", {"--tier", "cloud"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*a1) == 3; }));
  deploy(*a1, "step", test::guestsDir() / "wf_step.wasm", "?env=OP=inc");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*c1, "step", "{}") == "c1" && ranOn(*a2, "step", "{}") == "a2"; }));
  const std::string afcl = R"(
name: placed
dataIns: [{name: n, type: number, source: n}]
workflowBody:
- function: {name: InCloud, type: Cloud, dataIns: [{name: n, source: placed/n}], dataOuts: [{name: n}]}
- function: {name: OnGpu, type: Gpu, dataIns: [{name: n, source: InCloud/n}], dataOuts: [{name: n}]}
- function: {name: Here, type: Here, dataIns: [{name: n, source: OnGpu/n}], dataOuts: [{name: n}]}
dataOuts: [{name: n, source: Here/n}]
)";
  json types = json::array(
      {json{{"functionType", "Cloud"}, {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}, {"tier", "cloud"}}}}})}},
       json{{"functionType", "Gpu"}, {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}, {"labels", "gpu=yes"}}}}})}},
       json{{"functionType", "Here"}, {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}, {"site", "site-a"}, {"tier", "edge"}}}}})}}});
  auto d = request(a1->port(), "PUT", "/v1/workflows/placed", json{{"afcl", afcl}, {"types", types}}.dump(), a1->auth());
  ASSERT_EQ(d.status, 201) << d.body;
  HttpReply r;
  // The peers' heartbeats list the function once they serve it.
  ASSERT_TRUE(test::eventually([&] {
    r = request(a1->port(), "POST", "/wf/placed", "{\"n\": 0}");
    return r.status == 200;
  })) << r.body;
  EXPECT_EQ(json::parse(r.body)["n"], 3);
  auto t = json::parse(request(a1->port(), "GET", "/v1/runs/" + r.headers["x-tern-run-id"], "", a1->auth()).body);
  std::map<std::string, std::string> where;
  for (const auto& k : t["tasks"]) where[k["task"]] = k["resource"];
  EXPECT_EQ(where["InCloud"], "node:c1") << t.dump(1);
  EXPECT_EQ(where["OnGpu"], "node:a2") << t.dump(1);
  // Both edge nodes of site-a qualify; local-first keeps it on a1, where the run is.
  EXPECT_EQ(where["Here"], "local") << t.dump(1);
}

// A chain run at the edge and then in the cloud gives a measured Costless profile: each
// function's own time on each tier, and the extra time of its calls to the cloud.
TEST_F(ClusterTest, WorkflowProfileIsMeasuredOnBothTiers) {
  auto e1 = node("e1", "site-a");
  auto c1 = node("c1", "cloud", {"--tier", "cloud"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*e1) == 2; }));
  deploy(*e1, "step", test::guestsDir() / "wf_step.wasm", "?env=OP=inc&memory_mb=64");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*c1, "step", "{}") == "c1"; }));
  const std::string afcl = R"(
name: chain
dataIns: [{name: n, type: number, source: n}]
workflowBody:
- function: {name: A, type: Step, dataIns: [{name: n, source: chain/n}], dataOuts: [{name: n}]}
- function: {name: B, type: Step, dataIns: [{name: n, source: A/n}], dataOuts: [{name: n}]}
dataOuts: [{name: n, source: B/n}]
)";
  for (const char* tier : {"edge", "cloud"}) {
    json types = json::array({json{{"functionType", "Step"},
                                   {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}, {"tier", tier}}}}})}}});
    auto d = request(e1->port(), "PUT", "/v1/workflows/chain", json{{"afcl", afcl}, {"types", types}}.dump(), e1->auth());
    ASSERT_EQ(d.status, 201) << d.body;
    for (int i = 0; i < 2; ++i) {
      HttpReply r;
      ASSERT_TRUE(test::eventually([&] {
        r = request(e1->port(), "POST", "/wf/chain", "{\"n\": 1}");
        return r.status == 200;
      })) << r.body;
      EXPECT_EQ(json::parse(r.body)["n"], 3);
    }
  }
  auto p = request(e1->port(), "GET", "/v1/workflows/chain/profile", "", e1->auth());
  ASSERT_EQ(p.status, 200) << p.body;
  json profile = json::parse(p.body);
  for (const char* fn : {"A", "B"}) {
    const json& f = profile["functions"][fn];
    EXPECT_GT(f["edge_ms"].get<double>(), 0) << p.body;
    EXPECT_GT(f["cloud_ms"].get<double>(), 0) << p.body;
    EXPECT_GT(f["transfer_ms"].get<double>(), 0) << p.body;  // a forwarded call costs a round trip
    EXPECT_EQ(f["cloud_memory_mb"], 64) << p.body;
  }
  // The CLI writes it for `tern plan workflow`, which plans with it.
  test::TempDir files;
  std::ofstream(files.path() / "chain.yaml") << afcl;
  std::string tern = (test::binDir() / "tern").string();
  std::string node = "http://127.0.0.1:" + std::to_string(e1->port());
  auto profiled = runSubprocess({tern, "--node", node, "--token", e1->token(), "profile", "workflow", "chain"}, {});
  ASSERT_TRUE(profiled.ok());
  ASSERT_EQ(profiled->exitStatus, 0) << profiled->output;
  std::ofstream(files.path() / "profile.json") << profiled->output;
  auto planned = runSubprocess({tern, "--json", "plan", "workflow", (files.path() / "chain.yaml").string(), "--profile",
                                (files.path() / "profile.json").string(), "--latency-ms", "100000"}, {});
  ASSERT_TRUE(planned.ok());
  EXPECT_EQ(planned->exitStatus, 0) << planned->output;
  EXPECT_NE(planned->output.find("\"feasible\":true"), std::string::npos) << planned->output;
  // A workflow measured on one tier only is named, not profiled.
  auto missing = request(c1->port(), "GET", "/v1/workflows/chain/profile", "", c1->auth());
  EXPECT_EQ(missing.status, 404) << missing.body;
}

// Costless end to end: plan a chain from a profile, deploy it with the plan on an edge
// node, run it: the edge function runs at the edge, the cloud group as one unit on the
// cloud node (one forwarded call for all its members), and the trace shows both.
TEST_F(ClusterTest, PlannedChainRunsAtTheEdgeAndFusedInTheCloud) {
  auto e1 = node("e1", "site-a");
  auto c1 = node("c1", "cloud", {"--tier", "cloud"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*e1) == 2; }));
  deploy(*e1, "step", test::guestsDir() / "wf_step.wasm", "?env=OP=inc");
  // e1 places by what its view says c1 serves (c1's heartbeats).
  ASSERT_TRUE(test::eventually([&] {
    for (const auto& m : nodes(*e1).value("nodes", json::array())) {
      if (m["id"] == "c1" && m["functions"].contains("step")) return true;
    }
    return false;
  }));
  test::TempDir files;
  std::ofstream(files.path() / "chain.yaml") << R"(
name: chain
dataIns: [{name: n, type: number, source: n}]
workflowBody:
- function: {name: Sense, type: Step, dataIns: [{name: n, source: chain/n}], dataOuts: [{name: n}]}
- function: {name: Filter, type: Step, dataIns: [{name: n, source: Sense/n}], dataOuts: [{name: n}]}
- function: {name: Infer, type: Step, dataIns: [{name: n, source: Filter/n}], dataOuts: [{name: n}]}
- function: {name: Store, type: Step, dataIns: [{name: n, source: Infer/n}], dataOuts: [{name: n}]}
dataOuts: [{name: n, source: Store/n}]
)";
  std::ofstream(files.path() / "types.json")
      << json::array({json{{"functionType", "Step"}, {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}}}}})}}}).dump();
  // Sensing is cheap at the edge; the rest is slow there and fast in the cloud, where a
  // boundary between groups costs 50 ms and a transition.
  auto fn = [](double edge, double cloud) {
    return json{{"edge_ms", edge}, {"cloud_ms", cloud}, {"cloud_memory_mb", 128}, {"transfer_ms", 2}};
  };
  std::ofstream(files.path() / "profile.json")
      << json{{"functions", {{"Sense", fn(1, 10)}, {"Filter", fn(100, 5)}, {"Infer", fn(100, 5)}, {"Store", fn(100, 5)}}},
              {"cloud_group_delay_ms", 50},
              {"prices", {{"gb_second", 0.0000166667}, {"request", 0.0000002}, {"transition", 0.000025}, {"edge_fixed", 0}}}}
             .dump();
  std::string tern = (test::binDir() / "tern").string();
  std::string at = "http://127.0.0.1:" + std::to_string(e1->port());
  auto planned = runSubprocess({tern, "--json", "plan", "workflow", (files.path() / "chain.yaml").string(), "--profile",
                                (files.path() / "profile.json").string(), "--latency-ms", "50"}, {});
  ASSERT_TRUE(planned.ok());
  ASSERT_EQ(planned->exitStatus, 0) << planned->output;
  json plan = json::parse(planned->output);
  EXPECT_EQ(plan["edge"], json::array({"Sense"})) << planned->output;
  EXPECT_EQ(plan["cloud_groups"], json::array({json::array({"Filter", "Infer", "Store"})})) << planned->output;
  std::ofstream(files.path() / "plan.json") << planned->output;
  auto deployed = runSubprocess({tern, "--node", at, "--token", e1->token(), "workflow", "deploy", "chain",
                                 (files.path() / "chain.yaml").string(), "--types", (files.path() / "types.json").string(),
                                 "--plan", (files.path() / "plan.json").string()}, {});
  ASSERT_TRUE(deployed.ok());
  ASSERT_EQ(deployed->exitStatus, 0) << deployed->output;

  double servedBefore = metric(*c1, "tern_cluster_served_total");
  auto r = request(e1->port(), "POST", "/wf/chain", "{\"n\": 1}");
  ASSERT_EQ(r.status, 200) << r.body << "\n" << e1->log();
  EXPECT_EQ(json::parse(r.body)["n"], 5);
  // The three fused members reached the cloud node as one call.
  EXPECT_EQ(metric(*c1, "tern_cluster_served_total"), servedBefore + 1);
  std::string runId = r.headers["x-tern-run-id"];
  auto t = json::parse(request(e1->port(), "GET", "/v1/runs/" + runId, "", e1->auth()).body);
  ASSERT_EQ(t["tasks"].size(), 4u) << t.dump();
  std::map<std::string, json> byTask;
  for (const auto& k : t["tasks"]) byTask[k["task"]] = k;
  EXPECT_EQ(byTask["Sense"]["resource"], "local") << t.dump();
  EXPECT_EQ(byTask["Sense"]["place"], "edge") << t.dump();
  EXPECT_FALSE(byTask["Sense"].contains("group")) << t.dump();
  for (const char* m : {"Filter", "Infer", "Store"}) {
    EXPECT_EQ(byTask[m]["resource"], "node:c1") << t.dump();
    EXPECT_EQ(byTask[m]["place"], "cloud") << t.dump();
    EXPECT_EQ(byTask[m]["group"], 0) << t.dump();
    EXPECT_GE(byTask[m]["exec_us"].get<int64_t>(), 0) << t.dump();
  }
  // The CLI's trace shows the same places and the group.
  auto traced = runSubprocess({tern, "--node", at, "--token", e1->token(), "workflow", "trace", runId}, {});
  ASSERT_TRUE(traced.ok());
  EXPECT_EQ(traced->exitStatus, 0) << traced->output;
  EXPECT_NE(traced->output.find("local edge"), std::string::npos) << traced->output;
  EXPECT_NE(traced->output.find("node:c1 cloud#0"), std::string::npos) << traced->output;
}

TEST_F(ClusterTest, DeployOnOneNodeServesWherePlacementAllows) {
  auto a1 = node("a1", "site-a");
  auto a2 = node("a2", "site-a", {"--labels", "gpu=yes"});
  auto c1 = node("c1", "cloud", {"--tier", "cloud"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*a1) == 3 && memberCount(*c1) == 3; }));
  auto view = nodes(*a1);
  bool sawCloud = false;
  for (const auto& m : view["nodes"]) {
    if (m["id"] == "c1") {
      sawCloud = true;
      EXPECT_EQ(m["tier"], "cloud");
      EXPECT_EQ(m["site"], "cloud");
      EXPECT_EQ(m["slots"].get<int>() > 0, true);
    }
    if (m["id"] == "a2") {
      EXPECT_EQ(m["labels"], json::array({"gpu=yes"}));
    }
  }
  EXPECT_TRUE(sawCloud);

  // No placement: every node compiles and serves it; each call runs where it arrives.
  deploy(*a1, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*c1, "echo", "x") == "c1"; }));
  ASSERT_TRUE(test::eventually([&] { return ranOn(*a2, "echo", "x") == "a2"; }));
  EXPECT_EQ(ranOn(*a1, "echo", "x"), "a1");

  // Placed on the cloud tier: a call at the edge is forwarded there.
  deploy(*a2, "cloudonly", test::examplesDir() / "echo.wasm", "?tier=cloud");
  std::string out;
  ASSERT_TRUE(test::eventually([&] { return ranOn(*a1, "cloudonly", "ping", &out) == "c1"; }));
  EXPECT_EQ(out, "ping");
  EXPECT_EQ(request(a1->port(), "GET", "/v1/functions/cloudonly", "", a1->auth()).status, 404);
  EXPECT_EQ(request(a2->port(), "GET", "/v1/functions/cloudonly", "", a2->auth()).status, 404);

  // Labels: only a2 carries gpu=yes; the cloud node forwards to it.
  deploy(*c1, "gpu", test::examplesDir() / "echo.wasm", "?label=gpu%3Dyes");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*c1, "gpu", "g") == "a2"; }));
  EXPECT_EQ(ranOn(*a1, "gpu", "g"), "a2");

  // A new version anywhere reaches every node; a rollback anywhere does too.
  deploy(*a2, "echo", test::examplesDir() / "hello.wasm");
  ASSERT_TRUE(test::eventually([&] {
    std::string o;
    return ranOn(*c1, "echo", "x", &o) == "c1" && o.find("Hello") != std::string::npos;
  }));
  ASSERT_EQ(request(c1->port(), "POST", "/v1/functions/echo/rollback", "", c1->auth()).status, 200);
  // Both other nodes run the rolled-back version; a2, which made version 2, only once it has
  // applied c1's rollback from the bucket (a1 may still be on its own version 1 before it
  // ever took version 2). Only then is the rollback the bucket's last write, so the removal
  // below is written after it and wins everywhere.
  ASSERT_TRUE(test::eventually([&] {
    std::string o1, o2;
    return ranOn(*a1, "echo", "back", &o1) == "a1" && o1 == "back" &&
           ranOn(*a2, "echo", "back", &o2) == "a2" && o2 == "back";
  }));

  // A removal propagates.
  ASSERT_EQ(request(a1->port(), "DELETE", "/v1/functions/echo", "", a1->auth()).status, 200);
  ASSERT_TRUE(test::eventually([&] {
    return request(c1->port(), "POST", "/fn/echo", "x").status == 404 &&
           request(a2->port(), "POST", "/fn/echo", "x").status == 404;
  })) << "c1: " << request(c1->port(), "POST", "/fn/echo", "x").raw << "\n" << c1->log()
      << "\na2: " << request(a2->port(), "POST", "/fn/echo", "x").raw << "\n" << a2->log();
}

TEST_F(ClusterTest, SpillsUnderOverloadAndMovesAwayFromAKilledNode) {
  // n1 has one slot and no queue: a second call at once would be refused (429).
  auto n1 = node("n1", "s", {"--workers", "1", "--queue", "0"});
  auto n2 = node("n2", "s", {"--labels", "role=worker"});
  auto n3 = node("n3", "s", {"--labels", "role=worker"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*n1) == 3; }));

  deploy(*n1, "sleeper", test::guestsDir() / "sleeper.wasm", "?env=SLEEP_MS%3D3000");
  ASSERT_TRUE(test::eventually([&] {
    auto j = nodes(*n1);
    size_t serving = 0;
    for (const auto& m : j["nodes"]) serving += m["functions"].contains("sleeper") ? 1 : 0;
    return serving == 3;
  }));
  std::thread busy([&] { EXPECT_EQ(ranOn(*n1, "sleeper", ""), "n1"); });
  ASSERT_TRUE(test::eventually([&] {
    auto r = request(n1->port(), "GET", "/v1/status", "", n1->auth());
    return json::parse(r.body, nullptr, false).value("running", 0) == 1;
  }));
  std::string spilled = ranOn(*n1, "sleeper", "");
  EXPECT_TRUE(spilled == "n2" || spilled == "n3") << "ran on \"" << spilled << "\"";
  busy.join();

  // Placed on the workers only: n1 forwards; with n2 killed the calls go to n3, and n2
  // leaves the view after the TTL.
  deploy(*n1, "work", test::examplesDir() / "echo.wasm", "?label=role%3Dworker");
  // Both workers announce it before n2 goes (n1 forwards only to nodes that serve it).
  ASSERT_TRUE(test::eventually([&] {
    auto j = nodes(*n1);
    size_t serving = 0;
    for (const auto& m : j["nodes"]) serving += m["functions"].contains("work") ? 1 : 0;
    return serving == 2;
  })) << nodes(*n1).dump();
  ASSERT_TRUE(test::eventually([&] { return ranOn(*n1, "work", "w") == "n2"; }));
  n2->kill9();
  // Once the kernel and nats-server have seen n2 go (its link closed, its subscription
  // gone), calls take n3 at once, long before n2 leaves the view. A call sent in the instant
  // before that (the FIN still queued on a busy machine) is reported as failed rather than
  // run twice; so the first call after the kill is not required to succeed.
  ASSERT_TRUE(test::eventually([&] { return ranOn(*n1, "work", "w") == "n3"; }));
  ASSERT_TRUE(test::eventually([&] { return memberCount(*n1) == 2; }));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ranOn(*n1, "work", "w"), "n3");
}

// The direct-link address a node announces ("" when it has none), from its own view.
std::string directAddress(const json& view, const std::string& id) {
  for (const auto& m : view["nodes"]) {
    if (m["id"] == id) return m.value("direct", "");
  }
  return "";
}

TEST_F(ClusterTest, ForwardsOverDirectLinksWithinASiteAndOverNatsBetweenSites) {
  auto a1 = node("a1", "site-a");
  auto a2 = node("a2", "site-a", {"--labels", "role=w"});
  auto a3 = node("a3", "site-a", {"--direct-listen", "off"});
  auto b1 = node("b1", "site-b");
  ASSERT_TRUE(test::eventually([&] { return memberCount(*a1) == 4 && memberCount(*b1) == 4; }));
  auto view = nodes(*a1);
  EXPECT_TRUE(directAddress(view, "a2").starts_with("127.0.0.1:")) << view.dump();
  EXPECT_EQ(directAddress(view, "a3"), "");

  deploy(*a1, "work", test::examplesDir() / "echo.wasm", "?label=role%3Dw");
  deploy(*a1, "sleeper", test::guestsDir() / "sleeper.wasm",
         "?label=role%3Dw&env=SLEEP_MS%3D60000");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*a1, "work", "w") == "a2"; }));
  ASSERT_TRUE(test::eventually([&] {
    auto j = nodes(*a1);
    for (const auto& m : j["nodes"]) {
      if (m["id"] == "a2") return m["functions"].contains("sleeper");
    }
    return false;
  }));
  const std::string direct = "tern_cluster_forward_sends_total{path=\"direct\"}";
  const std::string viaNats = "tern_cluster_forward_sends_total{path=\"nats\"}";
  // The first call to a peer opens the link in the background and goes through NATS; once
  // the link is up, calls take it.
  ASSERT_TRUE(test::eventually([&] { return ranOn(*a1, "work", "w") == "a2" && metric(*a1, direct) >= 1; }));
  double before = metric(*a1, direct), natsBefore = metric(*a1, viaNats);
  EXPECT_GE(natsBefore, 1);
  std::string out;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ranOn(*a1, "work", "direct", &out), "a2");
    EXPECT_EQ(out, "direct");
  }
  EXPECT_EQ(metric(*a1, direct), before + 5);
  EXPECT_EQ(metric(*a1, viaNats), natsBefore);
  // Another site, and a node without direct links: NATS.
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b1, "work", "w") == "a2"; }));
  EXPECT_GE(metric(*b1, viaNats), 1);
  EXPECT_EQ(metric(*b1, direct), 0);
  ASSERT_TRUE(test::eventually([&] { return ranOn(*a3, "work", "w") == "a2"; }));
  EXPECT_GE(metric(*a3, viaNats), 1);
  EXPECT_EQ(metric(*a3, direct), 0);
  EXPECT_EQ(metric(*a2, "tern_cluster_served_total"),
            metric(*a1, direct) + metric(*a1, viaNats) + metric(*b1, viaNats) +
                metric(*a3, viaNats));

  // The peer dies during a call on its link: the call fails at once, saying why, rather
  // than waiting for the forward timeout (it may have run there, so it is not retried).
  HttpReply stuck;
  std::thread caller([&] { stuck = request(a1->port(), "POST", "/fn/sleeper", ""); });
  ASSERT_TRUE(test::eventually([&] {
    auto r = request(a2->port(), "GET", "/v1/status", "", a2->auth());
    return json::parse(r.body, nullptr, false).value("running", 0) == 1;
  }));
  a2->kill9();
  caller.join();
  EXPECT_EQ(stuck.status, 503) << stuck.raw;
  EXPECT_NE(stuck.body.find("direct link to"), std::string::npos) << stuck.body;
  EXPECT_EQ(ranOn(*a1, "work", "after"), "") << "nothing else serves it";
}

// A JetStream that stops answering (the hub that holds the buckets hangs: SIGSTOP keeps
// its connections open, so every KV call waits for its 2 s timeout) delays only the nodes'
// membership records: their heartbeats keep flowing through the site's leaf node, so each
// keeps the other in its view (TTL 1.5 s, shorter than one JetStream timeout) through
// several failed record writes, and the records are written again once the hub resumes.
TEST_F(ClusterTest, AHangingJetStreamDoesNotStallHeartbeats) {
  uint16_t leafPort = test::reservedLoopbackPort();
  test::NatsProcess hub(dir.path() / "hub",
                        "server_name: hub\njetstream { store_dir: \"{dir}/js\", domain: hub }\n"
                        "leafnodes { listen: 127.0.0.1:" + std::to_string(leafPort) + " }");
  test::NatsProcess leaf(dir.path() / "leaf",
                         "server_name: leaf\nleafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:" +
                             std::to_string(leafPort) + "\" } ] }");
  std::vector<std::string> viaLeaf{"--cluster-js-domain", "hub"};
  auto n1 = node("n1", "s", viaLeaf, leaf.url());
  auto n2 = node("n2", "s", viaLeaf, leaf.url());
  const std::string written = "tern_cluster_membership_writes_total{result=\"written\"}";
  const std::string failed = "tern_cluster_membership_writes_total{result=\"failed\"}";
  ASSERT_TRUE(test::eventually([&] {
    return memberCount(*n1) == 2 && memberCount(*n2) == 2 && metric(*n1, written) >= 1 &&
           metric(*n2, written) >= 1;
  })) << nodes(*n1).dump() << n1->log();

  hub.pause();
  double failedBefore = metric(*n1, failed);
  // Each failed write is one JetStream timeout; after two of them a node whose heartbeats
  // waited for its writes would have been silent for longer than the TTL.
  ASSERT_TRUE(test::eventually([&] { return metric(*n1, failed) >= failedBefore + 2; }))
      << n1->log();
  EXPECT_EQ(memberCount(*n1), 2u) << nodes(*n1).dump();
  EXPECT_EQ(memberCount(*n2), 2u) << nodes(*n2).dump();
  EXPECT_EQ(n1->log().find("leaves the view"), std::string::npos) << n1->log();
  EXPECT_EQ(n2->log().find("leaves the view"), std::string::npos) << n2->log();

  hub.resume();
  double writtenBefore = metric(*n1, written);
  EXPECT_TRUE(test::eventually([&] { return metric(*n1, written) > writtenBefore; })) << n1->log();
}

// Every NATS connection of the nodes over TLS with client certificates: a nats-server that
// demands them, two nodes at different sites, a call forwarded from one to the other.
// Without the client certificate a node never joins; an unreadable CA file stops ternd.
TEST_F(ClusterTest, ForwardsOverNatsWithTlsAndClientCertificates) {
  test::TestCerts certs(dir.path() / "certs");
  test::NatsProcess tlsNats(dir.path() / "nats-tls",
                            test::NatsTlsFiles{certs.node().cert, certs.node().key, certs.ca()});
  auto tlsNode = [&](const std::string& name, const std::string& site,
                     std::vector<std::string> security) {
    return node(name, site, std::move(security), tlsNats.url());
  };
  const std::vector<std::string> security{"--nats-ca", certs.ca().string(), "--nats-cert",
                                          certs.client().cert.string(), "--nats-key",
                                          certs.client().key.string()};
  auto withLabel = security;
  withLabel.insert(withLabel.end(), {"--labels", "role=w"});
  auto a1 = tlsNode("a1", "site-a", withLabel);
  auto b1 = tlsNode("b1", "site-b", security);
  ASSERT_TRUE(test::eventually([&] { return memberCount(*a1) == 2 && memberCount(*b1) == 2; }));
  deploy(*a1, "work", test::examplesDir() / "echo.wasm", "?label=role%3Dw");
  const std::string viaNats = "tern_cluster_forward_sends_total{path=\"nats\"}";
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b1, "work", "w") == "a1"; }));
  std::string out;
  EXPECT_EQ(ranOn(*b1, "work", "over tls", &out), "a1");
  EXPECT_EQ(out, "over tls");
  EXPECT_GE(metric(*b1, viaNats), 2);
  // The options every connection of a node is built with: without the client certificate
  // the server refuses the connection; with it, it is accepted.
  auto connectWith = [&](cluster::NatsSecurity security) {
    auto o = cluster::makeNatsOptions(tlsNats.url(), "probe", security);
    EXPECT_TRUE(o.ok()) << o.error().message();
    if (!o.ok()) return NATS_ERR;
    natsConnection* conn = nullptr;
    natsStatus st = natsConnection_Connect(&conn, *o);
    natsConnection_Destroy(conn);
    natsOptions_Destroy(*o);
    return st;
  };
  EXPECT_NE(connectWith({certs.ca().string(), "", "", ""}), NATS_OK);
  EXPECT_EQ(connectWith({certs.ca().string(), certs.client().cert.string(),
                         certs.client().key.string(), ""}),
            NATS_OK);
  // A server certificate from another CA is refused by the node's side.
  EXPECT_NE(connectWith({certs.otherCa().string(), certs.client().cert.string(),
                         certs.client().key.string(), ""}),
            NATS_OK);

  std::vector<std::string> argv{(test::binDir() / "ternd").string(), "--listen", "127.0.0.1:0",
                                "--coap-listen", "off", "--data", (dir.path() / "bad").string(),
                                "--cluster", tlsNats.url(), "--cluster-secret-file", secret.string(),
                                "--nats-ca", (dir.path() / "missing-ca.pem").string()};
  SubprocessOptions so;
  so.timeout = std::chrono::seconds(60);
  auto bad = runSubprocess(argv, so);
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(bad->exitStatus, 0);
  EXPECT_NE(bad->output.find("--nats-ca \"" + (dir.path() / "missing-ca.pem").string() +
                             "\": cannot read it"),
            std::string::npos)
      << bad->output;
  // A credentials file is checked the same way (nats-server in operator mode reads it).
  argv.back() = certs.ca().string();
  argv.insert(argv.end(), {"--nats-creds", (dir.path() / "missing.creds").string()});
  bad = runSubprocess(argv, so);
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(bad->exitStatus, 0);
  EXPECT_NE(bad->output.find("--nats-creds \"" + (dir.path() / "missing.creds").string() +
                             "\": cannot read it"),
            std::string::npos)
      << bad->output;
}

// Every NATS connection of the nodes authenticated by a credentials file (user JWT and NKey
// seed) on a nats-server in operator mode, set up without nsc (nats_auth.h): two nodes at
// different sites share the registry through JetStream (enabled by the account's JWT) and
// forward a call over NATS. A user JWT signed by an account the server does not trust
// stops ternd at start with the file named (exit 78); an expired one, a malformed file and
// a missing one stop it too (exit 64).
TEST_F(ClusterTest, JoinsWithNatsCredentialsInOperatorMode) {
  test::NatsOperator op;
  const std::filesystem::path natsDir = dir.path() / "nats-operator";
  test::NatsProcess authNats(natsDir, op.serverConfig(natsDir));
  const std::string creds = op.userCreds(dir.path() / "node.creds").string();
  auto credsNode = [&](const std::string& name, const std::string& site,
                       std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"--nats-creds", creds});
    return node(name, site, std::move(extra), authNats.url());
  };
  auto a1 = credsNode("a1", "site-a", {"--labels", "role=w"});
  auto b1 = credsNode("b1", "site-b", {});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*a1) == 2 && memberCount(*b1) == 2; }));
  // Placed anywhere: the registry entry reaches b1 through JetStream and b1 runs it.
  deploy(*a1, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b1, "echo", "e") == "b1"; }));
  // Placed on role=w only: b1 forwards to a1, over NATS between sites.
  deploy(*a1, "work", test::examplesDir() / "echo.wasm", "?label=role%3Dw");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b1, "work", "w") == "a1"; }));
  std::string out;
  EXPECT_EQ(ranOn(*b1, "work", "with credentials", &out), "a1");
  EXPECT_EQ(out, "with credentials");
  EXPECT_GE(metric(*b1, "tern_cluster_forward_sends_total{path=\"nats\"}"), 2);

  auto start = [&](const std::filesystem::path& file) {
    std::vector<std::string> argv{(test::binDir() / "ternd").string(), "--listen",
                                  "127.0.0.1:0", "--coap-listen", "off", "--data",
                                  (dir.path() / "refused").string(), "--cluster", authNats.url(),
                                  "--cluster-secret-file", secret.string(), "--nats-creds",
                                  file.string()};
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(60);
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  };
  // A user of an account the operator never signed: the server refuses it.
  test::NKey stranger = test::NKey::generate(test::NKeyRole::kAccount);
  test::NKey user = test::NKey::generate(test::NKeyRole::kUser);
  const auto strangerCreds = dir.path() / "stranger.creds";
  test::writeCredsFile(strangerCreds, test::userJwt(user, stranger), user.seed());
  auto refused = start(strangerCreds);
  EXPECT_EQ(refused.exitStatus, errorKind(ErrorCode::kUnauthorized).exitStatus) << refused.output;
  EXPECT_NE(refused.output.find(fmt::format(
                "--nats-creds \"{}\": the NATS server at {} refused these credentials",
                strangerCreds.string(), authNats.url())),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("Authorization Violation"), std::string::npos) << refused.output;

  const int64_t hourAgo = test::unixMs() / 1000 - 3600;
  auto expired = start(op.userCreds(dir.path() / "expired.creds", hourAgo));
  EXPECT_EQ(expired.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << expired.output;
  EXPECT_NE(expired.output.find(fmt::format("--nats-creds \"{}\": the user JWT expired at ",
                                            (dir.path() / "expired.creds").string())),
            std::string::npos)
      << expired.output;

  for (const auto& [name, text, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"garbage.creds", "not credentials\n", "not a NATS credentials file"},
           {"bad-jwt.creds",
            fmt::format("-----BEGIN NATS USER JWT-----\nnot-a-jwt\n------END NATS USER JWT------\n\n"
                        "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                        user.seed()),
            "the user JWT is malformed"}}) {
    std::ofstream(dir.path() / name) << text;
    auto bad = start(dir.path() / name);
    EXPECT_EQ(bad.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << bad.output;
    EXPECT_NE(bad.output.find(fmt::format("--nats-creds \"{}\": {}", (dir.path() / name).string(),
                                          says)),
              std::string::npos)
        << bad.output;
  }
  auto missing = start(dir.path() / "missing.creds");
  EXPECT_EQ(missing.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << missing.output;
  EXPECT_NE(missing.output.find("cannot read it"), std::string::npos) << missing.output;
  // The nodes that joined were not disturbed.
  EXPECT_EQ(ranOn(*b1, "work", "still", &out), "a1");
}

// A NATS server presenting an expired certificate: the node refuses it and stops at start,
// saying so (exit 81, as `tern` refuses such a node), instead of retrying for ever.
TEST_F(ClusterTest, ANatsServerWithAnExpiredCertificateStopsTheNodeAtStart) {
  test::TestCerts certs(dir.path() / "certs");
  test::NatsProcess expiredNats(
      dir.path() / "nats-expired",
      test::NatsTlsFiles{certs.expired().cert, certs.expired().key, certs.ca()});
  auto r = runSubprocess(
      {(test::binDir() / "ternd").string(), "--listen", "127.0.0.1:0", "--coap-listen", "off",
       "--data", (dir.path() / "node").string(), "--cluster", expiredNats.url(),
       "--cluster-secret-file", secret.string(), "--nats-ca", certs.ca().string(), "--nats-cert",
       certs.client().cert.string(), "--nats-key", certs.client().key.string()},
      SubprocessOptions{std::chrono::seconds(60), 1 << 20, ""});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->exitStatus, errorKind(ErrorCode::kUnavailable).exitStatus) << r->output;
  EXPECT_NE(r->output.find(fmt::format("the NATS server at {} presented a certificate that has "
                                       "expired (checked against --nats-ca \"{}\")",
                                       expiredNats.url(), certs.ca().string())),
            std::string::npos)
      << r->output;
}

TEST_F(ClusterTest, ABadDirectListenAddressIsRefusedAtStart) {
  for (const auto& [value, says] : std::vector<std::pair<std::string, std::string>>{
           {"garbage", "address must be HOST:PORT, got \"garbage\": no port"},
           {"127.0.0.1:70000", "the port must be 0..65535"},
           {"node-a:7000", "direct link address must be an IP literal, got \"node-a\""}}) {
    auto r = runSubprocess(
        {(test::binDir() / "ternd").string(), "--data", (dir.path() / "bad").string(), "--listen",
         "127.0.0.1:0", "--coap-listen", "off", "--cluster", nats->url(), "--cluster-secret-file",
         secret.string(), "--direct-listen", value},
        SubprocessOptions{std::chrono::seconds(60), 1 << 20, ""});
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus) << r->output;
    EXPECT_NE(r->output.find(says), std::string::npos) << r->output;
  }
}

TEST_F(ClusterTest, KeepsServingThroughANatsOutageAndResynchronises) {
  auto n1 = node("n1", "s");
  auto n2 = node("n2", "s");
  deploy(*n1, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*n2, "echo", "x") == "n2"; }));

  nats->stop();
  EXPECT_EQ(ranOn(*n1, "echo", "during"), "n1");
  EXPECT_EQ(ranOn(*n2, "echo", "during"), "n2");
  // A deploy while disconnected is served here and published later.
  deploy(*n1, "echo", test::examplesDir() / "hello.wasm");
  deploy(*n1, "fresh", test::examplesDir() / "echo.wasm");
  // A node restarted without NATS serves what it has from its own store.
  n2->terminate();
  n2->restart();
  std::string out;
  EXPECT_EQ(ranOn(*n2, "echo", "offline", &out), "n2");
  EXPECT_EQ(out, "offline");

  nats->start();
  ASSERT_TRUE(test::eventually([&] {
    std::string o;
    return ranOn(*n2, "echo", "x", &o) == "n2" && o.find("Hello") != std::string::npos;
  }));
  ASSERT_TRUE(test::eventually([&] { return ranOn(*n2, "fresh", "f") == "n2"; }));
}

// Edge autonomy across a restart: changes made on a node while NATS is away are durable
// in its registry and reach the cluster after it reconnects, even if the node restarted in
// between; they replace the cluster's older records (last write wins).
TEST_F(ClusterTest, ChangesMadeOfflineSurviveARestartAndReachTheCluster) {
  auto a = node("a", "s");
  auto b = node("b", "s");
  deploy(*a, "echo", test::examplesDir() / "echo.wasm");
  deploy(*a, "doomed", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b, "echo", "x") == "b"; }));
  ASSERT_TRUE(test::eventually([&] { return ranOn(*b, "doomed", "x") == "b"; }));

  nats->stop();
  deploy(*a, "echo", test::examplesDir() / "hello.wasm");
  ASSERT_EQ(request(a->port(), "DELETE", "/v1/functions/doomed", "", a->auth()).status, 200);
  a->terminate();
  a->restart();
  // Still disconnected: a serves its own changes, b what it had.
  std::string out;
  EXPECT_EQ(ranOn(*a, "echo", "x", &out), "a");
  EXPECT_NE(out.find("Hello"), std::string::npos) << out;
  EXPECT_EQ(request(a->port(), "POST", "/fn/doomed", "x").status, 404);
  EXPECT_EQ(ranOn(*b, "echo", "x", &out), "b");
  EXPECT_EQ(out, "x");

  nats->start();
  ASSERT_TRUE(test::eventually([&] {
    std::string o;
    return ranOn(*b, "echo", "x", &o) == "b" && o.find("Hello") != std::string::npos;
  })) << a->log();
  ASSERT_TRUE(test::eventually([&] {
    return request(b->port(), "POST", "/fn/doomed", "x").status == 404;
  })) << a->log();
  // The cluster's older records did not win on a either.
  EXPECT_EQ(ranOn(*a, "echo", "x", &out), "a");
  EXPECT_NE(out.find("Hello"), std::string::npos) << out;
  EXPECT_EQ(request(a->port(), "POST", "/fn/doomed", "x").status, 404);
}

// A raw NATS client, for messages no tern node would send.
class RawNats {
 public:
  explicit RawNats(const std::string& url) {
    EXPECT_EQ(natsConnection_ConnectTo(&conn_, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_JetStream(&js_, conn_, nullptr), NATS_OK);
  }
  ~RawNats() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(conn_);
  }
  void publish(const std::string& subject, const std::string& data, const char* reply = nullptr) {
    int n = static_cast<int>(data.size());
    EXPECT_EQ(reply ? natsConnection_PublishRequest(conn_, subject.c_str(), reply, data.data(), n)
                    : natsConnection_Publish(conn_, subject.c_str(), data.data(), n),
              NATS_OK);
    natsConnection_Flush(conn_);
  }
  void put(const char* bucket, const std::string& key, const std::string& value) {
    kvStore* kv = nullptr;
    ASSERT_EQ(js_KeyValue(&kv, js_, bucket), NATS_OK);
    EXPECT_EQ(kvStore_Put(nullptr, kv, key.c_str(), value.data(), static_cast<int>(value.size())),
              NATS_OK);
    kvStore_Destroy(kv);
  }

 private:
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
};

// A raw TCP connection to a node's direct-link port, speaking frames (peer_link.h).
class RawLink {
 public:
  explicit RawLink(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawLink() { ::close(fd_); }
  void send(uint64_t id, const std::string& envelope, uint32_t length = 0) {
    std::string f(cluster::kFrameHeaderBytes, '\0');
    uint32_t l = length ? length : static_cast<uint32_t>(8 + envelope.size());
    for (int i = 0; i < 4; ++i) f[i] = static_cast<char>(l >> (24 - 8 * i));
    for (int i = 0; i < 8; ++i) f[4 + i] = static_cast<char>(id >> (56 - 8 * i));
    f += envelope;
    EXPECT_EQ(::send(fd_, f.data(), f.size(), MSG_NOSIGNAL), static_cast<ssize_t>(f.size()));
  }
  // The next frame's id and envelope; nullopt when the node closed the connection.
  std::optional<std::pair<uint64_t, std::string>> receive() {
    std::string h = read(cluster::kFrameHeaderBytes);
    if (h.size() < cluster::kFrameHeaderBytes) return std::nullopt;
    uint64_t l = 0, id = 0;
    for (int i = 0; i < 4; ++i) l = (l << 8) | static_cast<uint8_t>(h[i]);
    for (int i = 4; i < 12; ++i) id = (id << 8) | static_cast<uint8_t>(h[i]);
    std::string body = read(l - 8);
    if (body.size() < l - 8) return std::nullopt;
    return std::make_pair(id, body);
  }

 private:
  std::string read(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }
  int fd_;
};

TEST_F(ClusterTest, RejectsAndCountsForgedAndMalformedPeerMessages) {
  auto n1 = node("n1", "s");
  deploy(*n1, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return metric(*n1, "tern_cluster_registry_applied_total") >= 0; }));
  // The buckets exist once n1 has bound them (its registry caught up).
  ASSERT_TRUE(test::eventually([&] { return n1->log().find("registry caught up") != std::string::npos; }));

  cluster::ClusterKey key(kSecret);
  cluster::ClusterKey wrong("ffffffffffffffffffffffffffffffff");
  std::string hb = R"({"id":"n9","site":"s","tier":"edge","labels":[],"http":"127.0.0.1:1",)"
                   R"("slots":1,"running":0,"queued":0,"rejected":0,"functions":{"echo":0},)"
                   R"("started_at_ms":1,"seq":1})";
  auto env = [&](const cluster::ClusterKey& k, const std::string& sender, int64_t at,
                 const std::string& payload,
                 cluster::MessageKind kind = cluster::MessageKind::kHeartbeat) {
    return cluster::encodeEnvelope(k, cluster::Envelope{kind, sender, at, payload});
  };
  RawNats raw(nats->url());
  std::string good = env(key, "n9", test::unixMs(), hb);
  raw.publish("tern.v1.hb.n9", "garbage");
  raw.publish("tern.v1.hb.n9", good.substr(0, good.size() / 2));
  std::string v2 = good;
  v2[3] = 2;
  raw.publish("tern.v1.hb.n9", v2);
  raw.publish("tern.v1.hb.n9", env(wrong, "n9", test::unixMs(), hb));
  raw.publish("tern.v1.hb.n1", env(key, "n1", test::unixMs(), hb));           // claims to be n1
  raw.publish("tern.v1.hb.n8", env(key, "n9", test::unixMs(), hb));           // subject says n8
  raw.publish("tern.v1.hb.n9", env(key, "n9", test::unixMs() - 3600000, hb));  // an hour old
  raw.publish("tern.v1.hb.n9", env(key, "n9", test::unixMs(), "{not json"));
  // A forwarded call whose reply would go to another node's inbox.
  raw.publish("tern.v1.invoke.n1",
              env(key, "n9", test::unixMs(), std::string("\0\0\0\2{}", 6),
                  cluster::MessageKind::kInvokeRequest),
              "tern.v1.reply.n7.1");
  // A registry entry whose module bytes do not match its hash.
  std::string fakeHash(64, 'a');
  raw.put("tern_modules", fakeHash, R"({"size":4,"chunks":1})");
  raw.put("tern_modules", fakeHash + ".0", "evil");
  cluster::FunctionRecord rec;
  rec.version.name = "evil";
  rec.version.version = 1;
  rec.version.moduleHash = fakeHash;
  rec.version.moduleSize = 4;
  rec.origin = "n9";
  rec.updatedAtMs = test::unixMs();
  raw.put("tern_functions", "evil",
          env(key, "n9", test::unixMs(), cluster::encodeFunctionRecord(rec),
              cluster::MessageKind::kFunctionRecord));
  // An entry signed by one node that names another as its origin.
  rec.version.name = "forged";
  raw.put("tern_functions", "forged",
          env(key, "n8", test::unixMs(), cluster::encodeFunctionRecord(rec),
              cluster::MessageKind::kFunctionRecord));

  // The same on a direct link: a frame over the size limit or a call signed with another
  // key is counted and the connection closed; a well-signed call is answered on it.
  auto self = cluster::splitHostPort(directAddress(nodes(*n1), "n1"));
  ASSERT_TRUE(self.ok()) << nodes(*n1).dump();
  {
    RawLink huge(self->second);
    huge.send(1, "", 0xffffffffu);
    EXPECT_FALSE(huge.receive().has_value());
  }
  std::string call = std::string("\0\0\0", 3) + '\x1f' + R"({"fn":"echo","env":[],"hops":1})" +
                     "over a link";
  ASSERT_EQ(call.size(), 4 + 31 + 11u);
  {
    RawLink badKey(self->second);
    badKey.send(2, env(wrong, "n9", test::unixMs(), call, cluster::MessageKind::kInvokeRequest));
    EXPECT_FALSE(badKey.receive().has_value());
  }
  {
    RawLink link(self->second);
    link.send(7, env(key, "n9", test::unixMs(), call, cluster::MessageKind::kInvokeRequest));
    auto reply = link.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->first, 7u);
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(reply->second.data()),
                           reply->second.size());
    auto d = cluster::decodeEnvelope(key, bytes, 1 << 20);
    ASSERT_TRUE(d.ok) << d.refused.message;
    EXPECT_EQ(d.envelope.kind, cluster::MessageKind::kInvokeReply);
    EXPECT_EQ(d.envelope.sender, "n1");
    EXPECT_TRUE(d.envelope.payload.ends_with("over a link")) << d.envelope.payload;
    // A call claiming to come from the node itself is refused on the same link.
    link.send(8, env(key, "n1", test::unixMs(), call, cluster::MessageKind::kInvokeRequest));
    EXPECT_FALSE(link.receive().has_value());
  }

  {
    // A fused unit from a peer: a malformed one is answered with the reason, a good one
    // with every member's output.
    RawLink link(self->second);
    auto unit = [&](const std::string& segment) {
      std::string header = R"({"fn":"echo","env":[],"hops":1})";
      std::string payload = std::string("\0\0\0", 3) + static_cast<char>(header.size()) + header + segment;
      link.send(9, env(key, "n9", test::unixMs(), payload, cluster::MessageKind::kSegmentRequest));
      auto reply = link.receive();
      EXPECT_TRUE(reply.has_value());
      if (!reply) return std::string();
      auto d = cluster::decodeEnvelope(key, std::span(reinterpret_cast<const uint8_t*>(reply->second.data()), reply->second.size()), 1 << 20);
      EXPECT_TRUE(d.ok) << d.refused.message;
      return d.envelope.payload;
    };
    std::string refused = unit(R"({"members": "all of them"})");
    EXPECT_NE(refused.find("invalid_argument"), std::string::npos) << refused;
    EXPECT_NE(refused.find("segment: env must be a list"), std::string::npos) << refused;
    std::string answered = unit(R"({"env": [], "members": [{"key": "E", "fn": "echo", "in": {"x": 1}, "from": []}]})");
    EXPECT_NE(answered.find(R"("key":"E")"), std::string::npos) << answered;
    EXPECT_NE(answered.find(R"("output":"{\"x\":1}")"), std::string::npos) << answered;
  }

  for (const char* reason : {"bad_magic", "truncated", "unknown_version", "bad_signature",
                             "stale", "malformed", "hash_mismatch"}) {
    std::string series = std::string("tern_cluster_rejected_total{reason=\"") + reason + "\"}";
    ASSERT_TRUE(test::eventually([&] { return metric(*n1, series) >= 1; })) << series << "\n"
                                                                       << n1->log();
  }
  std::string forged = "tern_cluster_rejected_total{reason=\"forged_identity\"}";
  EXPECT_TRUE(test::eventually([&] { return metric(*n1, forged) >= 5; })) << forged;
  EXPECT_GE(metric(*n1, "tern_cluster_rejected_total{reason=\"bad_signature\"}"), 2);
  // Nothing of it took effect, and the node keeps serving.
  EXPECT_EQ(memberCount(*n1), 1u);
  EXPECT_EQ(request(n1->port(), "POST", "/fn/evil", "").status, 404);
  EXPECT_EQ(request(n1->port(), "POST", "/fn/forged", "").status, 404);
  EXPECT_EQ(ranOn(*n1, "echo", "still"), "n1");
}

// A device learns its environments from any node of a cluster (what `tern nodes` lists):
// the edge nodes to attach to and the cloud tier, each called directly.
TEST_F(ClusterTest, ADeviceLearnsTheClustersEdgesAndCloudFromOneNode) {
  auto e1 = node("e1", "site-a");
  auto e2 = node("e2", "site-b");
  auto c1 = node("c1", "cloud", {"--tier", "cloud"});
  ASSERT_TRUE(test::eventually([&] { return memberCount(*e1) == 3; }));
  deploy(*e1, "step", test::guestsDir() / "wf_step.wasm", "?env=OP=inc");
  ASSERT_TRUE(test::eventually([&] {
    size_t serving = 0;
    for (const auto& m : nodes(*e1).value("nodes", json::array())) serving += m["functions"].contains("step");
    return serving == 3;
  }));
  auto call = [&](const std::string& policy) {
    std::vector<std::string> argv{(test::binDir() / "tern").string(), "--json", "--token", e1->token(), "device",
                                  "call", "step", "--discover", "http://127.0.0.1:" + std::to_string(e1->port()),
                                  "--policy", policy, "--count", "2", "--data", R"({"n": 1})", "--state-dir",
                                  (dir.path() / "device").string()};
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(120);
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok());
    std::vector<json> lines;
    std::istringstream in(r.ok() ? r->output : "");
    for (std::string l; std::getline(in, l);) {
      json j = json::parse(l, nullptr, false);
      if (j.is_object() && j.contains("seq")) lines.push_back(j);
    }
    EXPECT_EQ(lines.size(), 2u) << (r.ok() ? r->output : "");
    return lines;
  };
  for (const auto& l : call("cloud")) {
    EXPECT_EQ(l["where"], "cloud") << l;
    EXPECT_EQ(l["node"], "c1") << l;
    EXPECT_EQ(l["ok"], true) << l;
  }
  std::set<std::string> edges{"http://127.0.0.1:" + std::to_string(e1->port()),
                              "http://127.0.0.1:" + std::to_string(e2->port())};
  for (const auto& l : call("edge")) {
    EXPECT_EQ(l["where"], "edge") << l;
    EXPECT_EQ(l["ok"], true) << l;
    EXPECT_TRUE(edges.count(l.value("attached", ""))) << l;
  }
}

}  // namespace
}  // namespace tern
