// AFCL workflows on a real ternd: the Caesar cipher (split, one Shift task per character,
// assemble), branches and loops, placement (local-first capacity, size), a Serverless
// resource served by a plain HTTP server, kill -9 in the middle of a run, the CLI, and
// bad input.

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "fake_http.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::HttpReply;
using test::request;

std::string wasm(const std::filesystem::path& p) {
  auto b = test::readFile(p);
  return std::string(b.begin(), b.end());
}

using ServerlessEndpoint = test::FakeHttpEndpoint;

class WorkflowTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<test::TerndProcess> node =
      std::make_unique<test::TerndProcess>(dir.path() / "data", std::vector<std::string>{"--workers", "4"});

  void deployFunction(const std::string& name, const std::string& module, const std::string& query = "") {
    std::string raw = "PUT /v1/functions/" + name + query + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [k, v] : node->auth()) raw += k + ": " + v + "\r\n";
    raw += "Content-Length: " + std::to_string(module.size()) + "\r\nConnection: close\r\n\r\n";
    auto r = test::sendRaw(node->port(), raw + module, 180000);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void deployStep(const std::string& name, const std::string& env) {
    deployFunction(name, wasm(test::guestsDir() / "wf_step.wasm"), env);
  }
  HttpReply deployWorkflow(const std::string& name, const std::string& afcl, json types = nullptr,
                           json options = nullptr) {
    json body{{"afcl", afcl}};
    if (!types.is_null()) body["types"] = types;
    if (!options.is_null()) body["options"] = options;
    return request(node->port(), "PUT", "/v1/workflows/" + name, body.dump(), node->auth());
  }
  HttpReply run(const std::string& name, const json& input) {
    std::string body = input.dump();
    std::string raw = "POST /wf/" + name + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    return test::sendRaw(node->port(), raw, 120000);
  }
  json trace(const std::string& runId) {
    auto r = request(node->port(), "GET", "/v1/runs/" + runId, "", node->auth());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
};

std::string caesarYaml() { return test::readText(std::filesystem::path(TERN_SOURCE_DIR) / "examples/caesar/caesar.yaml"); }

