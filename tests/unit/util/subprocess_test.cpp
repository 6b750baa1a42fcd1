#include "util/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "test_support.h"

namespace tern {
namespace {

TEST(SubprocessTest, CapturesOutputAndExitStatus) {
  auto r = runSubprocess({"sh", "-c", "echo out; echo err >&2; exit 7"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitStatus, 7);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(SubprocessTest, ChildEnvironmentAppliesSettingsToTheInheritedOne) {
  struct Case {
    std::vector<const char*> inherited;
    std::vector<std::string> settings;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {{"PATH=/bin", "HOME=/root"}, {}, {"PATH=/bin", "HOME=/root"}},
      {{"PATH=/bin"}, {"A=1"}, {"PATH=/bin", "A=1"}},
      {{"PATH=/bin", "A=0"}, {"A=1"}, {"PATH=/bin", "A=1"}},
      // A name is the whole text before '=': AB and A are different variables.
      {{"AB=0"}, {"A=1"}, {"AB=0", "A=1"}},
      {{}, {"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, {"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
      // glibc reads one list of tunables: the setting joins what the environment had.
      {{"GLIBC_TUNABLES=glibc.malloc.check=3"},
       {"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"},
       {"GLIBC_TUNABLES=glibc.malloc.check=3:glibc.malloc.hugetlb=1"}},
      {{"GLIBC_TUNABLES="}, {"GLIBC_TUNABLES=x=1"}, {"GLIBC_TUNABLES=x=1"}},
      {{"X=1", "Y=2"}, {"Y=3", "X=4", "Z=5"}, {"X=4", "Y=3", "Z=5"}},
  };
  for (const Case& c : cases) {
    std::vector<const char*> inherited = c.inherited;
    inherited.push_back(nullptr);
    EXPECT_EQ(childEnvironment(inherited.data(), c.settings), c.expected)
        << c.settings.size() << " settings on " << c.inherited.size() << " variables";
  }
}

TEST(SubprocessTest, TheChildSeesItsEnvironmentSettings) {
  SubprocessOptions options;
  options.environment = {"TERN_SUBPROCESS_TEST=set for the child"};
  auto r = runSubprocess({"sh", "-c", "printf '%s|%s' \"$TERN_SUBPROCESS_TEST\" \"$PATH\""},
                         options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, std::string("set for the child|") + std::getenv("PATH"));
  // Without settings the child has this process's environment, unchanged.
  auto plain = runSubprocess({"sh", "-c", "printf '%s' \"${TERN_SUBPROCESS_TEST-unset}\""});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->output, "unset");
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

constexpr const char* kHog = TERN_TEST_RESOURCE_HOG;

// Issue 10: the compilers had no memory bound. With an address-space limit, an allocation
// beyond it fails at once instead of growing toward the machine's memory.
TEST(SubprocessTest, AddressSpaceLimitMakesLargerAllocationsFail) {
  const std::string gib = std::to_string(1ull << 30);
  auto free = runSubprocess({kHog, "alloc", gib});
  ASSERT_TRUE(free.ok()) << free.error().describe();
  EXPECT_EQ(free->exitStatus, 0) << free->output;  // the same request without the limit

  SubprocessOptions o;
  o.limits.addressSpaceBytes = 256ull << 20;
  auto limited = runSubprocess({kHog, "alloc", gib}, o);
  ASSERT_TRUE(limited.ok()) << limited.error().describe();
  EXPECT_EQ(limited->exitStatus, 3) << limited->output;
  EXPECT_NE(limited->output.find("cannot allocate"), std::string::npos) << limited->output;

  // The limit holds for everything the child starts (the C compiler driver starts cc1).
  auto grandchild = runSubprocess({"sh", "-c", std::string(kHog) + " alloc " + gib}, o);
  ASSERT_TRUE(grandchild.ok());
  EXPECT_EQ(grandchild->exitStatus, 3) << grandchild->output;
}

TEST(SubprocessTest, CpuLimitStopsASpinningProcess) {
  SubprocessOptions o;
  o.limits.cpuSeconds = 1;
  o.timeout = std::chrono::minutes(2);  // a backstop only: the CPU limit ends it first
  auto r = runSubprocess({kHog, "spin"}, o);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_FALSE(r->timedOut);
  EXPECT_EQ(r->termSignal, SIGXCPU);
  EXPECT_GT(r->cpuSeconds, 0.0);
}

// A timeout ends the child's whole process group, not only the child: a compiler driver's
// cc1 must not keep running after the driver is killed.
TEST(SubprocessTest, TimeoutKillsWhatTheChildStarted) {
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(2);
  auto r = runSubprocess({"sh", "-c", "sleep 1000 & echo $!; wait"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timedOut);
  ASSERT_FALSE(r->output.empty()) << "the shell printed no pid before the timeout";
  pid_t sleeper = std::stoi(r->output);
  ASSERT_GT(sleeper, 0);
  // Gone, or a zombie waiting for whoever adopted it to reap it.
  auto ended = [&] {
    std::ifstream in("/proc/" + std::to_string(sleeper) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');
    return stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z");
  };
  EXPECT_TRUE(test::eventually(ended)) << "sleep " << sleeper << " still runs";
}

// The relay sees the producer's stdout as it comes and decides what the consumer reads; its
// last call adds a trailer. 300 KB is more than a pipe holds, so both sides must make
// progress together.
TEST(PipelineTest, TheConsumerReadsWhatTheRelayMakesOfTheProducersOutput) {
  std::string seen;
  int lastCalls = 0;
  auto r = runPipeline({"sh", "-c", "yes abc | head -c 300000; echo note >&2"},
                       {"sh", "-c", "tr a-z A-Z | wc -c; echo from-consumer >&2"},
                       [&](std::string_view piece, bool last, std::string& out) {
                         seen.append(piece);
                         if (last) {
                           ++lastCalls;
                           out += "tail\n";
                           return;
                         }
                         out.append(piece);
                       });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(seen.size(), 300000u);
  EXPECT_EQ(lastCalls, 1);
  EXPECT_EQ(r->producer.exitStatus, 0);
  EXPECT_EQ(r->producer.output, "note\n");  // its stderr only: its stdout was the data
  EXPECT_EQ(r->consumer.exitStatus, 0);
  EXPECT_NE(r->consumer.output.find("300005"), std::string::npos) << r->consumer.output;
  EXPECT_NE(r->consumer.output.find("from-consumer"), std::string::npos);
}

// Far more output than the pipes and the relay's buffer hold, through a consumer that reads
// in small pieces: nothing is lost or repeated however the writes are cut.
TEST(PipelineTest, OutputLargerThanEveryBufferArrivesWhole) {
  auto r = runPipeline({"sh", "-c", "yes x | head -c 8000000"},
                       {"sh", "-c", "dd bs=4096 2>/dev/null | awk '$0 != \"x\" { other++ } "
                                    "END { print NR, other, $0 }'"},
                       [](std::string_view piece, bool last, std::string& out) {
                         out.append(piece);
                         if (last) out += "end";
                       });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->producer.exitStatus, 0);
  EXPECT_EQ(r->consumer.exitStatus, 0);
  // Every line arrives once and whole: 4,000,000 lines "x", then the trailer.
  EXPECT_EQ(r->consumer.output, "4000001 1 end\n") << r->consumer.output;
}

// A consumer that gives up early is not written to again, and the producer still runs to
// its end (its status is the one that says what went wrong when it fails).
TEST(PipelineTest, AConsumerThatExitsEarlyEndsNothingElse) {
  auto r = runPipeline({"sh", "-c", "head -c 2000000 /dev/zero; exit 3"},
                       {"sh", "-c", "head -c 10 >/dev/null; echo stopped; exit 4"},
                       [](std::string_view piece, bool, std::string& out) { out.append(piece); });
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->producer.exitStatus, 3);
  EXPECT_EQ(r->consumer.exitStatus, 4);
  EXPECT_EQ(r->consumer.output, "stopped\n");
}

TEST(PipelineTest, TheTimeoutEndsBoth) {
  SubprocessOptions o;
  o.timeout = std::chrono::milliseconds(300);
  auto r = runPipeline({"sleep", "30"}, {"cat"},
                       [](std::string_view piece, bool, std::string& out) { out.append(piece); },
                       o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->producer.timedOut);
  EXPECT_TRUE(r->consumer.timedOut);
  EXPECT_EQ(r->producer.termSignal, SIGKILL);
  EXPECT_EQ(r->consumer.termSignal, SIGKILL);
}

TEST(PipelineTest, AMissingProgramIsAnErrorAndLeavesNothingRunning) {
  auto first = runPipeline({"/nonexistent/program"}, {"cat"},
                           [](std::string_view, bool, std::string&) {});
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code(), ErrorCode::kIo);
  auto second = runPipeline({"sleep", "30"}, {"/nonexistent/program"},
                            [](std::string_view, bool, std::string&) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kIo);
  EXPECT_NE(second.error().message().find("/nonexistent/program"), std::string::npos);
}

}  // namespace
}  // namespace tern
