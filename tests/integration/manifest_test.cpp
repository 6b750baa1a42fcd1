// `tern up` and `tern down` against a real ternd: an app of functions (one built by its
// manifest, one with a cron trigger), a route, a stream app and the Caesar workflow deploys;
// a second `up` changes nothing; an edited manifest changes only what changed; `down`
// removes it; bad manifests fail with file, line and field and change nothing; a step the
// node refuses midway is reported with what was applied and what was not.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/error.h"
#include "util/subprocess.h"

namespace tern {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kApp = R"(app: caesar
functions:
  split: {module: split.wasm}
  shift: {module: shift.wasm, memory_mb: 64}
  assemble: {module: assemble.wasm}
  ticker:
    module: build/ticker.wasm
    build: mkdir -p build && cp echo.wasm build/ticker.wasm && echo built >> builds.log
    source: echo.wasm
    triggers: ["cron:0 3 * * *"]
    env: {GREETING: hi}
workflows:
  caesar: {file: caesar.yaml, options: {attempts: 2}}
routes:
  ticker: {providers: [local], policy: single}
streams:
  news: {processor: ticker, max_per_second: 5}
)";

class ManifestTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  fs::path app = dir.path() / "app";
  std::unique_ptr<test::TerndProcess> node;

  void startNode(std::vector<std::string> args = {"--workers", "2"}) {
    node = std::make_unique<test::TerndProcess>(dir.path() / "data", std::move(args));
  }

  void SetUp() override {
    fs::create_directories(app);
    for (const char* f : {"split.wasm", "shift.wasm", "assemble.wasm", "echo.wasm"}) {
      fs::copy_file(test::examplesDir() / f, app / f);
    }
    fs::copy_file(fs::path(TERN_SOURCE_DIR) / "examples/caesar/caesar.yaml", app / "caesar.yaml");
    write("tern.yaml", kApp);
  }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(app / name, std::ios::binary | std::ios::trunc) << text;
  }

  SubprocessResult tern(std::vector<std::string> args) {
    args.insert(args.begin(), {(test::binDir() / "tern").string(), "--node",
                               "http://127.0.0.1:" + std::to_string(node->port()), "--token",
                               node->token()});
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(120);
    so.workingDirectory = app.string();
    auto r = runSubprocess(args, so);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  }

  json get(const std::string& target) {
    auto r = test::request(node->port(), "GET", target, "", node->auth());
    return r.status == 200 ? json::parse(r.body, nullptr, false) : json(r.status);
  }

  // Everything `up` may change on the node, as one document.
  json nodeState() {
    json state{{"functions", get("/v1/functions")},
               {"workflows", get("/v1/workflows")},
               {"routes", get("/v1/routes")},
               {"apps", get("/v1/apps")}};
    for (const auto& f : state["functions"]["functions"]) {
      std::string name = f["name"];
      state["versions"][name] = get("/v1/functions/" + name + "/versions");
    }
    return state;
  }

  int activeVersion(const std::string& fn) { return get("/v1/functions/" + fn).value("active_version", 0); }

  size_t builds() {
    std::ifstream in(app / "builds.log");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  }
};