TEST_F(WorkflowTest, CaesarRunsOneShiftPerCharacterAfterTheSplit) {
  for (const char* fn : {"split", "shift", "assemble"}) {
    deployFunction(fn, wasm(test::examplesDir() / (std::string(fn) + ".wasm")));
  }
  auto d = deployWorkflow("caesar", caesarYaml());
  ASSERT_EQ(d.status, 201) << d.body;
  const std::string text = "Dedybskv mywzvodon. Govv nyxo!";
  auto r = run("caesar", json{{"original", text}, {"offset", 42}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"encodedString", "Tutorial completed. Well done!"}}));
  ASSERT_TRUE(r.headers.count("x-tern-run-id"));
  json t = trace(r.headers["x-tern-run-id"]);
  EXPECT_EQ(t["status"], "succeeded");
  int64_t splitEnd = 0, lastShiftEnd = 0, assembleStart = 0;
  std::set<std::string> iterations;
  for (const auto& k : t["tasks"]) {
    int64_t start = k["start_us"], end = start + k["duration_us"].get<int64_t>();
    if (k["task"] == "Split") splitEnd = end;
    if (k["task"] == "Assemble") assembleStart = start;
  }
  for (const auto& k : t["tasks"]) {
    if (k["task"] != "Shift") continue;
    iterations.insert(k["iteration"].get<std::string>());
    EXPECT_GE(k["start_us"].get<int64_t>(), splitEnd) << k.dump();
    lastShiftEnd = std::max(lastShiftEnd, k["start_us"].get<int64_t>() + k["duration_us"].get<int64_t>());
    EXPECT_EQ(k["resource"], "local");
  }
  EXPECT_EQ(iterations.size(), text.size());
  EXPECT_TRUE(iterations.count("parShift[0]") && iterations.count("parShift[29]"));
  EXPECT_GE(assembleStart, lastShiftEnd);
  EXPECT_EQ(t["tasks"].size(), text.size() + 2);
  // Per-workflow metrics: the run and where its 32 tasks ran.
  auto metrics = request(node->port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_workflow_runs_total{outcome=\"succeeded\",workflow=\"caesar\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_workflow_tasks_total{resource=\"local\",workflow=\"caesar\"} 32\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_workflow_run_seconds_count{workflow=\"caesar\"} 1\n"), std::string::npos);

  // The same through the CLI: deploy, run (prints the output), trace.
  const std::filesystem::path example = std::filesystem::path(TERN_SOURCE_DIR) / "examples/caesar";
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {(test::binDir() / "tern").string(), "--node",
                               "http://127.0.0.1:" + std::to_string(node->port()), "--token",
                               node->token()});
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(120);
    auto r = runSubprocess(args, so);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  };
  auto deployed = cli({"workflow", "deploy", "caesar2", (example / "caesar.yaml").string()});
  EXPECT_EQ(deployed.exitStatus, 0) << deployed.output;
  auto ran = cli({"workflow", "run", "caesar2", "--input", (example / "input.json").string()});
  EXPECT_EQ(ran.exitStatus, 0) << ran.output;
  EXPECT_NE(ran.output.find("Tutorial completed. Well done!"), std::string::npos) << ran.output;
  EXPECT_NE(cli({"workflow", "ls"}).output.find("caesar2"), std::string::npos);
  size_t at = ran.output.find("run ");
  ASSERT_NE(at, std::string::npos) << ran.output;
  std::string runId = ran.output.substr(at + 4, ran.output.find('\n', at) - at - 4);
  auto traced = cli({"workflow", "trace", runId});
  EXPECT_EQ(traced.exitStatus, 0) << traced.output;
  EXPECT_NE(traced.output.find("parShift[29]"), std::string::npos) << traced.output;
  EXPECT_NE(cli({"workflow", "runs", "caesar2"}).output.find(runId), std::string::npos);
  EXPECT_EQ(cli({"workflow", "rm", "caesar2"}).exitStatus, 0);
  EXPECT_EQ(cli({"workflow", "run", "caesar2", "--data", "{}"}).exitStatus,
            errorKind(ErrorCode::kNotFound).exitStatus);
  // A latency bound that is not a number is refused before anything is planned.
  auto badBound = cli({"plan", "workflow", (example / "caesar.yaml").string(), "--profile",
                       (example / "input.json").string(), "--latency-ms", "soon"});
  EXPECT_EQ(badBound.exitStatus, errorKind(ErrorCode::kInvalidArgument).exitStatus);
  EXPECT_NE(badBound.output.find("--latency-ms: must be a non-negative number of milliseconds"), std::string::npos)
      << badBound.output;
}

