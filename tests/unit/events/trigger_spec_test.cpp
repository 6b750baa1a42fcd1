#include "events/trigger_spec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tern::events {
namespace {

TEST(TriggerSpecTest, ParsesTheThreeKinds) {
  auto m = parseTrigger("mqtt:sensors/+/temperature");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, TriggerKind::kMqtt);
  EXPECT_EQ(m->text, "sensors/+/temperature");
  auto c = parseTrigger("cron:*/5 * * * *");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, TriggerKind::kCron);
  auto e = parseTrigger("every:10s");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, TriggerKind::kEvery);
}

TEST(TriggerSpecTest, RejectsBadTriggersWithAReason) {
  struct Case {
    std::string spec;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"kafka:orders", "unknown trigger kind \"kafka\""},
      {"mqtt", "expected KIND:VALUE"},
      {"", "expected KIND:VALUE"},
      {"mqtt:", "is empty"},
      {"mqtt:a/#/b", "'#' must be the last level"},
      {"mqtt:a/b+", "must fill a whole level"},
      {std::string("mqtt:a\0b", 8), "without NUL"},
      {"cron:*/0 * * * *", "step"},
      {"cron:* * *", "cron"},
      {"cron:0 0 30 2 *", "cron"},
      {"every:500ms", "every"},
      {"every:soon", "every"},
      {"http:/x", "unknown trigger kind"},
  };
  for (const auto& c : cases) {
    auto r = parseTrigger(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << c.spec << " -> " << r.error().message();
  }
}

TEST(TriggerSpecTest, ChecksReplyTopicsAndRepeats) {
  EXPECT_TRUE(checkTriggers({"mqtt:in/#"}, "out/result").ok());
  EXPECT_TRUE(checkTriggers({}, "").ok());
  auto loop = checkTriggers({"mqtt:data/#"}, "data/result");
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.error().message().find("would invoke the function again"), std::string::npos);
  auto noMqtt = checkTriggers({"every:1m"}, "out");
  ASSERT_FALSE(noMqtt.ok());
  EXPECT_NE(noMqtt.error().message().find("needs an MQTT trigger"), std::string::npos);
  EXPECT_FALSE(checkTriggers({"mqtt:in"}, "out/+").ok());
  EXPECT_FALSE(checkTriggers({"every:1m", "every:1m"}, "").ok());
  std::vector<std::string> many;
  for (int i = 0; i < 40; ++i) many.push_back("mqtt:t/" + std::to_string(i));
  EXPECT_FALSE(checkTriggers(many, "").ok());
}

}  // namespace
}  // namespace tern::events
