// `tern run` as a user runs it: the real binary, real files, exit statuses.

#include <gtest/gtest.h>

#include <fstream>

#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

namespace fs = std::filesystem;

struct RunOutput {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class TernRunTest : public ::testing::Test {
 protected:
  test::TempDir dir;

  // Runs `tern run ARGS...` with stdin from `stdinText`, capturing stdout and stderr apart.
  RunOutput tern(const std::vector<std::string>& args, const std::string& stdinText = "") {
    {
      std::ofstream(dir.path() / "stdin") << stdinText;
    }
    std::vector<std::string> argv{"sh", "-c", "\"$0\" \"$@\" <stdin >out 2>err",
                                  (test::binDir() / "tern").string(), "run", "--cache-dir",
                                  test::cacheDir().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions o;
    o.workingDirectory = dir.path().string();
    auto r = runSubprocess(argv, o);
    EXPECT_TRUE(r.ok());
    return RunOutput{r.ok() ? r->exitStatus : -1, slurp(dir.path() / "out"), slurp(dir.path() / "err")};
  }

  static std::string example(const char* name) {
    return (test::examplesDir() / (std::string(name) + ".wasm")).string();
  }
};

TEST_F(TernRunTest, HelloPrintsAndExitsZero) {
  auto r = tern({example("hello")});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "Hello from tern!\n");
  EXPECT_EQ(r.err, "");
}

// Every compile tier runs the function the same; an unknown tier is refused.
TEST_F(TernRunTest, EveryCompileTierRunsTheFunction) {
  for (const char* tier : {"auto", "baseline", "optimized"}) {
    auto r = tern({example("hello_rust"), "--compile-tier", tier, "--env", "REQUEST_METHOD=PUT"},
                  "abc");
    EXPECT_EQ(r.status, 0) << tier << ": " << r.err;
    EXPECT_NE(r.out.find("got 3 bytes"), std::string::npos) << tier << ": " << r.out;
  }
  auto bad = tern({example("hello"), "--compile-tier", "fast"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--compile-tier"), std::string::npos) << bad.err;
  // --tier is the same option.
  auto baseline = tern({example("hello"), "--tier", "baseline"});
  EXPECT_EQ(baseline.status, 0) << baseline.err;
  EXPECT_EQ(baseline.out, "Hello from tern!\n");
  auto badTier = tern({example("hello"), "--tier", "fast"});
  EXPECT_NE(badTier.status, 0);
  EXPECT_NE(badTier.err.find("--tier"), std::string::npos) << badTier.err;
  auto both = tern({example("hello"), "--tier", "baseline", "--compile-tier", "optimized"});
  EXPECT_NE(both.status, 0);
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
}

// `tern deploy --tier baseline|optimized|auto` sets the function's compile tier, which its
// info shows; --tier edge|cloud still places it, and a word of neither kind is refused
// before anything is sent.
TEST_F(TernRunTest, DeployTakesTheCompileTierAsTier) {
  test::TerndProcess node(dir.path() / "node");
  auto tern = [&](const std::vector<std::string>& args) { return node.cli(args); };
  for (const char* tier : {"baseline", "optimized", "auto"}) {
    auto d = tern({"deploy", "--tier", tier, "hello", example("hello")});
    ASSERT_EQ(d.exitStatus, 0) << tier << ": " << d.output;
    auto info = tern({"--json", "info", "hello"});
    ASSERT_EQ(info.exitStatus, 0) << info.output;
    EXPECT_NE(info.output.find(std::string("\"compile_tier\":\"") + tier + "\""),
              std::string::npos)
        << info.output;
  }
  auto both = tern({"deploy", "hello", example("hello"), "--tier", "edge", "--tier", "baseline"});
  ASSERT_EQ(both.exitStatus, 0) << both.output;
  auto info = tern({"--json", "info", "hello"});
  EXPECT_NE(info.output.find("\"compile_tier\":\"baseline\""), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"tier\":\"edge\""), std::string::npos) << info.output;
  auto bad = tern({"deploy", "hello", example("hello"), "--tier", "fast"});
  EXPECT_NE(bad.exitStatus, 0);
  EXPECT_NE(bad.output.find("--tier must be edge or cloud"), std::string::npos) << bad.output;
}

TEST_F(TernRunTest, StdinOrInputFileIsTheRequest) {
  EXPECT_EQ(tern({example("echo")}, "from stdin").out, "from stdin");
  std::ofstream(dir.path() / "req.bin") << "from a file";
  EXPECT_EQ(tern({example("echo"), "--input", (dir.path() / "req.bin").string()}, "ignored").out,
            "from a file");
}

TEST_F(TernRunTest, EnvAndArgsReachTheFunction) {
  auto r = tern({example("hello_rust"), "--env", "REQUEST_METHOD=PUT", "--env",
                 "PATH_INFO=/a/b", "--arg", "x"},
                "abc");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("got 3 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PUT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/a/b"), std::string::npos) << r.out;
}

TEST_F(TernRunTest, ExitStatusesNameTheCause) {
  struct Case {
    std::vector<std::string> args;
    int status;
    const char* message;
  } cases[] = {
      {{example("exit3")}, 3, nullptr},
      {{example("oob")}, 68, "tern: trap: out-of-bounds memory access\n"},
      {{example("divzero")}, 68, "tern: trap: integer divide by zero\n"},
      {{example("unreachable")}, 68, "tern: trap: unreachable executed\n"},
      {{example("recurse")}, 68, "tern: trap: call stack exhausted\n"},
      {{example("loop"), "--timeout-ms", "100"}, 69, "tern: timeout: stopped after"},
      {{example("membomb"), "--memory-mb", "8"}, 70, "tern: memory limit: memory.grow to"},
  };
  for (const auto& c : cases) {
    auto r = tern(c.args);
    EXPECT_EQ(r.status, c.status) << c.args[0] << ": " << r.err;
    if (c.message) {
      EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    }
  }
}

TEST_F(TernRunTest, BadFilesGetOneClearLine) {
  std::ofstream(dir.path() / "garbage.wasm") << "this is not wasm";
  auto garbage = tern({(dir.path() / "garbage.wasm").string()});
  EXPECT_EQ(garbage.status, 65);
  EXPECT_EQ(garbage.err, "tern: invalid module: not a WebAssembly binary (bad magic number)\n");

  auto bytes = test::readFile(example("hello"));
  std::ofstream(dir.path() / "cut.wasm", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), 200);
  auto cut = tern({(dir.path() / "cut.wasm").string()});
  EXPECT_EQ(cut.status, 65);
  EXPECT_EQ(cut.err.rfind("tern: invalid module: ", 0), 0u) << cut.err;

  auto missing = tern({(dir.path() / "nope.wasm").string()});
  EXPECT_EQ(missing.status, 74);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

TEST_F(TernRunTest, BadOptionsAreRejected) {
  EXPECT_EQ(tern({example("hello"), "--env", "NOEQUALS"}).status, 64);
  EXPECT_EQ(tern({example("hello"), "--memory-mb", "0"}).status, 64);
  EXPECT_EQ(tern({example("hello"), "--timeout-ms", "abc"}).status, 64);
}

TEST_F(TernRunTest, RepeatRunsFreshSandboxesAndReportsTimings) {
  auto r = tern({example("hello"), "--repeat", "500"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "Hello from tern!\n");
  EXPECT_NE(r.err.find("500 fresh sandboxes: median"), std::string::npos) << r.err;
}

TEST_F(TernRunTest, OutputFloodIsStopped) {
  auto r = tern({example("flood")});
  EXPECT_EQ(r.status, 72);
  EXPECT_NE(r.err.find("tern: output limit: stdout exceeded"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tern