TEST_F(WorkflowTest, IfSwitchAndWhileTakeTheRightBranches) {
  deployStep("big", "?env=OP=tag&env=TAG=big");
  deployStep("small", "?env=OP=tag&env=TAG=small");
  deployStep("one", "?env=OP=tag&env=TAG=one");
  deployStep("two", "?env=OP=tag&env=TAG=two");
  deployStep("other", "?env=OP=tag&env=TAG=other");
  deployStep("inc", "?env=OP=inc");
  const std::string afcl = R"(
name: "branches"
dataIns:
- {name: "n", type: "number", source: "n"}
- {name: "pick", type: "string", source: "pick"}
workflowBody:
- if:
    name: "size"
    dataIns:
    - {name: "n", type: "number", source: "branches/n"}
    condition:
    - {data1: "size/n", data2: 10, type: "number", operator: ">", negation: "false", combinedWith: "and"}
    then:
    - function:
        name: "Big"
        type: "Big"
        dataIns: [{name: "n", type: "number", source: "size/n"}]
        dataOuts: [{name: "tag", type: "string"}]
    else:
    - function:
        name: "Small"
        type: "Small"
        dataIns: [{name: "n", type: "number", source: "size/n"}]
        dataOuts: [{name: "tag", type: "string"}]
    dataOuts:
    - {name: "tag", type: "string", source: "Big/tag,Small/tag"}
- switch:
    name: "choose"
    dataEval: {name: "pick", type: "string", source: "branches/pick"}
    cases:
    - value: "a"
      functions:
      - function: {name: "One", type: "One", dataOuts: [{name: "tag", type: "string"}]}
    - value: "b"
      functions:
      - function: {name: "Two", type: "Two", dataOuts: [{name: "tag", type: "string"}]}
    default:
    - function: {name: "Other", type: "Other", dataOuts: [{name: "tag", type: "string"}]}
    dataOuts:
    - {name: "tag", type: "string", source: "One/tag,Two/tag,Other/tag"}
- while:
    name: "count"
    dataIns:
    - {name: "n", type: "number", source: 0}
    loopBody:
    - function:
        name: "Inc"
        type: "Inc"
        dataIns: [{name: "n", type: "number", source: "count/n"}]
        dataOuts: [{name: "n", type: "number"}]
    condition:
    - {data1: "Inc/n", data2: "branches/n", type: "number", operator: "<"}
    dataOuts:
    - {name: "n", type: "number", source: "Inc/n"}
dataOuts:
- {name: "size", type: "string", source: "size/tag"}
- {name: "choice", type: "string", source: "choose/tag"}
- {name: "counted", type: "number", source: "count/n"}
)";
  auto d = deployWorkflow("branches", afcl);
  ASSERT_EQ(d.status, 201) << d.body;
  auto r = run("branches", json{{"n", 12}, {"pick", "b"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"size", "big"}, {"choice", "two"}, {"counted", 12}}));
  json t = trace(r.headers["x-tern-run-id"]);
  int incs = 0;
  for (const auto& k : t["tasks"]) incs += k["task"] == "Inc";
  EXPECT_EQ(incs, 12);
  r = run("branches", json{{"n", 3}, {"pick", "zzz"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"size", "small"}, {"choice", "other"}, {"counted", 3}}));
  r = run("branches", json{{"n", 1}, {"pick", "a"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"size", "small"}, {"choice", "one"}, {"counted", 1}}));
}

// The most tasks whose [start, end) intervals overlap at one instant.
size_t maxOverlap(const json& tasks, const std::string& resource) {
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& k : tasks) {
    if (k["resource"] != resource) continue;
    int64_t s = k["start_us"];
    edges.push_back({s, 1});
    edges.push_back({s + k["duration_us"].get<int64_t>(), -1});
  }
  std::sort(edges.begin(), edges.end());
  int now = 0, most = 0;
  for (auto& [t, d] : edges) most = std::max(most, now += d);
  return static_cast<size_t>(most);
}

const char* kFanOut = R"(
name: "fan"
dataIns:
- {name: "items", type: "collection", source: "items"}
workflowBody:
- parallelFor:
    name: "each"
    dataIns: [{name: "item", type: "collection", source: "fan/items"}]
    iterators: ["item"]
    loopBody:
    - function:
        name: "Work"
        type: "Work"
        dataIns: [{name: "data", type: "string", source: "each/item"}]
        dataOuts: [{name: "bytes", type: "number"}]
    dataOuts: [{name: "sizes", type: "collection", source: "Work/bytes"}]
dataOuts:
- {name: "sizes", type: "collection", source: "each/sizes"}
)";

// The same fan-out over a function that spins and answers {"n"}.
std::string spinFanOut() {
  std::string afcl = kFanOut;
  const std::string declared = "[{name: \"bytes\", type: \"number\"}]";
  afcl.replace(afcl.find(declared), declared.size(), "[{name: \"n\", type: \"number\"}]");
  afcl.replace(afcl.find("Work/bytes"), 10, "Work/n");
  return afcl;
}

