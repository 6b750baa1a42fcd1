// A function's log: the ring of recent invocation records, its stderr lines and its feeds.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "exec/function_table.h"

namespace tern::exec {
namespace {

InvocationRecord recordOf(std::string id, std::string outcome, std::string detail) {
  InvocationRecord r;
  r.id = std::move(id);
  r.version = static_cast<uint32_t>(r.id.size());
  r.startMs = 1000 + static_cast<int64_t>(r.id.size());
  r.outcome = std::move(outcome);
  r.detail = std::move(detail);
  return r;
}

TEST(FunctionLogTest, KeepsTheNewestRecordsOldestFirstWhateverTheirSizes) {
  FunctionLog log(3, 16);
  // Ids, outcomes and details of every length, so that a slot's strings are overwritten by
  // longer and by shorter ones than they held.
  std::vector<InvocationRecord> added = {
      recordOf("a", "ok", ""),
      recordOf(std::string(40, 'b'), "trap", std::string(100, 'x')),
      recordOf("cc", "ok", ""),
      recordOf(std::string(25, 'd'), "exited", "short"),
      recordOf("e", "timeout", std::string(300, 'y')),
      recordOf(std::string(64, 'f'), "ok", ""),
      recordOf("g", "ok", "z"),
  };
  for (size_t n = 0; n < added.size(); ++n) {
    log.add(added[n], "");
    auto kept = log.records();
    size_t expect = std::min<size_t>(n + 1, 3);
    ASSERT_EQ(kept.size(), expect) << "after " << n + 1;
    for (size_t k = 0; k < expect; ++k) {
      const InvocationRecord& want = added[n + 1 - expect + k];
      EXPECT_EQ(kept[k].id, want.id) << "after " << n + 1 << ", record " << k;
      EXPECT_EQ(kept[k].outcome, want.outcome);
      EXPECT_EQ(kept[k].detail, want.detail);
      EXPECT_EQ(kept[k].version, want.version);
      EXPECT_EQ(kept[k].startMs, want.startMs);
    }
  }
}

TEST(FunctionLogTest, FeedsGetEachRecordWithItsStderrLines) {
  FunctionLog log(2, 16);
  std::vector<std::string> seen;
  auto sub = log.subscribe([&](const InvocationRecord& r, const std::vector<LogLine>& lines) {
    std::string s = r.id + ":";
    for (const auto& l : lines) s += l.text + "|";
    seen.push_back(s);
  });
  log.add(recordOf("one", "ok", ""), "first\nsecond\n");
  log.add(recordOf("two", "ok", ""), "");
  log.add(recordOf("three", "ok", ""), "last");
  EXPECT_EQ(seen, (std::vector<std::string>{"one:first|second|", "two:", "three:last|"}));
  auto lines = log.lines(0, 10, std::chrono::milliseconds(0));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].invocationId, "one");
  EXPECT_EQ(lines[2].text, "last");
  EXPECT_EQ(lines[2].invocationId, "three");
  auto kept = log.records();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].id, "two");
  EXPECT_EQ(kept[1].id, "three");
}

TEST(FunctionLogTest, ALogOfNoRecordsKeepsNone) {
  FunctionLog log(0, 4);
  log.add(recordOf("a", "ok", ""), "line");
  EXPECT_TRUE(log.records().empty());
  EXPECT_EQ(log.lines(0, 10, std::chrono::milliseconds(0)).size(), 1u);
}

}  // namespace
}  // namespace tern::exec
