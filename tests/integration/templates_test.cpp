// `tern new` end to end, with the real toolchains and a real ternd: each language's project
// is created, built and its own tests run by its own build (make, npm), then `tern up`
// deploys it and it answers requests, counting them in its key-value store and logging
// them; an MQTT-triggered project runs on a message published to a real mosquitto and its
// answer comes back on the reply topic; a cron-triggered project's schedule is registered
// on the node and, moved to every second by an edit of its tern.yaml, fires.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mosquitto_process.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TemplatesTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<test::TerndProcess> node;

  // The projects' builds find this build's tern (`npm test` runs `tern run`), Debian's rustc
  // (which has the wasm32-wasi target), and cache what `tern run` compiles in the test's
  // directory.
  static void SetUpTestSuite() {
    std::string path = test::binDir().string() + ":" + std::getenv("PATH");
    setenv("PATH", path.c_str(), 1);
    setenv("RUSTC", TERN_TEST_RUSTC, 1);
  }

  void SetUp() override { setenv("XDG_CACHE_HOME", (dir.path() / "cache").c_str(), 1); }

  void startNode(std::vector<std::string> args = {}) {
    args.insert(args.end(), {"--workers", "2"});
    node = std::make_unique<test::TerndProcess>(dir.path() / "data", std::move(args));
  }

  // Runs a command in `cwd`, failing the test when it cannot start.
  SubprocessResult run(const fs::path& cwd, std::vector<std::string> argv) {
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(240);
    so.workingDirectory = cwd.string();
    auto r = runSubprocess(argv, so);
    EXPECT_TRUE(r.ok()) << argv[0];
    return r.ok() ? *r : SubprocessResult{};
  }

  SubprocessResult tern(const fs::path& cwd, std::vector<std::string> args) {
    args.insert(args.begin(), {(test::binDir() / "tern").string(), "--node",
                               "http://127.0.0.1:" + std::to_string(node->port()), "--token",
                               node->token()});
    return run(cwd, std::move(args));
  }

  // `tern new NAME --lang LANG --trigger TRIGGER` in the test's directory.
  fs::path create(const std::string& name, const std::string& lang, const std::string& trigger) {
    auto r = run(dir.path(), {(test::binDir() / "tern").string(), "new", name, "--lang", lang,
                              "--trigger", trigger});
    EXPECT_EQ(r.exitStatus, 0) << r.output;
    EXPECT_NE(r.output.find("created " + name + "/"), std::string::npos) << r.output;
    return dir.path() / name;
  }

  // The project's own build and tests, as its README says.
  void buildAndTest(const fs::path& project, const std::string& lang) {
    std::vector<std::vector<std::string>> steps;
    if (lang == "assemblyscript") {
      steps = {{"npm", "ci", "--no-audit", "--no-fund"}, {"npm", "run", "build"}, {"npm", "test"}};
    } else {
      steps = {{"make"}, {"make", "test"}};
    }
    for (const auto& step : steps) {
      auto r = run(project, step);
      ASSERT_EQ(r.exitStatus, 0) << step[0] << " " << (step.size() > 1 ? step[1] : "") << ":\n" << r.output;
      if (step.back() == "test") {
        EXPECT_NE(r.output.find("passed"), std::string::npos) << r.output;
      }
    }
    std::string name = project.filename().string();
    EXPECT_TRUE(fs::exists(project / "build" / (name + ".wasm")));
  }

  void up(const fs::path& project, const std::string& expect) {
    auto r = tern(project, {"up"});
    ASSERT_EQ(r.exitStatus, 0) << r.output;
    EXPECT_NE(r.output.find(expect), std::string::npos) << r.output;
  }

  std::string logs(const std::string& name) {
    auto r = tern(dir.path(), {"logs", name});
    return r.output;
  }
};

class TemplateLanguageTest : public TemplatesTest,
                             public ::testing::WithParamInterface<std::string> {};

TEST_P(TemplateLanguageTest, TheProjectBuildsPassesItsTestsDeploysAndAnswers) {
  std::string lang = GetParam();
  std::string name = "hello-" + lang;
  fs::path project = create(name, lang, "http");
  ASSERT_NO_FATAL_FAILURE(buildAndTest(project, lang));

  startNode();
  ASSERT_NO_FATAL_FAILURE(up(project, "1 to create, 0 to update, 0 to delete, 0 unchanged"));
  for (int call = 1; call <= 2; ++call) {
    auto r = test::request(node->port(), "POST", "/fn/" + name, "Ada\n");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "Hello, Ada! This is call " + std::to_string(call) + " of " + name + ", by http.\n");
  }
  auto empty = test::request(node->port(), "POST", "/fn/" + name, "");
  EXPECT_EQ(empty.body, "Hello, world! This is call 3 of " + name + ", by http.\n");
  EXPECT_NE(logs(name).find("[info] Hello, Ada! This is call 2 of " + name + ", by http."),
            std::string::npos)
      << logs(name);

  // Up again: the project's tern.yaml is the app, and nothing changed.
  ASSERT_NO_FATAL_FAILURE(up(project, "0 to create, 0 to update, 0 to delete, 1 unchanged"));
}

INSTANTIATE_TEST_SUITE_P(Languages, TemplateLanguageTest,
                         ::testing::Values("c", "cpp", "rust", "assemblyscript"),
                         [](const auto& info) { return info.param; });

