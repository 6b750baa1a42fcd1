#include "util/topic.h"

#include <gtest/gtest.h>

#include <string>

namespace tern {
namespace {

TEST(TopicTest, MatchesFiltersAsMqttSpecifies) {
  struct Case {
    const char* filter;
    const char* topic;
    bool match;
  };
  const Case cases[] = {
      {"a/b", "a/b", true},
      {"a/b", "a/c", false},
      {"a/+", "a/b", true},
      {"a/+", "a/b/c", false},
      {"a/+/c", "a/x/c", true},
      {"a/#", "a", true},
      {"a/#", "a/b/c", true},
      {"a/#", "ab", false},
      {"#", "anything/at/all", true},
      {"+", "a", true},
      {"+", "a/b", false},
      {"+/+", "/x", true},  // an empty first level is a level
      {"#", "$SYS/load", false},
      {"+/load", "$SYS/load", false},
      {"$SYS/#", "$SYS/load", true},
      {"sensors/+/temp", "sensors/k1/temp", true},
      {"sensors/+/temp", "sensors/k1/humidity", false},
      {"a/b/", "a/b/", true},
      {"a/b/", "a/b", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(topicMatches(c.filter, c.topic), c.match) << c.filter << " vs " << c.topic;
  }
}

TEST(TopicTest, RejectsMalformedFiltersAndNames) {
  EXPECT_TRUE(checkTopicFilter("sensors/+/temp").ok());
  EXPECT_TRUE(checkTopicFilter("#").ok());
  EXPECT_FALSE(checkTopicFilter("").ok());
  EXPECT_FALSE(checkTopicFilter("a/#/b").ok());
  EXPECT_FALSE(checkTopicFilter("a/b#").ok());
  EXPECT_FALSE(checkTopicFilter("a+/b").ok());
  EXPECT_FALSE(checkTopicFilter(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(checkTopicFilter("\xff\xfe").ok());
  EXPECT_FALSE(checkTopicFilter(std::string(70000, 'a')).ok());
  EXPECT_TRUE(checkTopicName("alerts/k1").ok());
  EXPECT_FALSE(checkTopicName("alerts/+").ok());
  EXPECT_FALSE(checkTopicName("alerts/#").ok());
  auto e = checkTopicFilter("a/#/b");
  EXPECT_NE(e.error().message().find("'#' must be the last level"), std::string::npos);
}

}  // namespace
}  // namespace tern