TEST_F(ManifestTest, UpDeploysTheAppASecondUpChangesNothingAnEditChangesOnlyWhatChangedDownRemovesIt) {
  startNode();
  auto up = tern({"up"});
  ASSERT_EQ(up.exitStatus, 0) << up.output;
  EXPECT_NE(up.output.find("7 to create, 0 to update, 0 to delete, 0 unchanged"), std::string::npos)
      << up.output;
  EXPECT_EQ(builds(), 1u);

  // What was declared is what runs: the workflow over the three functions, the trigger, the
  // route and the stream app.
  std::string input = test::readText(fs::path(TERN_SOURCE_DIR) / "examples/caesar/input.json");
  auto run = test::request(node->port(), "POST", "/wf/caesar", input);
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_EQ(json::parse(run.body), (json{{"encodedString", "Tutorial completed. Well done!"}}));
  json ticker = get("/v1/functions/ticker");
  EXPECT_EQ(ticker["triggers"], json::array({"cron:0 3 * * *"}));
  EXPECT_EQ(ticker["env"], json::array({"GREETING=hi"}));
  EXPECT_EQ(get("/v1/functions/shift")["memory_mb"], 64);
  EXPECT_EQ(get("/v1/routes")["routes"],
            json::parse(R"([{"function": "ticker", "providers": ["local"], "policy": "single"}])"));
  EXPECT_EQ(get("/v1/apps")["apps"][0]["processor"], "ticker");
  EXPECT_EQ(get("/v1/workflows")["workflows"][0]["options"]["attempts"], 2);

  // Again: nothing to do, nothing built, nothing written.
  json before = nodeState();
  auto again = tern({"up"});
  ASSERT_EQ(again.exitStatus, 0) << again.output;
  EXPECT_NE(again.output.find("0 to create, 0 to update, 0 to delete, 7 unchanged"), std::string::npos)
      << again.output;
  EXPECT_EQ(builds(), 1u);
  EXPECT_EQ(nodeState(), before);

  // An edit: shift's memory, the workflow's attempts, the route gone. The dry run says so
  // and changes nothing; the real run changes only those.
  std::string edited = kApp;
  edited.replace(edited.find("memory_mb: 64"), 13, "memory_mb: 32");
  edited.replace(edited.find("attempts: 2"), 11, "attempts: 3");
  edited.erase(edited.find("routes:"), edited.find("streams:") - edited.find("routes:"));
  write("tern.yaml", edited);
  auto dry = tern({"up", "--dry-run"});
  ASSERT_EQ(dry.exitStatus, 0) << dry.output;
  EXPECT_NE(dry.output.find("shift     update: memory_mb changed"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("caesar    update: definition changed"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("ticker    delete: no longer declared"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("0 to create, 2 to update, 1 to delete, 4 unchanged"), std::string::npos)
      << dry.output;
  EXPECT_EQ(nodeState(), before);
  auto changed = tern({"up"});
  ASSERT_EQ(changed.exitStatus, 0) << changed.output;
  EXPECT_EQ(activeVersion("shift"), 2);
  EXPECT_EQ(get("/v1/functions/shift")["memory_mb"], 32);
  for (const char* same : {"split", "assemble", "ticker"}) EXPECT_EQ(activeVersion(same), 1) << same;
  EXPECT_EQ(get("/v1/routes")["routes"], json::array());
  EXPECT_EQ(get("/v1/workflows")["workflows"][0]["options"]["attempts"], 3);
  EXPECT_EQ(get("/v1/apps")["apps"].size(), 1u);

  // A newer source rebuilds; the same bytes are the same module, so nothing is redeployed.
  fs::last_write_time(app / "echo.wasm", fs::file_time_type::clock::now() + std::chrono::hours(1));
  auto rebuilt = tern({"up"});
  ASSERT_EQ(rebuilt.exitStatus, 0) << rebuilt.output;
  EXPECT_EQ(builds(), 2u);
  EXPECT_NE(rebuilt.output.find("0 to create, 0 to update, 0 to delete, 6 unchanged"), std::string::npos)
      << rebuilt.output;

  // Down removes the app and its record, and nothing else; it needs the manifest's names,
  // not its files.
  ASSERT_EQ(tern({"deploy", "bystander", (app / "echo.wasm").string()}).exitStatus, 0);
  fs::remove(app / "caesar.yaml");
  fs::remove(app / "split.wasm");
  auto down = tern({"down"});
  ASSERT_EQ(down.exitStatus, 0) << down.output;
  EXPECT_NE(down.output.find("0 to create, 0 to update, 6 to delete"), std::string::npos) << down.output;
  json functions = get("/v1/functions")["functions"];
  ASSERT_EQ(functions.size(), 1u) << functions;
  EXPECT_EQ(functions[0]["name"], "bystander");
  EXPECT_EQ(get("/v1/workflows")["workflows"], json::array());
  EXPECT_EQ(get("/v1/apps")["apps"], json::array());
}

struct BadManifest {
  const char* what;
  std::string text;
  int status;
  std::string error;  // the start of stderr after "tern: <kind>: "
};

TEST_F(ManifestTest, BadManifestsFailWithFileLineAndFieldAndChangeNothing) {
  startNode();
  ASSERT_EQ(tern({"up"}).exitStatus, 0);
  ASSERT_EQ(tern({"deploy", "handmade", (app / "echo.wasm").string()}).exitStatus, 0);
  write("bad.afcl.yaml", "name: x\nworkflowBody:\n- function: {name: A, type: A, dataIns: 3}\n");
  write("garbage.wasm", "not a module");
  json before = nodeState();
  const int invalid = errorKind(ErrorCode::kInvalidArgument).exitStatus;
  std::string app = std::string(kApp);
  auto withFunction = [&](const std::string& body) {
    std::string t = app;
    t.insert(t.find("workflows:"), body);
    return t;
  };
  std::vector<BadManifest> cases = {
      {"an unknown key", withFunction("  extra:\n    module: echo.wasm\n    memroy_mb: 3\n"), invalid,
       "bad.yaml:14:5: functions.extra.memroy_mb: unknown key"},
      {"a wrong type", withFunction("  extra:\n    module: echo.wasm\n    timeout_ms: soon\n"), invalid,
       "bad.yaml:14:17: functions.extra.timeout_ms: must be an integer 1..900000, got \"soon\""},
      {"a duplicate name", withFunction("  split: {module: echo.wasm}\n"), invalid,
       "bad.yaml:12:3: functions.split: appears twice"},
      {"a missing file", withFunction("  extra: {module: missing.wasm}\n"), invalid,
       "bad.yaml:12:19: functions.extra.module: no such file: missing.wasm"},
      {"a missing workflow file", "app: caesar\nworkflows:\n  other: {file: nowhere.yaml}\n", invalid,
       "bad.yaml:3:17: workflows.other.file: no such file: nowhere.yaml"},
      {"a cycle between functions",
       withFunction("  ping: {module: echo.wasm, allow: [\"invoke:pong\"]}\n"
                    "  pong: {module: echo.wasm, allow: [\"invoke:ping\"]}\n"),
       invalid,
       "bad.yaml:13:37: functions.pong.allow[0]: a cycle between functions and workflows: "
       "function ping -> function pong -> function ping"},
      {"a workflow that is not AFCL",
       std::string("app: caesar\nworkflows:\n  w: {file: bad.afcl.yaml}\n"), invalid,
       "bad.yaml:3:13: workflows.w.file: bad.afcl.yaml: line 3, column "},
      {"a module that is not WebAssembly", withFunction("  extra: {module: garbage.wasm}\n"),
       errorKind(ErrorCode::kInvalidModule).exitStatus,
       "bad.yaml:12:19: functions.extra.module: garbage.wasm: not a WebAssembly binary"},
      {"a build that fails", withFunction("  extra:\n    module: out.wasm\n    build: exit 3\n"), invalid,
       "bad.yaml:14:12: functions.extra.build: the build command exited with status 3"},
      {"an object deployed by hand", withFunction("  handmade: {module: echo.wasm}\n"),
       errorKind(ErrorCode::kConflict).exitStatus,
       "function \"handmade\" already on the node and not owned by this app"},
  };
  for (const auto& c : cases) {
    write("bad.yaml", c.text);
    auto r = tern({"up", "-f", "bad.yaml"});
    EXPECT_EQ(r.exitStatus, c.status) << c.what << "\n" << r.output;
    size_t at = r.output.find("tern: ");
    ASSERT_NE(at, std::string::npos) << c.what << "\n" << r.output;
    std::string line = r.output.substr(at, r.output.find('\n', at) - at);
    EXPECT_NE(line.find(": " + c.error), std::string::npos) << c.what << "\n" << line;
    EXPECT_EQ(nodeState(), before) << c.what;
  }
}

TEST_F(ManifestTest, AStepTheNodeRefusesMidwayIsReportedWithWhatWasAppliedAndWhatWasNot) {
  // The node takes modules of at most 3 functions; the local checks know no such limit.
  startNode({"--workers", "2", "--max-module-functions", "3"});
  auto small = test::wat("(module (func (export \"_start\")))");
  auto big = test::wat(
      "(module (func (export \"_start\")) (func) (func) (func) (func))");
  std::ofstream(app / "small.wasm", std::ios::binary).write(reinterpret_cast<const char*>(small.data()), small.size());
  std::ofstream(app / "big.wasm", std::ios::binary).write(reinterpret_cast<const char*>(big.data()), big.size());
  write("tern.yaml", "app: half\nfunctions:\n  a-small: {module: small.wasm}\n  z-big: {module: big.wasm}\n"
                     "streams:\n  feed: {processor: a-small}\n");
  auto r = tern({"up"});
  EXPECT_EQ(r.exitStatus, errorKind(ErrorCode::kInvalidModule).exitStatus) << r.output;
  EXPECT_NE(r.output.find("(applied: create function a-small; not applied: create function z-big, "
                          "create stream app feed)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(activeVersion("a-small"), 1);
  EXPECT_EQ(get("/v1/functions/z-big"), json(404));
  EXPECT_EQ(get("/v1/apps")["apps"], json::array());

  // The app owns what it applied: without the big function, the next up finishes the job.
  write("tern.yaml", "app: half\nfunctions:\n  a-small: {module: small.wasm}\n"
                     "streams:\n  feed: {processor: a-small}\n");
  auto fixed = tern({"up"});
  ASSERT_EQ(fixed.exitStatus, 0) << fixed.output;
  EXPECT_NE(fixed.output.find("1 to create, 0 to update, 0 to delete, 1 unchanged"), std::string::npos)
      << fixed.output;
  EXPECT_EQ(activeVersion("a-small"), 1);
  ASSERT_EQ(tern({"down"}).exitStatus, 0);
  EXPECT_EQ(get("/v1/functions")["functions"], json::array());
}

}  // namespace
}  // namespace tern
