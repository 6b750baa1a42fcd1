// `tern token`: the request body, durations, and the formatting of the node's answers.

#include "cli/token_commands.h"

#include <gtest/gtest.h>

namespace tern::cli {
namespace {

using json = nlohmann::json;

TEST(TokenCommandsTest, DurationsAreAWholeNumberAndAUnit) {
  struct Case {
    const char* text;
    int64_t seconds;  // -1: refused
  };
  const Case cases[] = {{"90s", 90},  {"15m", 900}, {"12h", 43200}, {"30d", 2592000}, {"1d", 86400},
                        {"", -1},     {"s", -1},    {"10", -1},     {"0s", -1},       {"-5m", -1},
                        {"1.5h", -1}, {"5w", -1},   {"3651d", -1},  {"10 s", -1}};
  for (const auto& c : cases) {
    auto r = parseDurationSeconds(c.text);
    if (c.seconds < 0) {
      ASSERT_FALSE(r.ok()) << c.text;
      EXPECT_NE(r.error().message().find("--expires-in"), std::string::npos);
    } else {
      ASSERT_TRUE(r.ok()) << c.text;
      EXPECT_EQ(*r, c.seconds) << c.text;
    }
  }
}

TEST(TokenCommandsTest, TheBodyCarriesWhatWasAskedAndBadOptionsAreNamed) {
  TokenCreateOptions o{"ci", {"deploy", "read"}, "12h", 5.0, 10.0};
  auto body = tokenCreateBody(o);
  ASSERT_TRUE(body.ok()) << body.error().message();
  EXPECT_EQ(json::parse(*body),
            json::parse(R"({"name":"ci","scopes":["deploy","read"],"expires_in_s":43200,"rate":5.0,"burst":10.0})"));
  auto plain = tokenCreateBody(TokenCreateOptions{"ci", {"read"}, "", std::nullopt, std::nullopt});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(json::parse(*plain), json::parse(R"({"name":"ci","scopes":["read"]})"));
  struct Case {
    TokenCreateOptions options;
    const char* names;
  };
  const Case cases[] = {
      {{"CI", {"read"}, "", std::nullopt, std::nullopt}, "token name"},
      {{"ci", {}, "", std::nullopt, std::nullopt}, "--scope"},
      {{"ci", {"read"}, "soon", std::nullopt, std::nullopt}, "--expires-in"},
      {{"ci", {"read"}, "", 0.0, std::nullopt}, "--rate"},
      {{"ci", {"read"}, "", std::nullopt, 3.0}, "--burst needs --rate"},
      {{"ci", {"read"}, "", 1.0, 0.5}, "--burst"},
  };
  for (const auto& c : cases) {
    auto r = tokenCreateBody(c.options);
    ASSERT_FALSE(r.ok()) << c.names;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.names), std::string::npos) << r.error().message();
  }
}

TEST(TokenCommandsTest, TheListShowsEveryTokenButNeverASecret) {
  json list = json::parse(R"({"tokens":[
      {"name":"ci","id":"0123456789abcdef","scopes":["deploy","read"],"created_ms":1000,"expires_ms":null,
       "expired":false,"rate":null,"burst":null},
      {"name":"dev","id":"fedcba9876543210","scopes":["invoke:thermo"],"created_ms":1000,"expires_ms":2000,
       "expired":true,"rate":5,"burst":10}]})");
  std::string text = formatTokenList(list, 61000);
  EXPECT_NE(text.find("NAME"), std::string::npos) << text;
  EXPECT_NE(text.find("deploy,read"), std::string::npos) << text;
  EXPECT_NE(text.find("never"), std::string::npos) << text;
  EXPECT_NE(text.find("expired"), std::string::npos) << text;
  EXPECT_NE(text.find("5/s burst 10"), std::string::npos) << text;
  EXPECT_EQ(formatTokenList(json::parse(R"({"tokens":[]})"), 0), "no tokens\n");
  // Control characters from the node cannot drive the terminal.
  std::string odd = formatTokenList(json::parse(R"({"tokens":[{"name":"a\u001b[2J","scopes":["read"]}]})"), 0);
  EXPECT_EQ(odd.find('\x1b'), std::string::npos) << odd;
  json created = json::parse(R"({"name":"ci","token":"tern_0123456789abcdef_ff","scopes":["read"],
                                 "expires_ms":null,"rate":null})");
  EXPECT_NE(formatTokenCreated(created, 0).find("\ntern_0123456789abcdef_ff\n"), std::string::npos);
}

}  // namespace
}  // namespace tern::cli
