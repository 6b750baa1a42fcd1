// The node commands' argument checking and answer handling, which need no node.

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli/invoke_command.h"
#include "cli/manage_commands.h"
#include "cli_test_env.h"
#include "test_support.h"

namespace tern::cli {
namespace {

using test::ScopedEnv;

TEST(FunctionNameTest, AcceptsTheNodesNamesOnly) {
  for (const char* good : {"a", "hello", "hello-world", "0x", "a-1-b"}) {
    EXPECT_TRUE(checkFunctionName(good).ok()) << good;
  }
  std::string longest(63, 'a');
  EXPECT_TRUE(checkFunctionName(longest).ok());
  for (std::string bad : {std::string(), std::string("-a"), std::string("Hello"),
                          std::string("a_b"), std::string("a/b"), std::string("a b"),
                          std::string(".."), std::string("é"), std::string(64, 'a')}) {
    auto r = checkFunctionName(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(DeployTargetTest, SendsOnlyTheSettingsGivenWithEnvEncoded) {
  DeployOptions o;
  o.name = "hello";
  auto plain = deployTarget(o);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "/v1/functions/hello");

  o.memoryMb = 64;
  o.timeoutMs = 5000;
  o.concurrency = 0;
  o.env = {"GREETING=hi there", "Q=a&b=c"};
  auto full = deployTarget(o);
  ASSERT_TRUE(full.ok()) << full.error().describe();
  EXPECT_EQ(*full,
            "/v1/functions/hello?memory_mb=64&timeout_ms=5000&concurrency=0"
            "&env=GREETING%3Dhi%20there&env=Q%3Da%26b%3Dc");
}

TEST(DeployTargetTest, PassesTriggersReplyTopicAndCapabilitiesEncoded) {
  DeployOptions o;
  o.name = "detector";
  o.triggers = {"mqtt:sensors/+/temp", "cron:*/5 * * * *"};
  o.replyTopic = "out/#x";
  o.allow = {"kv", "publish:alerts/#"};
  auto t = deployTarget(o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t,
            "/v1/functions/detector?trigger=mqtt%3Asensors%2F%2B%2Ftemp"
            "&trigger=cron%3A%2A%2F5%20%2A%20%2A%20%2A%20%2A&reply_topic=out%2F%23x"
            "&allow=kv&allow=publish%3Aalerts%2F%23");
}

TEST(DeployTargetTest, PassesTheCompileTierAndRefusesAnUnknownOne) {
  DeployOptions o;
  o.name = "hello";
  o.compileTier = "baseline";
  auto t = deployTarget(o);
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(*t, "/v1/functions/hello?compile_tier=baseline");
  o.compileTier = "O2";
  auto bad = deployTarget(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "--compile-tier must be auto, baseline or optimized, got \"O2\"");
}

// --tier takes either kind of tier, as the words differ: edge and cloud place the
// function, auto, baseline and optimized choose its compiler, as --compile-tier does.
TEST(DeployTargetTest, TierTakesACompileTierOrAPlacementTier) {
  struct Case {
    std::vector<std::string> words;
    std::string compileTier;  // --compile-tier
    std::string target;       // the query, or the error's message
  };
  const Case cases[] = {
      {{"baseline"}, "", "?compile_tier=baseline"},
      {{"optimized"}, "", "?compile_tier=optimized"},
      {{"auto"}, "", "?compile_tier=auto"},
      {{"cloud"}, "", "?tier=cloud"},
      {{"edge", "baseline"}, "", "?tier=edge&compile_tier=baseline"},
      {{"optimized", "cloud"}, "", "?tier=cloud&compile_tier=optimized"},
      {{"cloud"}, "baseline", "?tier=cloud&compile_tier=baseline"},
      {{"baseline"}, "baseline", "?compile_tier=baseline"},
      {{"baseline", "baseline"}, "", "?compile_tier=baseline"},
      {{"fast"}, "",
       "--tier must be edge or cloud (where it runs) or auto, baseline or optimized (which "
       "compiler builds it), got \"fast\""},
      {{""}, "",
       "--tier must be edge or cloud (where it runs) or auto, baseline or optimized (which "
       "compiler builds it), got \"\""},
      {{"edge", "cloud"}, "", "--tier cloud contradicts --tier edge"},
      {{"baseline", "optimized"}, "", "--tier optimized contradicts --tier baseline"},
      {{"baseline"}, "optimized", "--tier baseline contradicts --compile-tier optimized"},
  };
  for (const auto& c : cases) {
    DeployOptions o;
    o.name = "hello";
    o.tierWords = c.words;
    o.compileTier = c.compileTier;
    auto t = deployTarget(o);
    std::string got = t.ok() ? *t : t.error().message();
    EXPECT_EQ(got, c.target.front() == '?' ? "/v1/functions/hello" + c.target : c.target)
        << testing::PrintToString(c.words) << " with --compile-tier " << c.compileTier;
    if (!t.ok()) {
      EXPECT_EQ(t.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(DeployTargetTest, RefusesOutOfRangeSettingsAndBadEnv) {
  // Applies `change` to valid options and reports whether deployTarget refuses them.
  auto refused = [](auto change) {
    DeployOptions o;
    o.name = "hello";
    change(o);
    auto r = deployTarget(o);
    return !r.ok() && r.error().code() == ErrorCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](DeployOptions& o) { o.memoryMb = 0; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.memoryMb = 4097; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.timeoutMs = 0; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.timeoutMs = 900001; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.concurrency = 65537; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.env = {"NOEQUALS"}; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.env = {"=value"}; }));
  EXPECT_TRUE(refused([](DeployOptions& o) { o.name = "Bad"; }));
  EXPECT_FALSE(refused([](DeployOptions& o) {
    o.memoryMb = 4096;
    o.timeoutMs = 900000;
    o.concurrency = 65536;
    o.env = {"EMPTY="};
  }));
}

// Options naming a node that must never be reached: the tests fail before connecting.
NodeOptions unreachableNode() {
  NodeOptions node;
  node.node = "http://192.0.2.1:9";  // TEST-NET-1: routes nowhere
  node.token = "t";
  return node;
}

TEST(DeployCommandTest, BadArgumentsFailBeforeConnecting) {
  std::ostringstream out, err;
  DeployOptions o;
  o.name = "hello";
  o.modulePath = "/x.wasm";
  o.memoryMb = 9999;
  EXPECT_EQ(deployCommand(unreachableNode(), o, out, err), 64);
  EXPECT_EQ(err.str(), "tern: invalid argument: --memory-mb must be 1..4096, got 9999\n");
  EXPECT_EQ(out.str(), "");
}

TEST(DeployCommandTest, UnreadableModuleIsAnIoError) {
  tern::test::TempDir dir;
  std::ostringstream out, err;
  DeployOptions o;
  o.name = "hello";
  o.modulePath = (dir.path() / "missing.wasm").string();
  EXPECT_EQ(deployCommand(unreachableNode(), o, out, err), 74);
  EXPECT_EQ(err.str().rfind("tern: i/o error: cannot read ", 0), 0u) << err.str();
}

TEST(InvokeRequestTest, BuildsTheFnRequest) {
  InvokeOptions o;
  o.name = "echo";
  auto get = invokeRequest(o);
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->method, "GET");
  EXPECT_EQ(get->target, "/fn/echo");

  o.data = "x";
  o.path = "/a b/ü?q=1&r=%41";
  o.headers = {"X-One: 1", "X-Two:two  ", "Content-Type:text/plain"};
  auto post = invokeRequest(o);
  ASSERT_TRUE(post.ok()) << post.error().describe();
  EXPECT_EQ(post->method, "POST");
  EXPECT_EQ(post->target, "/fn/echo/a%20b/%C3%BC?q=1&r=%41");
  ASSERT_EQ(post->headers.size(), 3u);
  EXPECT_EQ(post->headers[0].name, "X-One");
  EXPECT_EQ(post->headers[0].value, "1");
  EXPECT_EQ(post->headers[1].value, "two");
  EXPECT_EQ(post->headers[2].name, "Content-Type");

  o.method = "DELETE";
  EXPECT_EQ(invokeRequest(o)->method, "DELETE");
  InvokeOptions queryOnly;
  queryOnly.name = "echo";
  queryOnly.path = "?x=1";
  EXPECT_EQ(invokeRequest(queryOnly)->target, "/fn/echo?x=1");
}

TEST(InvokeRequestTest, RefusesBadArguments) {
  auto refused = [](auto change) {
    InvokeOptions o;
    o.name = "echo";
    change(o);
    auto r = invokeRequest(o);
    return !r.ok() && r.error().code() == ErrorCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](InvokeOptions& o) { o.name = "Echo"; }));
  EXPECT_TRUE(refused([](InvokeOptions& o) {
    o.data = "a";
    o.dataFile = "b";
  }));
  EXPECT_TRUE(refused([](InvokeOptions& o) { o.path = "relative"; }));
  EXPECT_TRUE(refused([](InvokeOptions& o) { o.method = "GE T"; }));
  for (const char* h :
       {"NoColon", ": empty name", "Bad Name: x", "Content-Length: 3", "transfer-encoding: chunked",
        "Connection: keep-alive", "X: a\r\nInjected: 1"}) {
    EXPECT_TRUE(refused([h](InvokeOptions& o) { o.headers = {h}; })) << h;
  }
  EXPECT_FALSE(refused([](InvokeOptions& o) { o.headers = {"Host: other.example"}; }));
}

HttpResponse answer(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(InvokeVerdictTest, SuccessPrintsTheBody) {
  auto v = judgeInvocation(answer(200, "hi"));
  EXPECT_FALSE(v.error);
  EXPECT_TRUE(v.bodyIsOutput);
  EXPECT_FALSE(judgeInvocation(answer(302, "")).error);
}

TEST(InvokeVerdictTest, TernErrorsMapToTheirKindAndAreNotOutput) {
  auto v =
      judgeInvocation(answer(500, R"({"error":{"code":"trap","message":"integer divide by zero"}})"
                                  "\n"));
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->describe(), "trap: integer divide by zero");
  EXPECT_EQ(errorKind(v.error->code()).exitStatus, 68);
  EXPECT_FALSE(v.bodyIsOutput);

  auto nf = judgeInvocation(answer(404, R"({"error":{"code":"not_found","message":"x"}})"));
  EXPECT_EQ(errorKind(nf.error->code()).exitStatus, 76);
  auto sat = judgeInvocation(answer(429, R"({"error":{"code":"saturated","message":"x"}})"));
  EXPECT_EQ(errorKind(sat.error->code()).exitStatus, 79);
  auto timeout = judgeInvocation(answer(504, R"({"error":{"code":"timeout","message":"x"}})"));
  EXPECT_EQ(errorKind(timeout.error->code()).exitStatus, 69);
}

TEST(InvokeVerdictTest, AFunctionsOwnErrorStatusIsFunctionFailedWithItsBody) {
  auto v = judgeInvocation(answer(404, "nothing here\n"));
  ASSERT_TRUE(v.error);
  EXPECT_EQ(v.error->code(), ErrorCode::kFunctionFailed);
  EXPECT_EQ(errorKind(v.error->code()).exitStatus, 82);
  EXPECT_EQ(v.error->message(), "the function answered HTTP 404");
  EXPECT_TRUE(v.bodyIsOutput);
  // JSON that is not tern's error shape is the function's own answer too.
  auto j = judgeInvocation(answer(400, R"({"error":"bad input"})"));
  EXPECT_EQ(j.error->code(), ErrorCode::kFunctionFailed);
  EXPECT_TRUE(j.bodyIsOutput);
}

TEST(LogsTargetTest, PagesAfterASequenceNumber) {
  EXPECT_EQ(logsTarget("hello", 0, 1000), "/v1/functions/hello/logs?after=0&limit=1000");
  EXPECT_EQ(logsTarget("hello", 42, 10), "/v1/functions/hello/logs?after=42&limit=10");
}

TEST(NodeCommandsTest, MissingTokenIsUnauthorizedBeforeConnecting) {
  tern::test::TempDir dir;
  ScopedEnv token("TERN_TOKEN", std::nullopt);
  ScopedEnv data("TERN_DATA", dir.path().string());
  std::ostringstream out, err;
  NodeOptions node = unreachableNode();
  node.token.clear();
  EXPECT_EQ(listCommand(node, out, err), 78);
  EXPECT_EQ(err.str().rfind("tern: unauthorized: no admin token", 0), 0u) << err.str();
}

TEST(NodeCommandsTest, UnreadableCaFileIsRefusedWithOneLine) {
  std::ostringstream out, err;
  NodeOptions node;
  node.node = "https://127.0.0.1:1";
  node.token = "t";
  node.caFile = "/nonexistent/ca.pem";
  EXPECT_EQ(statusCommand(node, out, err), 64);
  std::string line = err.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_EQ(line.rfind("tern: invalid argument: --ca-file: CA file \"/nonexistent/ca.pem\": "
                       "cannot read it",
                       0),
            0u)
      << line;
}

TEST(NodeCommandsTest, InvalidNameIsRefusedByEveryCommand) {
  NodeOptions node = unreachableNode();
  std::ostringstream out, err;
  EXPECT_EQ(infoCommand(node, "Nope", out, err), 64);
  EXPECT_EQ(versionsCommand(node, "a/b", out, err), 64);
  EXPECT_EQ(rollbackCommand(node, "", out, err), 64);
  EXPECT_EQ(removeCommand(node, "-x", out, err), 64);
  LogsOptions logs;
  logs.name = "X";
  EXPECT_EQ(logsCommand(node, logs, out, err), 64);
  InvokeOptions invoke;
  invoke.name = "X";
  std::istringstream in;
  EXPECT_EQ(invokeCommand(node, invoke, in, out, err), 64);
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace tern::cli
