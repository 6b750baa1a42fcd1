// docs/getting-started.md, run as written: every ```sh block whose first line is a
// "# step" comment is run in order with /bin/sh -e in one temporary directory, against a
// mosquitto broker and a ternd this test starts (the guide's section 2), and the lines of a
// ```text block right after a step must appear in its output, in order. The guide is read
// when the test runs, so an edited guide is tested as edited.
//
// Ordering: a step that publishes to an MQTT trigger runs after the step whose `tern up`
// deployed it, and the node sends its SUBSCRIBE while it handles the deploy, before `tern
// up` gets its answer; mosquitto_rr then connects and subscribes (two round trips with the
// broker) before it publishes, so the broker has the node's subscription by then.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "mosquitto_process.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

namespace fs = std::filesystem;

struct GuideStep {
  int line = 0;                        // of the opening fence, 1-based
  std::string title;                   // the "# step" line
  std::string script;                  // the block, the step line included
  std::vector<std::string> expected;   // non-empty lines of the following ```text block
};

// The steps of a guide: ```sh blocks whose first line starts with "# step", each with the
// ```text block that follows it (only blank lines between) as its expected output.
std::vector<GuideStep> guideSteps(const std::string& markdown) {
  std::vector<std::string> lines;
  std::istringstream in(markdown);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::vector<GuideStep> steps;
  auto blockEnd = [&](size_t open) {
    size_t i = open + 1;
    while (i < lines.size() && lines[i].rfind("```", 0) != 0) ++i;
    return i;
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("```", 0) != 0) continue;
    size_t end = blockEnd(i);
    if (lines[i] == "```sh" && i + 1 < end && lines[i + 1].rfind("# step", 0) == 0) {
      GuideStep step;
      step.line = static_cast<int>(i + 1);
      step.title = lines[i + 1];
      for (size_t j = i + 1; j < end; ++j) step.script += lines[j] + "\n";
      size_t next = end + 1;
      while (next < lines.size() && lines[next].find_first_not_of(" \t") == std::string::npos) ++next;
      if (next < lines.size() && lines[next] == "```text") {
        size_t textEnd = blockEnd(next);
        for (size_t j = next + 1; j < textEnd; ++j) {
          if (!lines[j].empty()) step.expected.push_back(lines[j]);
        }
      }
      steps.push_back(std::move(step));
    }
    i = end;
  }
  return steps;
}

TEST(GettingStartedTest, StepsAreTheMarkedShellBlocksWithTheOutputAfterThem) {
  const std::string guide =
      "# Guide\n"
      "```sh\n"
      "apt install tern\n"
      "```\n"
      "```sh\n"
      "# step: one\n"
      "echo a\n"
      "echo b\n"
      "```\n"
      "\n"
      "```text\n"
      "a\n"
      "\n"
      "b\n"
      "```\n"
      "```sh\n"
      "# step: two\n"
      "true\n"
      "```\n"
      "prose, then output that is not the step's\n"
      "```text\n"
      "x\n"
      "```\n"
      "```text\n"
      "# step: not shell\n"
      "```\n";
  auto steps = guideSteps(guide);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].line, 5);
  EXPECT_EQ(steps[0].title, "# step: one");
  EXPECT_EQ(steps[0].script, "# step: one\necho a\necho b\n");
  EXPECT_EQ(steps[0].expected, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(steps[1].title, "# step: two");
  EXPECT_TRUE(steps[1].expected.empty());
}

// Whether `want` appear in `output` as substrings, in order; the first missing one else.
std::string missingInOrder(const std::string& output, const std::vector<std::string>& want) {
  size_t at = 0;
  for (const auto& w : want) {
    size_t found = output.find(w, at);
    if (found == std::string::npos) return w;
    at = found + w.size();
  }
  return "";
}

std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(GettingStartedTest, EveryStepOfTheGuideRunsAndShowsWhatTheGuideSays) {
  auto steps = guideSteps(test::readText(fs::path(TERN_SOURCE_DIR) / "docs/getting-started.md"));
  // The guide goes from tern new to a workflow; a guide without these tests nothing.
  std::string all;
  for (const auto& s : steps) all += s.script;
  for (const char* essential : {"tern new", "make test", "tern up", "mosquitto_rr", "tern workflow run"}) {
    EXPECT_NE(all.find(essential), std::string::npos) << "no step runs " << essential;
  }

  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  fs::path data = dir.path() / "data";
  test::TerndProcess node(data, {"--mqtt-broker", broker.address(), "--workers", "2"});
  ASSERT_TRUE(test::eventually([&] {
    std::string log = node.log();
    return log.find("MQTT connected") != std::string::npos;
  })) << node.log();

  fs::path work = dir.path() / "work";
  fs::create_directories(work);
  std::string path = test::binDir().string() + ":" + std::getenv("PATH");
  setenv("PATH", path.c_str(), 1);
  setenv("TERN_DATA", data.c_str(), 1);
  setenv("TERN_NODE", ("http://127.0.0.1:" + std::to_string(node.port())).c_str(), 1);
  setenv("XDG_CACHE_HOME", (dir.path() / "cache").c_str(), 1);

  fs::path cwd = work;
  fs::path cwdFile = dir.path() / "cwd";
  for (const auto& step : steps) {
    SCOPED_TRACE("docs/getting-started.md:" + std::to_string(step.line) + ": " + step.title);
    // The guide's broker is the test's.
    std::string script = step.script;
    for (size_t at; (at = script.find("-p 1883")) != std::string::npos;) {
      script.replace(at, 7, "-p " + std::to_string(broker.port()));
    }
    std::string wrapped = "cd " + shellQuote(cwd.string()) + "\n" + script + "\npwd > " +
                          shellQuote(cwdFile.string()) + "\n";
    SubprocessOptions so;
    so.timeout = std::chrono::seconds(240);
    auto r = runSubprocess({"/bin/sh", "-ec", wrapped}, so);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exitStatus, 0) << r->output << "\nnode log:\n" << node.log();
    std::string missing = missingInOrder(r->output, step.expected);
    EXPECT_EQ(missing, "") << "not in the output (in order):\n" << r->output;
    std::string next = test::readText(cwdFile);
    while (!next.empty() && next.back() == '\n') next.pop_back();
    cwd = next;
  }
}

}  // namespace
}  // namespace tern
