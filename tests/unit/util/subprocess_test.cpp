#include "util/subprocess.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitStatus) {
  auto r = runSubprocess({"sh", "-c", "echo out; echo err >&2; exit 7"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitStatus, 7);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(SubprocessTest, KillsAtTheTimeout) {
  SubprocessOptions o;
  o.timeout = std::chrono::milliseconds(100);
  auto r = runSubprocess({"sleep", "30"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timedOut);
}

TEST(SubprocessTest, BoundsTheOutputKept) {
  SubprocessOptions o;
  o.maxOutputBytes = 1000;
  auto r = runSubprocess({"sh", "-c", "head -c 100000 /dev/zero"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output.size(), 1000u);
  EXPECT_EQ(r->exitStatus, 0);
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  auto r = runSubprocess({"/nonexistent/program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace tern
