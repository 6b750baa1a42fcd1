#include "cli/node_client.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_test_env.h"
#include "test_support.h"

namespace tern::cli {
namespace {

using test::ScopedEnv;

void writeFile(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(NodeAddressTest, OptionThenEnvironmentThenDefault) {
  ScopedEnv node("TERN_NODE", std::nullopt);
  EXPECT_EQ(resolveNodeAddress(""), "http://127.0.0.1:8080");
  ScopedEnv set("TERN_NODE", "http://10.1.2.3:9000");
  EXPECT_EQ(resolveNodeAddress(""), "http://10.1.2.3:9000");
  EXPECT_EQ(resolveNodeAddress("http://other:1"), "http://other:1");
}

TEST(TokenDiscoveryTest, OptionWinsOverEnvironmentAndFile) {
  tern::test::TempDir dir;
  writeFile(dir.path() / "admin.token", "fromfile\n");
  ScopedEnv data("TERN_DATA", dir.path().string());
  ScopedEnv token("TERN_TOKEN", "fromenv");
  auto t = discoverToken("fromflag");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "fromflag");
  EXPECT_EQ(t->origin, "--token");
  auto e = discoverToken("");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->value, "fromenv");
  EXPECT_EQ(e->origin, "$TERN_TOKEN");
}

TEST(TokenDiscoveryTest, ReadsTheLocalNodesTokenFromTernData) {
  tern::test::TempDir dir;
  writeFile(dir.path() / "admin.token", "  0123abcd\r\nsecond line\n");
  ScopedEnv token("TERN_TOKEN", std::nullopt);
  ScopedEnv data("TERN_DATA", dir.path().string());
  auto t = discoverToken("");
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(t->value, "0123abcd");
  EXPECT_EQ(t->origin, (dir.path() / "admin.token").string());
}

TEST(TokenDiscoveryTest, FallsBackToXdgDataHomeThenHome) {
  tern::test::TempDir dir;
  writeFile(dir.path() / "xdg/tern/admin.token", "xdgtoken\n");
  writeFile(dir.path() / "home/.local/share/tern/admin.token", "hometoken\n");
  ScopedEnv token("TERN_TOKEN", std::nullopt);
  ScopedEnv data("TERN_DATA", std::nullopt);
  ScopedEnv home("HOME", (dir.path() / "home").string());
  {
    ScopedEnv xdg("XDG_DATA_HOME", (dir.path() / "xdg").string());
    auto t = discoverToken("");
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->value, "xdgtoken");
  }
  ScopedEnv xdg("XDG_DATA_HOME", std::nullopt);
  auto t = discoverToken("");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "hometoken");
}

TEST(TokenDiscoveryTest, NoTokenAnywhereIsUnauthorizedNamingThePath) {
  tern::test::TempDir dir;
  ScopedEnv token("TERN_TOKEN", std::nullopt);
  ScopedEnv data("TERN_DATA", dir.path().string());
  auto t = discoverToken("");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(t.error().message().find((dir.path() / "admin.token").string()), std::string::npos);
  EXPECT_NE(t.error().message().find("--token"), std::string::npos);

  writeFile(dir.path() / "admin.token", "\n");
  auto empty = discoverToken("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kUnauthorized);
}

TEST(ErrorMappingTest, EveryKindNameMapsToItsKind) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    auto code = static_cast<ErrorCode>(c);
    EXPECT_EQ(errorCodeFromName(errorKind(code).name), code) << errorKind(code).name;
  }
  EXPECT_EQ(errorCodeFromName("bad_request"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(errorCodeFromName("headers_too_large"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(errorCodeFromName("request_timeout"), ErrorCode::kUnavailable);
  EXPECT_EQ(errorCodeFromName("no_such_code"), std::nullopt);
}

TEST(ErrorMappingTest, JsonErrorBodyBecomesItsKindAndExitStatus) {
  auto e = errorFromJsonBody(R"({"error": {"code": "trap", "message": "integer divide by zero"}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->describe(), "trap: integer divide by zero");
  EXPECT_EQ(errorKind(e->code()).exitStatus, 68);

  auto failed = errorFromJsonBody(R"({"error":{"code":"function_failed","message":"x"}})");
  ASSERT_TRUE(failed);
  EXPECT_EQ(errorKind(failed->code()).exitStatus, 82);

  auto unknown = errorFromJsonBody(R"({"error":{"code":"quota","message":"over"}})");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code(), ErrorCode::kInternal);
  EXPECT_EQ(unknown->message(), "quota: over");

  EXPECT_FALSE(errorFromJsonBody("not json"));
  EXPECT_FALSE(errorFromJsonBody(R"({"error": "flat"})"));
  EXPECT_FALSE(errorFromJsonBody(R"({"error": {"code": 5}})"));
  EXPECT_FALSE(errorFromJsonBody(R"([1, 2])"));
  EXPECT_FALSE(errorFromJsonBody(""));
}

TEST(ErrorMappingTest, NonJsonAnswersAreMappedByStatus) {
  HttpResponse r;
  r.status = 502;
  r.body = "<html>Bad Gateway</html>\nmore";
  Error e = errorFromResponse(r, "http://n:1");
  EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(e.message(), "http://n:1 answered HTTP 502: <html>Bad Gateway</html>");
  r.status = 418;
  r.body = "\x1b[2J";
  Error odd = errorFromResponse(r, "http://n:1");
  EXPECT_EQ(odd.code(), ErrorCode::kInternal);
  EXPECT_EQ(odd.message().find('\x1b'), std::string::npos);  // no terminal escapes
  r.status = 404;
  r.body = R"({"error":{"code":"not_found","message":"no function named \"x\""}})";
  EXPECT_EQ(errorFromResponse(r, "u").describe(), "not found: no function named \"x\"");
}

}  // namespace
}  // namespace tern::cli

namespace tern::cli {
namespace {

TEST(LocalNodeTest, OnlyLoopbackNodesGetTheLocalToken) {
  for (const char* local : {"http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80",
                            "http://127.1.2.3:8080"}) {
    auto u = parseNodeUrl(local);
    ASSERT_TRUE(u.ok()) << local;
    EXPECT_TRUE(isLocalNode(*u)) << local;
  }
  for (const char* remote : {"http://10.0.0.5:8080", "http://edge-1.example:8080",
                             "http://[fe80::1]:80", "http://128.0.0.1:80"}) {
    auto u = parseNodeUrl(remote);
    ASSERT_TRUE(u.ok()) << remote;
    EXPECT_FALSE(isLocalNode(*u)) << remote;
  }
}

}  // namespace
}  // namespace tern::cli