TEST_F(WorkflowTest, LocalFirstWithCapacityTwoNeverRunsMoreThanTwoLocally) {
  deployFunction("work", wasm(test::guestsDir() / "wf_step.wasm"), "?env=OP=spin&env=SPIN_MS=60");
  const std::string afcl = spinFanOut();
  auto d = deployWorkflow("fan", afcl, nullptr, json{{"policy", "local-first"}, {"local_capacity", 2}});
  ASSERT_EQ(d.status, 201) << d.body;
  auto r = run("fan", json{{"items", json::array({"a", "b", "c", "d", "e", "f", "g", "h"})}});
  ASSERT_EQ(r.status, 200) << r.body;
  json t = trace(r.headers["x-tern-run-id"]);
  ASSERT_EQ(t["tasks"].size(), 8u);
  EXPECT_LE(maxOverlap(t["tasks"], "local"), 2u) << t.dump(1);
  EXPECT_GE(maxOverlap(t["tasks"], "local"), 1u);
}

TEST_F(WorkflowTest, SizePolicyKeepsLargeInputsLocalAndSendsSmallOnesToServerless) {
  ServerlessEndpoint cloud(ServerlessEndpoint::Mode::kAnswer);
  deployStep("work", "?env=OP=size");
  json types = json::array({json{{"functionType", "Work"},
                                 {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "work"}}}},
                                                            json{{"type", "Serverless"}, {"properties", {{"Uri", cloud.url("/size")}}}}})}}});
  auto d = deployWorkflow("fan", kFanOut, types, json{{"policy", "size"}});
  ASSERT_EQ(d.status, 201) << d.body;
  std::string large(100 * 1024, 'x');
  auto r = run("fan", json{{"items", json::array({large, "tiny"})}});
  ASSERT_EQ(r.status, 200) << r.body;
  json t = trace(r.headers["x-tern-run-id"]);
  ASSERT_EQ(t["tasks"].size(), 2u);
  for (const auto& k : t["tasks"]) {
    if (k["iteration"] == "each[0]") {
      EXPECT_EQ(k["resource"], "local") << k.dump();
    }
    if (k["iteration"] == "each[1]") {
      EXPECT_EQ(k["resource"], cloud.url("/size")) << k.dump();
    }
  }
  EXPECT_EQ(cloud.calls(), 1);
  json out = json::parse(r.body);
  EXPECT_GT(out["sizes"][0].get<int>(), 100 * 1024);  // measured by the function here
  EXPECT_LT(out["sizes"][1].get<int>(), 100);          // by the endpoint
}

TEST_F(WorkflowTest, KillNineMidRunResumesAndCompletesWithoutRerunningFinishedTasks) {
  deployFunction("work", wasm(test::guestsDir() / "wf_step.wasm"), "?env=OP=spin&env=SPIN_MS=150");
  ASSERT_EQ(deployWorkflow("fan", spinFanOut(), nullptr, json{{"local_capacity", 1}}).status, 201);
  json items = json::array();
  for (int i = 0; i < 12; ++i) items.push_back(std::to_string(i));
  auto started = request(node->port(), "POST", "/v1/async/wf/fan", json{{"items", items}}.dump(), node->auth());
  ASSERT_EQ(started.status, 202) << started.body;
  std::string id = json::parse(started.body)["run_id"];
  json before;
  ASSERT_TRUE(test::eventually([&] {
    before = trace(id);
    return before["tasks"].size() >= 2;
  }, std::chrono::seconds(60)));
  node->kill9();
  node->restart();
  json after;
  ASSERT_TRUE(test::eventually([&] {
    after = trace(id);
    return after["status"] != "running";
  }, std::chrono::seconds(120)));
  EXPECT_EQ(after["status"], "succeeded") << after.dump(1);
  EXPECT_EQ(after["output"]["sizes"].size(), 12u);
  EXPECT_EQ(after["tasks"].size(), 12u);
  // Tasks recorded before the kill keep their record: they did not run again.
  for (const auto& b : before["tasks"]) {
    bool same = false;
    for (const auto& a : after["tasks"]) same = same || (a["key"] == b["key"] && a["start_us"] == b["start_us"]);
    EXPECT_TRUE(same) << b.dump();
  }
}