TEST_F(TemplatesTest, AnMqttTriggeredFunctionRunsOnEachMessageAndItsAnswerIsPublished) {
  test::MosquittoProcess broker(dir.path() / "broker");
  fs::path project = create("sensor", "c", "mqtt");
  ASSERT_NO_FATAL_FAILURE(buildAndTest(project, "c"));

  // The project's own test fails when its logic is broken.
  std::string source = test::readText(project / "src/greeting.c");
  std::ofstream(project / "src/greeting.c", std::ios::trunc)
      << std::string(source).replace(source.find("Hello, "), 7, "Hi, ");
  auto broken = run(project, {"make", "test"});
  EXPECT_NE(broken.exitStatus, 0) << broken.output;
  EXPECT_NE(broken.output.find("FAIL"), std::string::npos) << broken.output;
  std::ofstream(project / "src/greeting.c", std::ios::trunc) << source;

  startNode({"--mqtt-broker", broker.address()});
  ASSERT_NO_FATAL_FAILURE(up(project, "1 to create"));
  bool subscribed = test::eventually([&] {
    std::string log = node->log();
    size_t connected = log.find("MQTT connected");
    return connected != std::string::npos && log.find("acknowledged by", connected) != std::string::npos;
  });
  ASSERT_TRUE(subscribed) << node->log();

  test::MosquittoProcess::Subscription replies(broker, "sensor/out");
  broker.publish("sensor/in", "Ada");
  auto got = replies.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node->log();
  EXPECT_EQ(got[0], "sensor/out Hello, Ada! This is call 1 of sensor, by mqtt on sensor/in.");
  EXPECT_NE(logs("sensor").find("[info] Hello, Ada! This is call 1 of sensor, by mqtt on sensor/in."),
            std::string::npos);
}

TEST_F(TemplatesTest, ACronTriggeredFunctionIsScheduledAndFires) {
  fs::path project = create("ticker", "cpp", "cron");
  ASSERT_NO_FATAL_FAILURE(buildAndTest(project, "cpp"));
  startNode();
  ASSERT_NO_FATAL_FAILURE(up(project, "1 to create"));

  auto fn = test::request(node->port(), "GET", "/v1/functions/ticker", "", node->auth());
  ASSERT_EQ(fn.status, 200) << fn.body;
  EXPECT_EQ(json::parse(fn.body)["triggers"], json::array({"cron:* * * * *"}));
  EXPECT_TRUE(test::eventually([&] { return node->metric("tern_schedules") == 1; }))
      << node->metric("tern_schedules");

  // A minute is too long to wait for: the same schedule every second, by an edit of the
  // manifest, which `tern up` applies as an update.
  std::string yaml = test::readText(project / "tern.yaml");
  size_t at = yaml.find("cron:* * * * *");
  ASSERT_NE(at, std::string::npos) << yaml;
  std::ofstream(project / "tern.yaml", std::ios::trunc) << yaml.replace(at, 14, "every:1s");
  ASSERT_NO_FATAL_FAILURE(up(project, "0 to create, 1 to update"));
  // Whichever call it is: the minute may turn before the update, and then the cron
  // schedule has made the first call.
  EXPECT_TRUE(test::eventually([&] {
    return logs("ticker").find(" of ticker, by every at ") != std::string::npos;
  })) << logs("ticker");
}

// The AssemblyScript SDK reaches every host call: a program that uses each one
// (tests/guests/assemblyscript/sdk_probe.ts) is built in place of a template project's
// index.ts and run on a node, and each of its lines is a result.
TEST_F(TemplatesTest, TheAssemblyScriptSdkReachesEveryHostCall) {
  fs::path project = create("probe", "assemblyscript", "http");
  fs::copy_file(TERN_TEST_AS_PROBE, project / "assembly" / "index.ts",
                fs::copy_options::overwrite_existing);
  for (std::vector<std::string> step : {std::vector<std::string>{"npm", "ci", "--no-audit", "--no-fund"},
                                        std::vector<std::string>{"npm", "run", "build"}}) {
    auto r = run(project, step);
    ASSERT_EQ(r.exitStatus, 0) << step[1] << ":\n" << r.output;
  }
  startNode();
  auto echo = tern(dir.path(), {"deploy", "echo", (test::examplesDir() / "echo.wasm").string()});
  ASSERT_EQ(echo.exitStatus, 0) << echo.output;
  auto probe = tern(project, {"deploy", "probe", "build/probe.wasm", "--allow", "kv", "--allow",
                              "stream:probe-updates", "--allow", "invoke:*"});
  ASSERT_EQ(probe.exitStatus, 0) << probe.output;

  auto r = test::request(node->port(), "POST", "/fn/probe", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "version 2\n"
            "set ok\n"
            "get same\n"
            "keys k/1,k/2,k/3,k/4,k/5 in 3 pages\n"
            "delete ok, again not_found\n"
            "keys k/1,k/2,k/3,k/4\n"
            "stream ok 1 2\n"
            "stream elsewhere denied\n"
            "invoke ok 10000 bytes same\n"
            "invoke small hi\n"
            "invoke missing not_found\n");
  // The updates are in the topic, as devices would receive them.
  auto topic = test::request(node->port(), "GET", "/v1/topics/probe-updates", "", node->auth());
  ASSERT_EQ(topic.status, 200) << topic.body;
  EXPECT_EQ(json::parse(topic.body)["last_seq"], 2);
}

}  // namespace
}  // namespace tern
