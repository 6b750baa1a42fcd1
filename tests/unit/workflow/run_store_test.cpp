// The run store: group-committed writes read back, and ended runs removed after the
// retention while running ones stay.

#include "workflow/run_store.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace tern::workflow {
namespace {

TEST(RunStoreTest, EndedRunsPastTheRetentionAreRemovedWithTheirTasks) {
  test::TempDir dir;
  auto store = RunStore::open(dir.path() / "workflows.db");
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto& s = **store;
  for (const char* id : {"old", "new", "going"}) {
    ASSERT_TRUE(s.startRun(RunRecord{id, "w", "{}", "running", "{}", "", "", 1000, 0},
                           RunStore::Durability::kGroupCommit)
                    .ok());
    TaskRecord t;
    t.runId = id;
    t.key = std::string(id) + "/A";
    t.task = t.key;
    t.outcome = "ok";
    s.putTask(t);
  }
  s.finishRun(RunRecord{"old", "w", "", "succeeded", "", "{}", "", 0, 5000}, nullptr);
  s.finishRun(RunRecord{"new", "w", "", "failed", "", "", "boom", 0, 9000}, nullptr);
  s.purgeEndedBefore(8000);
  auto old = s.run("old");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->has_value());
  EXPECT_TRUE(s.tasks("old")->empty());
  auto kept = s.run("new");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->status, "failed");
  EXPECT_EQ((*kept)->error, "boom");
  EXPECT_EQ(s.tasks("new")->size(), 1u);
  auto going = s.unfinishedRuns();
  ASSERT_TRUE(going.ok());
  ASSERT_EQ(going->size(), 1u);
  EXPECT_EQ(going->front().id, "going");
  // Three starts, three tasks, two ends and the purge all went through the writer.
  EXPECT_GE(s.stats().writes, 9u);
}

}  // namespace
}  // namespace tern::workflow
