#include "stream/frames.h"

#include <gtest/gtest.h>

#include "stream/app_store.h"
#include "util/token_bucket.h"
#include "stream/topic_log.h"

namespace tern::stream {
namespace {

using json = nlohmann::json;

TEST(FramesTest, ParsesEachDeviceFrame) {
  auto sub = parseDeviceFrame(
      R"({"type":"subscribe","stream":7,"topic":"news","app":"feed","params":{"blocked":["bob"]},)"
      R"("resume_after":41,"guarantee":"at-least-once","credits":3})");
  ASSERT_TRUE(std::holds_alternative<DeviceFrame>(sub));
  auto& f = std::get<SubscribeFrame>(std::get<DeviceFrame>(sub));
  EXPECT_EQ(f.stream, 7u);
  EXPECT_EQ(f.topic, "news");
  EXPECT_EQ(f.app, "feed");
  EXPECT_EQ(f.params["blocked"][0], "bob");
  EXPECT_EQ(f.resumeAfter, 41u);
  EXPECT_EQ(f.guarantee, Guarantee::kAtLeastOnce);
  EXPECT_EQ(f.credits, 3u);

  auto minimal = parseDeviceFrame(R"({"type":"subscribe","stream":1,"topic":"t"})");
  auto& m = std::get<SubscribeFrame>(std::get<DeviceFrame>(minimal));
  EXPECT_EQ(m.guarantee, Guarantee::kBestEffort);
  EXPECT_FALSE(m.resumeAfter);
  EXPECT_FALSE(m.credits);
  EXPECT_TRUE(m.params.is_object());

  auto credits = parseDeviceFrame(R"({"type":"credits","stream":2,"credits":10})");
  EXPECT_EQ(std::get<CreditsFrame>(std::get<DeviceFrame>(credits)).credits, 10u);
  auto cancel = parseDeviceFrame(R"({"type":"cancel","stream":2})");
  EXPECT_EQ(std::get<CancelFrame>(std::get<DeviceFrame>(cancel)).stream, 2u);
}

TEST(FramesTest, RefusesMalformedFramesNamingTheStreamWhenItCan) {
  struct Case {
    std::string text;
    bool namesStream;
  };
  const Case cases[] = {
      {"", false},
      {"not json", false},
      {"[1,2]", false},
      {R"({"stream":1})", false},                                  // no type
      {R"({"type":"subscribe","topic":"t"})", false},              // no stream
      {R"({"type":"subscribe","stream":0,"topic":"t"})", false},   // stream 0
      {R"({"type":"subscribe","stream":-1,"topic":"t"})", false},
      {R"({"type":"subscribe","stream":1.5,"topic":"t"})", false},
      {R"({"type":"subscribe","stream":9007199254740993,"topic":"t"})", false},  // above 2^53
      {R"({"type":"subscribe","stream":"1","topic":"t"})", false},
      {R"({"type":"subscribe","stream":1})", true},                // no topic
      {R"({"type":"subscribe","stream":1,"topic":5})", true},
      {R"({"type":"subscribe","stream":1,"topic":"t","params":[1]})", true},
      {R"({"type":"subscribe","stream":1,"topic":"t","guarantee":"exactly-once"})", true},
      {R"({"type":"subscribe","stream":1,"topic":"t","resume_after":-3})", true},
      {R"({"type":"subscribe","stream":1,"topic":"t","credits":"many"})", true},
      {R"({"type":"subscribe","stream":1,"topic":"t","app":7})", true},
      {R"({"type":"credits","stream":1})", true},
      {R"({"type":"credits","stream":1,"credits":-1})", true},
      {R"({"type":"publish","stream":1})", true},
  };
  for (const auto& c : cases) {
    auto r = parseDeviceFrame(c.text);
    ASSERT_TRUE(std::holds_alternative<FrameError>(r)) << c.text;
    const auto& e = std::get<FrameError>(r);
    EXPECT_FALSE(e.message.empty());
    EXPECT_EQ(e.stream.has_value(), c.namesStream) << c.text;
  }
  std::string big = R"({"type":"subscribe","stream":1,"topic":"t","params":{"x":")" +
                    std::string(kMaxParamsBytes, 'a') + "\"}}";
  auto r = parseDeviceFrame(big);
  ASSERT_TRUE(std::holds_alternative<FrameError>(r));
  EXPECT_EQ(std::get<FrameError>(r).stream, 1u);
  auto huge = parseDeviceFrame(std::string(kMaxFrameBytes + 1, ' '));
  EXPECT_TRUE(std::holds_alternative<FrameError>(huge));
}

TEST(FramesTest, RendersFramesAsJson) {
  auto data = json::parse(dataFrame(3, dataFrameTail(9, "news", payloadValue(R"({"a":[1,2]})"))));
  EXPECT_EQ(data, json::parse(R"({"type":"data","stream":3,"seq":9,"topic":"news","payload":{"a":[1,2]}})"));
  auto text = json::parse(dataFrame(3, dataFrameTail(10, "news", payloadValue("hello \"you\""))));
  EXPECT_EQ(text["payload"], "hello \"you\"");
  auto term = json::parse(terminateFrame(4, reason::kUnknownApp, "no app named \"x\""));
  EXPECT_EQ(term["stream"], 4);
  EXPECT_EQ(term["reason"], "unknown_app");
  auto conn = json::parse(terminateFrame(std::nullopt, reason::kBadFrame, "m"));
  EXPECT_FALSE(conn.contains("stream"));
  auto sub = json::parse(subscribedFrame(1, "t", 5, 9));
  EXPECT_EQ(sub["first_seq"], 5);
  EXPECT_EQ(sub["last_seq"], 9);

  SubscribeFrame f;
  f.stream = 2;
  f.topic = "t";
  f.resumeAfter = 4;
  f.guarantee = Guarantee::kAtLeastOnce;
  auto round = parseDeviceFrame(subscribeFrameText(f));
  auto& back = std::get<SubscribeFrame>(std::get<DeviceFrame>(round));
  EXPECT_EQ(back.resumeAfter, 4u);
  EXPECT_EQ(back.guarantee, Guarantee::kAtLeastOnce);
}

TEST(FramesTest, JsonNestedWithoutBoundIsRefusedNotRecursedInto) {
  std::string deep = R"({"type":"subscribe","stream":1,"topic":"t","params":{"a":)" + std::string(30000, '[') +
                     std::string(30000, ']') + "}}";
  auto r = parseDeviceFrame(deep);
  ASSERT_TRUE(std::holds_alternative<FrameError>(r));
  EXPECT_NE(std::get<FrameError>(r).message.find("nested"), std::string::npos);
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_FALSE(parseJsonBounded(ok).is_discarded());
  EXPECT_TRUE(parseJsonBounded("[[" + ok + "]]").is_discarded());
  // A published update nested too deep is carried as the string it is.
  EXPECT_TRUE(payloadValue(std::string(100, '[') + std::string(100, ']')).is_string());
}

TEST(TopicNamesTest, FollowTheRule) {
  for (std::string ok : {std::string("a"), std::string("news"), std::string("Video-42_comments"),
                         std::string("0x"), std::string(64, 'a')}) {
    EXPECT_TRUE(isTopicName(ok)) << ok;
  }
  for (std::string bad : {std::string(), std::string("-a"), std::string("_a"), std::string("a.b"),
                          std::string("a/b"), std::string("a b"), std::string("é"), std::string(65, 'a'),
                          std::string("a*"), std::string("a>")}) {
    EXPECT_FALSE(isTopicName(bad)) << bad;
  }
  Retention r;
  r.maxPayloadBytes = 4;
  EXPECT_TRUE(checkPublish("t", "abcd", r).ok());
  EXPECT_EQ(checkPublish("t", "abcde", r).error().code(), ErrorCode::kBodyTooLarge);
  EXPECT_EQ(checkPublish("t", "\xff", r).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(checkPublish("a/b", "x", r).error().code(), ErrorCode::kInvalidArgument);
}

TEST(AppSpecTest, ParsesAndRefuses) {
  auto a = parseAppSpec("comments", R"({"processor":"filter","max_per_second":2})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->processor, "filter");
  EXPECT_EQ(a->maxPerSecond, 2);
  EXPECT_EQ(json::parse(appJson(*a)), json::parse(R"({"name":"comments","processor":"filter","max_per_second":2.0})"));
  auto empty = parseAppSpec("plain", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(json::parse(appJson(*empty)), json::parse(R"({"name":"plain","processor":null,"max_per_second":null})"));
  for (const char* bad : {R"([])", R"({"processor":"Bad Name"})", R"({"max_per_second":0})",
                          R"({"max_per_second":-1})", R"({"max_per_second":"2"})", R"({"extra":1})",
                          R"({"name":"other"})", "{"}) {
    EXPECT_FALSE(parseAppSpec("app", bad).ok()) << bad;
  }
  EXPECT_FALSE(parseAppSpec("-app", "{}").ok());
}

TEST(TokenBucketTest, LimitsToTheRateAfterTheBurst) {
  constexpr int64_t kSecond = 1000000000;
  struct Step {
    int64_t atNs;
    bool taken;
  };
  // 2 per second, burst 2, starting full.
  const Step steps[] = {{kSecond, true},
                        {kSecond, true},
                        {kSecond, false},
                        {kSecond * 3 / 2, true},      // one token back after 0.5 s
                        {kSecond * 3 / 2 + 1, false},
                        {2 * kSecond, true},
                        {10 * kSecond, true},     // saved up to the burst only
                        {10 * kSecond, true},
                        {10 * kSecond, false}};
  TokenBucket b(2, 2);
  for (const auto& s : steps) EXPECT_EQ(b.take(s.atNs), s.taken) << s.atNs;
  EXPECT_EQ(b.waitNs(10 * kSecond), kSecond / 2);
  TokenBucket unlimited;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.take(1));
  EXPECT_EQ(unlimited.waitNs(1), 0);
}

}  // namespace
}  // namespace tern::stream
