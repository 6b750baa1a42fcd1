#include "exec/capabilities.h"

#include <gtest/gtest.h>

#include "store/registry.h"
#include "util/names.h"

namespace tern::exec {
namespace {

struct ParseCase {
  std::vector<std::string> allow;
  bool ok;
  std::string describeOrError;  // describe() when ok, a fragment of the error otherwise
};

TEST(Capabilities, ParseTable) {
  const ParseCase cases[] = {
      {{}, true, "none"},
      {{"log"}, true, "none"},
      {{"kv"}, true, "kv"},
      {{"kv", "kv", "log"}, true, "kv"},
      {{"publish:alerts/#"}, true, "publish:alerts/#"},
      {{"publish:a/+/c", "publish:a/+/c"}, true, "publish:a/+/c"},
      {{"invoke:resize", "kv"}, true, "kv, invoke:resize"},
      {{"invoke:*"}, true, "invoke:*"},
      {{"stream:readings", "stream:readings", "kv"}, true, "kv, stream:readings"},
      {{"stream:a-1", "stream:*"}, true, "stream:*, stream:a-1"},
      {{""}, false, "unknown kind"},
      {{"files"}, false, "invalid capability \"files\": unknown kind"},
      {{"KV"}, false, "unknown kind"},
      {{"kv:x"}, false, "takes no argument"},
      {{"log:debug"}, false, "takes no argument"},
      {{"publish"}, false, "use publish:TOPIC_FILTER"},
      {{"publish:"}, false, "use publish:TOPIC_FILTER"},
      {{"publish:a/#/b"}, false, "invalid capability \"publish:a/#/b\""},
      {{"publish:a+"}, false, "invalid capability"},
      {{"invoke"}, false, "use invoke:NAME"},
      {{"invoke:"}, false, "use invoke:NAME"},
      {{"invoke:Bad"}, false, "a function name is"},
      {{"invoke:-x"}, false, "a function name is"},
      {{"invoke:a*"}, false, "a function name is"},
      {{"invoke:" + std::string(64, 'a')}, false, "a function name is"},
      {{"kv", "bogus\n\x01"}, false, "\"bogus\\x0a\\x01\""},
      {{"stream"}, false, "use stream:TOPIC"},
      {{"stream:"}, false, "use stream:TOPIC"},
      {{"stream:a/b"}, false, "a stream topic name is"},
      {{"stream:_a"}, false, "a stream topic name is"},
      {{"stream:a*"}, false, "a stream topic name is"},
      {{"stream:" + std::string(65, 'a')}, false, "a stream topic name is"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.allow));
    auto caps = parseCapabilities(c.allow);
    ASSERT_EQ(caps.ok(), c.ok) << (caps.ok() ? caps->describe() : caps.error().message());
    if (c.ok) {
      EXPECT_EQ(caps->describe(), c.describeOrError);
    } else {
      EXPECT_EQ(caps.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(caps.error().message().find(c.describeOrError), std::string::npos)
          << caps.error().message();
    }
  }
}

TEST(Capabilities, NothingGrantedByDefault) {
  Capabilities none;
  EXPECT_FALSE(none.allowsKv());
  EXPECT_FALSE(none.allowsPublish("a"));
  EXPECT_FALSE(none.allowsInvoke("a"));
  auto parsed = parseCapabilities({"log"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->allowsKv());
}

TEST(Capabilities, PublishFollowsTopicFilters) {
  auto caps = parseCapabilities({"publish:alerts/#", "publish:sensors/+/temp"});
  ASSERT_TRUE(caps.ok());
  EXPECT_TRUE(caps->allowsPublish("alerts"));
  EXPECT_TRUE(caps->allowsPublish("alerts/fire/kitchen"));
  EXPECT_TRUE(caps->allowsPublish("sensors/k1/temp"));
  EXPECT_FALSE(caps->allowsPublish("sensors/k1/humidity"));
  EXPECT_FALSE(caps->allowsPublish("sensors/a/b/temp"));
  EXPECT_FALSE(caps->allowsPublish("x/y"));
  EXPECT_FALSE(caps->allowsKv());

  auto one = parseCapabilities({"publish:alerts/#"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->publishDenial("x/y"), "capability \"publish:alerts/#\" does not cover topic \"x/y\"");
  auto none = parseCapabilities({"kv"});
  ASSERT_TRUE(none.ok());
  EXPECT_NE(none->publishDenial("x/y").find("needs a \"publish:TOPIC_FILTER\" capability"),
            std::string::npos);
  EXPECT_NE(none->publishDenial("x/y").find("granted: kv"), std::string::npos);
}

TEST(Capabilities, InvokeByNameOrAny) {
  auto caps = parseCapabilities({"invoke:resize"});
  ASSERT_TRUE(caps.ok());
  EXPECT_TRUE(caps->allowsInvoke("resize"));
  EXPECT_FALSE(caps->allowsInvoke("resize2"));
  EXPECT_FALSE(caps->allowsInvoke("Resize"));
  EXPECT_EQ(caps->invokeDenial("other"),
            "capability \"invoke:resize\" does not cover function \"other\"");
  auto any = parseCapabilities({"invoke:*"});
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->allowsInvoke("anything"));
  EXPECT_EQ(parseCapabilities({})->kvDenial(),
            "key-value state needs the \"kv\" capability (granted: none)");
}

TEST(Capabilities, StreamByTopicOrAny) {
  auto caps = parseCapabilities({"stream:readings"});
  ASSERT_TRUE(caps.ok());
  EXPECT_TRUE(caps->allowsStream("readings"));
  EXPECT_FALSE(caps->allowsStream("readings2"));
  EXPECT_FALSE(caps->allowsStream("Readings"));
  EXPECT_FALSE(caps->allowsPublish("readings"));  // MQTT publish is another capability
  EXPECT_EQ(caps->streamDenial("alerts"),
            "capability \"stream:readings\" does not cover stream topic \"alerts\"");
  auto any = parseCapabilities({"stream:*"});
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->allowsStream("anything"));
  EXPECT_FALSE(Capabilities().allowsStream("a"));
  auto publishOnly = parseCapabilities({"publish:#"});
  ASSERT_TRUE(publishOnly.ok());
  EXPECT_FALSE(publishOnly->allowsStream("a"));
  EXPECT_EQ(publishOnly->streamDenial("a"),
            "publishing to stream topic \"a\" needs a \"stream:TOPIC\" capability (granted: "
            "publish:#)");
}

// invoke:NAME accepts exactly the names the registry accepts.
TEST(Capabilities, InvokeNamesFollowTheRegistryRule) {
  for (const std::string& name : std::vector<std::string>{"a", "a-b", "0", "abc-123", "-a", "A", "a_b", "a.b", "a b",
                           std::string(63, 'x'), std::string(64, 'x')}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(parseCapabilities({"invoke:" + name}).ok(), isFunctionName(name));
  }
}

}  // namespace
}  // namespace tern::exec