TEST_F(WorkflowTest, BadInputGetsAClearErrorAndTheNodeKeepsServing) {
  auto bad = [&](const std::string& afcl, const std::string& expect, json types = nullptr) {
    auto r = deployWorkflow("bad", afcl, types);
    EXPECT_EQ(r.status, 400) << afcl << "\n" << r.body;
    EXPECT_NE(r.body.find(expect), std::string::npos) << r.body;
  };
  bad("name: [unclosed", "malformed YAML");
  bad("name: w\nworkflowBody:\n- loop: {name: x}\n", "line 3, column 3: unknown construct \\\"loop\\\"");
  bad("name: w\nworkflowBody:\n- function: {name: A, type: A, dataIns: [{name: x, source: \"B/y\"}], dataOuts: [{name: y}]}\n"
      "- function: {name: B, type: B, dataIns: [{name: x, source: \"A/y\"}], dataOuts: [{name: y}]}\n",
      "cycle");
  bad("name: w\nworkflowBody:\n- function: {name: A, type: A, dataIns: [{name: x, source: \"Nope/y\"}]}\n", "no function or compound is named");
  bad("name: w\nworkflowBody:\n- function: {name: A, type: A}\n- function: {name: A, type: A}\n", "used twice");
  bad("name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "unknown resource type",
      json::array({json{{"functionType", "A"}, {"resources", json::array({json{{"type", "Lambda"}}})}}}));

  // The deploy body, its options and mapping, and the management routes' parameters.
  auto put = [&](const std::string& body) {
    return request(node->port(), "PUT", "/v1/workflows/bad", body, node->auth());
  };
  struct Row {
    std::string body, expected;
  } rows[] = {
      {"not json", "must be a JSON object"},
      {R"({"yaml": "x"})", "unknown field \\\"yaml\\\""},
      {R"({"types": []})", "\\\"afcl\\\" (the workflow's YAML text) is required"},
      {R"({"afcl": "name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "options": {"policy": "fastest"}})",
       "unknown placement policy \\\"fastest\\\""},
      {R"({"afcl": "name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "options": {"attempts": 0}})",
       "attempts must be a whole number in 1..100"},
      {R"({"afcl": "name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "options": {"colour": 1}})",
       "unknown workflow option \\\"colour\\\""},
      {R"({"afcl": "name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "types": "[{"})",
       "type mapping: not valid JSON"},
      {R"({"afcl": "name: w\nworkflowBody:\n- function: {name: A, type: A}\n", "types": [{"functionType": "A", "resources": [{"type": "Serverless", "properties": {"Uri": "ftp://x"}}]}]})",
       "Uri: URL \\\"ftp://x\\\": unsupported scheme"},
  };
  for (const auto& row : rows) {
    auto r = put(row.body);
    EXPECT_EQ(r.status, 400) << row.body << "\n" << r.body;
    EXPECT_NE(r.body.find(row.expected), std::string::npos) << row.body << "\n" << r.body;
  }
  ASSERT_EQ(put(R"({"afcl": "name: w\nworkflowBody:\n- parallel: {name: P, parallelBody: [{section: [{function: {name: A, type: A}}]}]}\n"})").status, 201);
  EXPECT_EQ(request(node->port(), "GET", "/v1/workflows/bad/runs?limit=0", "", node->auth()).status, 400);
  EXPECT_EQ(request(node->port(), "GET", "/v1/workflows/bad/runs?colour=red", "", node->auth()).status, 400);
  auto notChain = request(node->port(), "GET", "/v1/workflows/bad/profile", "", node->auth());
  EXPECT_EQ(notChain.status, 400) << notChain.body;
  EXPECT_NE(notChain.body.find("only chains"), std::string::npos) << notChain.body;
  EXPECT_EQ(request(node->port(), "GET", "/v1/runs/nope", "", node->auth()).status, 404);
  EXPECT_EQ(request(node->port(), "GET", "/wf/bad").status, 405);
  EXPECT_EQ(request(node->port(), "GET", "/v1/workflows").status, 401);  // no token

  // A task whose output is not JSON fails the run, naming the task.
  deployStep("garbage", "?env=OP=bad");
  ASSERT_EQ(deployWorkflow("g", "name: g\nworkflowBody:\n- function: {name: G, type: Garbage, dataOuts: [{name: x}]}\ndataOuts:\n- {name: x, source: G/x}\n",
                           nullptr, json{{"attempts", 2}}).status, 201);
  auto r = run("g", json::object());
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("task \\\"G\\\" failed after 2 attempts: its output is not a JSON object"), std::string::npos) << r.body;

  // A task whose output lacks a declared port fails the same way.
  deployStep("counter", "?env=OP=inc");
  ASSERT_EQ(deployWorkflow("p", "name: p\nworkflowBody:\n- function: {name: C, type: Counter, dataOuts: [{name: total}]}\ndataOuts:\n- {name: t, source: C/total}\n",
                           nullptr, json{{"attempts", 1}}).status, 201);
  r = run("p", json::object());
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("its output has no \\\"total\\\""), std::string::npos) << r.body;

  // A Serverless endpoint that never answers, and one that answers garbage.
  ServerlessEndpoint hung(ServerlessEndpoint::Mode::kHang), junk(ServerlessEndpoint::Mode::kGarbage);
  for (auto* ep : {&hung, &junk}) {
    json types = json::array({json{{"functionType", "Remote"}, {"resources", json::array({json{{"type", "Serverless"}, {"properties", {{"Uri", ep->url("/size")}}}}})}}});
    ASSERT_EQ(deployWorkflow("s", "name: s\nworkflowBody:\n- function: {name: R, type: Remote, dataOuts: [{name: x}]}\ndataOuts:\n- {name: x, source: R/x}\n",
                             types, json{{"attempts", 1}, {"serverless_timeout_ms", 300}}).status, 201);
    r = run("s", json::object());
    EXPECT_EQ(r.status, 500) << r.body;
    EXPECT_NE(r.body.find("task \\\"R\\\" failed"), std::string::npos) << r.body;
  }

  // A million items: refused before any task starts.
  deployStep("work", "?env=OP=size");
  ASSERT_EQ(deployWorkflow("fan", kFanOut).status, 201);
  std::string million = "{\"items\":[" ;
  for (int i = 0; i < 1000000; ++i) million += i ? ",1" : "1";
  million += "]}";
  std::string raw = "POST /wf/fan HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(million.size()) +
                    "\r\nConnection: close\r\n\r\n" + million;
  r = test::sendRaw(node->port(), raw, 120000);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("exceed the limit"), std::string::npos) << r.body;
  // Input that is not an object; a missing workflow input; an unknown workflow.
  EXPECT_EQ(request(node->port(), "POST", "/wf/fan", "[1]").status, 400);
  EXPECT_EQ(run("fan", json::object()).status, 400);
  EXPECT_EQ(run("nope", json::object()).status, 404);
  EXPECT_EQ(request(node->port(), "GET", "/healthz").status, 200);
}

