#include "util/environment.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tern {
namespace {

TEST(EnvironmentTest, EntriesComeBackInOrderFromOneBlock) {
  Environment env{"A=1", "B="};
  env.add("C", "x=y");
  Environment version{"V=2"};
  env.append(version);
  EXPECT_EQ(env.size(), 4u);
  EXPECT_EQ(env.bytes(), std::string_view("A=1\0B=\0C=x=y\0V=2\0", 17));
  EXPECT_EQ(env.list(), (std::vector<std::string>{"A=1", "B=", "C=x=y", "V=2"}));
  EXPECT_EQ(Environment(env.list()), env);
}

TEST(EnvironmentTest, AnEntryEndsAtItsFirstNul) {
  struct Case {
    std::string key;    // empty: add(value) alone
    std::string value;
    const char* want;
  };
  const Case cases[] = {
      {"", std::string("K=a\0B=2", 7), "K=a"},
      {"K", std::string("a\0B=2", 5), "K=a"},
      {std::string("K\0B", 3), "2", "K"},
      {"", std::string("\0B=2", 4), ""},
      {"K", "", "K="},
  };
  for (const auto& c : cases) {
    Environment env;
    if (c.key.empty()) {
      env.add(c.value);
    } else {
      env.add(c.key, c.value);
    }
    EXPECT_EQ(env.size(), 1u) << c.want;
    EXPECT_EQ(env.list(), std::vector<std::string>{c.want});
  }
}

TEST(EnvironmentTest, CopiesAndMovesKeepTheEntriesAndGrowingKeepsThemWhole) {
  Environment env;
  env.reserve(8);
  std::vector<std::string> want;
  // Well past the reserved bytes: every growth keeps what was written before.
  for (int i = 0; i < 200; ++i) {
    std::string key = "K" + std::to_string(i);
    std::string value(static_cast<size_t>(i % 7), 'v');
    env.add(key, value);
    want.push_back(key + "=" + value);
  }
  EXPECT_EQ(env.list(), want);

  Environment copy(env);
  EXPECT_EQ(copy, env);
  Environment assigned{"X=1"};
  assigned = env;
  EXPECT_EQ(assigned, env);
  EXPECT_EQ(assigned.list(), want);

  Environment moved(std::move(copy));
  EXPECT_EQ(moved.list(), want);
  EXPECT_TRUE(copy.empty());  // NOLINT: a moved-from environment is empty
  EXPECT_TRUE(copy.bytes().empty());
  copy.add("A", "1");  // and usable again
  EXPECT_EQ(copy.list(), std::vector<std::string>{"A=1"});

  Environment target{"Y=2"};
  target = std::move(moved);
  EXPECT_EQ(target.list(), want);
  EXPECT_EQ(target.size(), 200u);
}

TEST(EnvironmentTest, AnEmptyEnvironmentHasNoEntries) {
  Environment env;
  EXPECT_TRUE(env.empty());
  EXPECT_EQ(env.begin(), env.end());
  EXPECT_TRUE(env.bytes().empty());
}

}  // namespace
}  // namespace tern