// A chain of four: A reads the run's input, each other the one before it, D also the
// run's input. Types map to the step function `step`.
const char* kChain4 = R"(
name: chain
dataIns: [{name: n, type: number, source: n}]
workflowBody:
- function: {name: A, type: Step, dataIns: [{name: n, source: chain/n}], dataOuts: [{name: n}]}
- sequence:
    name: Rest
    sequenceBody:
    - function: {name: B, type: StepB, dataIns: [{name: n, source: A/n}], dataOuts: [{name: n}]}
    - function: {name: C, type: Step, dataIns: [{name: n, source: B/n}], dataOuts: [{name: n}]}
- function: {name: D, type: Step, dataIns: [{name: n, source: C/n}, {name: first, source: chain/n}], dataOuts: [{name: n}]}
dataOuts: [{name: n, source: D/n}]
)";

json stepTypes(const std::string& forB) {
  auto tern = [](const std::string& fn) {
    return json::array({json{{"type", "tern"}, {"properties", {{"function", fn}}}}});
  };
  return json::array({json{{"functionType", "Step"}, {"resources", tern("step")}},
                      json{{"functionType", "StepB"}, {"resources", tern(forB)}}});
}

TEST_F(WorkflowTest, PlannedChainRunsEachCloudGroupAsOneUnit) {
  // A standalone node of the cloud tier runs a plan's cloud groups itself.
  node.reset();
  node = std::make_unique<test::TerndProcess>(dir.path() / "cloud", std::vector<std::string>{"--workers", "2", "--tier", "cloud"});
  deployStep("step", "?env=OP=inc");
  deployStep("broken", "?env=OP=bad");
  json plan{{"feasible", true}, {"edge", json::array()}, {"cloud_groups", json::array({json::array({"A", "B", "C"}), json::array({"D"})})},
            {"price", 0.001}, {"latency_ms", 12.5}};
  auto d = deployWorkflow("chain", kChain4, stepTypes("step"), json{{"plan", plan}});
  ASSERT_EQ(d.status, 201) << d.body;
  EXPECT_EQ(json::parse(d.body)["options"]["plan"], plan);
  auto r = run("chain", json{{"n", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"n", 5}}));
  json t = trace(r.headers["x-tern-run-id"]);
  ASSERT_EQ(t["tasks"].size(), 4u) << t.dump();
  std::map<std::string, json> byTask;
  for (const auto& k : t["tasks"]) byTask[k["task"]] = k;
  for (const char* m : {"A", "B", "C", "D"}) {
    const json& k = byTask[m];
    EXPECT_EQ(k["resource"], "local") << k.dump();
    EXPECT_EQ(k["place"], "cloud") << k.dump();
    EXPECT_EQ(k["group"], std::string(m) == "D" ? 1 : 0) << k.dump();
    EXPECT_EQ(k["outcome"], "ok") << k.dump();
    EXPECT_GE(k["exec_us"].get<int64_t>(), 0) << k.dump();
  }
  // Members run one after the other, each after the one before it ended.
  for (auto [a, b] : {std::pair{"A", "B"}, {"B", "C"}, {"C", "D"}}) {
    EXPECT_GE(byTask[b]["start_us"].get<int64_t>(),
              byTask[a]["start_us"].get<int64_t>() + byTask[a]["exec_us"].get<int64_t>()) << t.dump();
  }
  // Every member was invoked (four invocations of step), through two units.
  auto metrics = request(node->port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_workflow_tasks_total{resource=\"local\",workflow=\"chain\"} 4\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_invocations_total{function=\"step\",outcome=\"ok\"} 4\n"), std::string::npos) << metrics;

  // A member that fails stops its unit: the members before it are recorded, those after
  // it never run, and the unit is tried again as a whole.
  ASSERT_EQ(deployWorkflow("chain", kChain4, stepTypes("broken"), json{{"plan", plan}, {"attempts", 2}}).status, 201);
  r = run("chain", json{{"n", 1}});
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("task \\\"B\\\" (fused with 2 others) failed after 2 attempts: its output is not a JSON object"),
            std::string::npos) << r.body;
  t = trace(r.headers["x-tern-run-id"]);
  ASSERT_EQ(t["tasks"].size(), 2u) << t.dump();
  EXPECT_EQ(t["tasks"][0]["task"], "A");
  EXPECT_EQ(t["tasks"][0]["outcome"], "ok");
  EXPECT_EQ(t["tasks"][1]["task"], "B");
  EXPECT_EQ(t["tasks"][1]["outcome"], "failed");
  EXPECT_EQ(t["tasks"][1]["attempts"], 2);

  // A plan with an edge part on a node with no edge tier: the run says where it cannot go.
  json edgePlan{{"edge", json::array({"A"})}, {"cloud_groups", json::array({json::array({"B", "C", "D"})})}};
  ASSERT_EQ(deployWorkflow("chain", kChain4, stepTypes("step"), json{{"plan", edgePlan}, {"attempts", 1}}).status, 201);
  r = run("chain", json{{"n", 1}});
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("no edge-tier resource runs type \\\"Step\\\""), std::string::npos) << r.body;

  // Plans that do not fit the workflow: refused at deploy, naming what is wrong.
  struct Row {
    json plan;
    std::string expected;
  } rows[] = {
      {json{{"edge", json::array({"B", "A"})}, {"cloud_groups", json::array({json::array({"C", "D"})})}},
       "are not the workflow's chain (A, B, C, D) in order"},
      {json{{"edge", json::array({"A"})}, {"cloud_groups", json::array({json::array({"B", "C"})})}}, "are not the workflow's chain"},
      {json{{"feasible", false}, {"edge", json::array()}, {"cloud_groups", json::array()}}, "it is not feasible"},
      {json{{"edge", json::array()}, {"cloud_groups", json::array({json::array()})}}, "cloud_groups[0] is empty"},
      {json{{"edge", "A"}, {"cloud_groups", json::array()}}, "edge must be a list of function names"},
      {json{{"edge", json::array()}}, "needs edge and cloud_groups"},
      {json{{"edge", json::array()}, {"cloud_groups", json::array()}, {"colour", 1}}, "unknown field \\\"colour\\\""},
      {json{{"edge", json::array()}, {"cloud_groups", json::array()}, {"price", "cheap"}}, "price must be a number"},
      {json::array(), "plan must be a JSON object"},
  };
  for (const auto& row : rows) {
    auto bad = deployWorkflow("chain", kChain4, stepTypes("step"), json{{"plan", row.plan}});
    EXPECT_EQ(bad.status, 400) << row.plan.dump() << "\n" << bad.body;
    EXPECT_NE(bad.body.find(row.expected), std::string::npos) << row.plan.dump() << "\n" << bad.body;
  }
  // A workflow that is not a chain, and a chain function that reads a later one.
  auto notChain = deployWorkflow("w", "name: w\nworkflowBody:\n- parallel: {name: P, parallelBody: [{section: [{function: {name: A, type: Step}}]}]}\n",
                                 stepTypes("step"), json{{"plan", {{"edge", json::array({"A"})}, {"cloud_groups", json::array()}}}});
  EXPECT_EQ(notChain.status, 400) << notChain.body;
  EXPECT_NE(notChain.body.find("a plan needs a chain"), std::string::npos) << notChain.body;
  auto forward = deployWorkflow("w", R"(
name: w
workflowBody:
- function: {name: A, type: Step, dataIns: [{name: n, source: B/n}], dataOuts: [{name: n}]}
- function: {name: B, type: Step, dataOuts: [{name: n}]}
)", stepTypes("step"), json{{"plan", {{"edge", json::array()}, {"cloud_groups", json::array({json::array({"A", "B"})})}}}});
  EXPECT_EQ(forward.status, 400) << forward.body;
  EXPECT_NE(forward.body.find("read only the workflow's inputs and outputs of functions before them"), std::string::npos)
      << forward.body;
  // A Serverless-only function cannot be planned onto tern nodes.
  json serverless = json::array({json{{"functionType", "Step"}, {"resources", json::array({json{{"type", "Serverless"}, {"properties", {{"Uri", "http://127.0.0.1:1/x"}}}}})}},
                                 json{{"functionType", "StepB"}, {"resources", json::array({json{{"type", "tern"}, {"properties", {{"function", "step"}}}}})}}});
  auto remote = deployWorkflow("chain", kChain4, serverless, json{{"plan", plan}});
  EXPECT_EQ(remote.status, 400) << remote.body;
  EXPECT_NE(remote.body.find("has no tern function"), std::string::npos) << remote.body;
  EXPECT_EQ(request(node->port(), "GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace tern
