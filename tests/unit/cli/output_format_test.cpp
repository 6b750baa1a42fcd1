#include "cli/output_format.h"

#include "cli/async_commands.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ctime>

#include "cli_test_env.h"

namespace tern::cli {
namespace {

using json = nlohmann::json;
using test::ScopedEnv;

constexpr int64_t kNow = 1714564984000;  // 2024-05-01 12:03:04 UTC

// Timestamps print in local time; the tests pin the zone.
class OutputFormatTest : public ::testing::Test {
 protected:
  OutputFormatTest() : tz_("TZ", "UTC") { ::tzset(); }
  ~OutputFormatTest() override { ::tzset(); }

 private:
  ScopedEnv tz_;
};

json version(int v,
             const char* sha = "4e4dff14760008febf18fbe0b797f054f9f3e5ae349725f7509635f6e7fd0ced") {
  return json{{"name", "hello"},      {"version", v},         {"module_sha256", sha},
              {"module_bytes", 4204}, {"memory_mb", 128},     {"timeout_ms", 10000},
              {"concurrency", 0},     {"env", json::array()}, {"created_at_ms", kNow - 300000 * v}};
}

TEST_F(OutputFormatTest, Sizes) {
  EXPECT_EQ(formatBytes(0), "0 B");
  EXPECT_EQ(formatBytes(1023), "1023 B");
  EXPECT_EQ(formatBytes(4204), "4.1 KiB");
  EXPECT_EQ(formatBytes(12u << 20), "12.0 MiB");
  EXPECT_EQ(formatBytes(3ull << 30), "3.0 GiB");
}

TEST_F(OutputFormatTest, AgesAndDurations) {
  EXPECT_EQ(formatAge(kNow, kNow), "just now");
  EXPECT_EQ(formatAge(kNow + 5000, kNow), "just now");  // a node clock ahead of ours
  EXPECT_EQ(formatAge(kNow - 42000, kNow), "42s ago");
  EXPECT_EQ(formatAge(kNow - 5 * 60000, kNow), "5m ago");
  EXPECT_EQ(formatAge(kNow - 3 * 3600000, kNow), "3h ago");
  EXPECT_EQ(formatAge(kNow - 12 * 86400000LL, kNow), "12d ago");
  EXPECT_EQ(formatMicros(850), "850 us");
  EXPECT_EQ(formatMicros(12345), "12.3 ms");
  EXPECT_EQ(formatMicros(2410000), "2.41 s");
  EXPECT_EQ(formatUptime(45.9), "45s");
  EXPECT_EQ(formatUptime(303), "5m 3s");
  EXPECT_EQ(formatUptime(7500), "2h 5m");
  EXPECT_EQ(formatUptime(3 * 86400 + 4 * 3600 + 59), "3d 4h");
  EXPECT_EQ(formatTimestamp(kNow + 123), "2024-05-01 12:03:04");
  EXPECT_EQ(formatTimestamp(kNow + 123, Millis::kShow), "2024-05-01 12:03:04.123");
}

TEST_F(OutputFormatTest, TerminalSafeEscapesControlsAndBadUtf8) {
  EXPECT_EQ(terminalSafe("plain\ttext é ✓"), "plain\ttext é ✓");
  EXPECT_EQ(terminalSafe("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
  EXPECT_EQ(terminalSafe("a\nb\rc"), "a\\x0ab\\x0dc");
  EXPECT_EQ(terminalSafe("\xc2\x9b"
                         "2J"),
            "\\xc2\\x9b2J");  // C1 CSI
  EXPECT_EQ(terminalSafe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(terminalSafe("\xe2\x80"), "\\xe2\\x80");  // truncated sequence
}

TEST_F(OutputFormatTest, DeployedLine) {
  EXPECT_EQ(formatDeployed(version(3)), "deployed hello version 3 (sha256 4e4dff14…, 4.1 KiB)\n");
  EXPECT_EQ(formatRolledBack(version(2)),
            "rolled back hello: version 2 is active (sha256 4e4dff14…, 4.1 KiB)\n");
}

TEST_F(OutputFormatTest, FunctionListIsAnAlignedTable) {
  json list = {{"functions",
                {{{"name", "echo"},
                  {"active_version", 1},
                  {"latest_version", 1},
                  {"versions", 1},
                  {"updated_at_ms", kNow - 42000}},
                 {{"name", "hello-world"},
                  {"active_version", 2},
                  {"latest_version", 3},
                  {"versions", 3},
                  {"updated_at_ms", kNow - 7200000}}}}};
  EXPECT_EQ(formatFunctionList(list, kNow),
            "NAME         VERSION       VERSIONS  UPDATED\n"
            "echo         1             1         42s ago\n"
            "hello-world  2 (latest 3)  3         2h ago\n");
  EXPECT_EQ(formatFunctionList(json{{"functions", json::array()}}, kNow),
            "no functions deployed\n");
}

TEST_F(OutputFormatTest, VersionsMarkTheActiveOne) {
  json v2 = version(2);
  v2["env"] = {"GREETING=hi"};
  v2["concurrency"] = 4;
  json doc = {{"name", "hello"}, {"active_version", 2}, {"versions", {version(1), v2, version(3)}}};
  std::string out = formatVersions(doc, kNow);
  EXPECT_EQ(out,
            "   VERSION  SHA256     SIZE     MEMORY   TIMEOUT   CONCURRENCY  ENV          CREATED\n"
            "   1        4e4dff14…  4.1 KiB  128 MiB  10000 ms  -            -            "
            "2024-05-01 11:58:04 (5m ago)\n"
            "*  2        4e4dff14…  4.1 KiB  128 MiB  10000 ms  4            GREETING=hi  "
            "2024-05-01 11:53:04 (10m ago)\n"
            "   3        4e4dff14…  4.1 KiB  128 MiB  10000 ms  -            -            "
            "2024-05-01 11:48:04 (15m ago)\n");
}

TEST_F(OutputFormatTest, InfoShowsSettingsCountsAndTheLastFewInvocations) {
  json info = version(3);
  info["active_version"] = 3;
  info["env"] = {"A=1", "B=two words"};
  info["in_flight"] = 1.0;  // the node sends gauges as floating point
  info["invocations"] = {{"ok", 12}, {"exited", 2}, {"trap", 1}, {"timeout", 0}, {"rejected", 0}};
  json recent = json::array();
  for (int i = 0; i < 8; ++i) {
    recent.push_back({{"id", fmt::format("id{}", i)},
                      {"version", 3},
                      {"start_ms", kNow + i * 1000},
                      {"duration_us", 1500},
                      {"queue_wait_us", 3},
                      {"outcome", i == 7 ? "trap" : "ok"},
                      {"exit_code", 0},
                      {"detail", i == 7 ? "integer divide by zero" : ""}});
  }
  recent[6]["outcome"] = "exited";
  recent[6]["exit_code"] = 3;
  info["recent_invocations"] = recent;
  std::string out = formatFunctionInfo(info, kNow + 60000);
  EXPECT_NE(out.find("name:         hello\n"), std::string::npos) << out;
  EXPECT_NE(out.find("version:      3 (active)\n"), std::string::npos) << out;
  EXPECT_NE(
      out.find("module:       sha256 "
               "4e4dff14760008febf18fbe0b797f054f9f3e5ae349725f7509635f6e7fd0ced (4.1 KiB)\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("concurrency:  unlimited"), std::string::npos) << out;
  EXPECT_NE(out.find("env:          A=1 B=two words\n"), std::string::npos) << out;
  EXPECT_NE(out.find("deployed:     2024-05-01 11:48:04 (16m ago)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("in flight:    1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("invocations:  12 ok, 2 exited, 1 trap (15 total)\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("last 5 invocations:\n"), std::string::npos) << out;
  // The last five, oldest first: id3..id7.
  EXPECT_EQ(out.find("id2"), std::string::npos) << out;
  size_t p3 = out.find("id3"), p7 = out.find("id7");
  ASSERT_NE(p3, std::string::npos);
  ASSERT_NE(p7, std::string::npos);
  EXPECT_LT(p3, p7);
  EXPECT_NE(out.find("exited 3"), std::string::npos) << out;
  EXPECT_NE(out.find("id6  3        2024-05-01 12:03:10.000  1.5 ms    3 us    exited 3  -\n"
                     "id7  3        2024-05-01 12:03:11.000  1.5 ms    3 us    trap      "
                     "integer divide by zero\n"),
            std::string::npos)
      << out;
}

TEST_F(OutputFormatTest, InfoWithoutInvocationsSaysNone) {
  json info = version(1);
  info["invocations"] = {{"ok", 0}, {"trap", 0}};
  info["recent_invocations"] = json::array();
  std::string out = formatFunctionInfo(info, kNow);
  EXPECT_NE(out.find("invocations:  none\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("last"), std::string::npos) << out;
}

TEST_F(OutputFormatTest, InfoShowsTriggersAndCapabilitiesWhenThereAreAny) {
  json info = version(1);
  EXPECT_EQ(formatFunctionInfo(info, kNow).find("triggers:"), std::string::npos);
  info["triggers"] = {"mqtt:sensors/+/t", "cron:*/5 * * * *"};
  info["reply_topic"] = "out/\x1b";
  info["allow"] = {"kv", "publish:alerts/#"};
  std::string out = formatFunctionInfo(info, kNow);
  EXPECT_NE(out.find("triggers:     mqtt:sensors/+/t 'cron:*/5 * * * *' (replies to out/\\x1b)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("allow:        kv publish:alerts/#\n"), std::string::npos) << out;
}

TEST_F(OutputFormatTest, LogLinesAreTimestampedAndSafe) {
  json logs = {{"lines",
                {{{"seq", 1},
                  {"time_ms", kNow + 7},
                  {"invocation_id", "21f5db8e000000000004"},
                  {"version", 2},
                  {"text", "sleeping 50 ms"}},
                 {{"seq", 2},
                  {"time_ms", kNow + 7},
                  {"invocation_id", "21f5db8e000000000004"},
                  {"version", 2},
                  {"text", "\x1b]0;owned\x07"}}}},
               {"next", 2}};
  EXPECT_EQ(formatLogLines(logs),
            "2024-05-01 12:03:04.007 v2 21f5db8e000000000004  sleeping 50 ms\n"
            "2024-05-01 12:03:04.007 v2 21f5db8e000000000004  \\x1b]0;owned\\x07\n");
  EXPECT_EQ(formatLogLines(json{{"lines", json::array()}, {"next", 0}}), "");
}

TEST_F(OutputFormatTest, StatusLines) {
  json status = {{"version", "0.1.0"}, {"uptime_seconds", 303.5}, {"slots", 4},    {"running", 1},
                 {"queued", 0},        {"rejected", 2},           {"functions", 7}};
  EXPECT_EQ(formatStatus(status, "http://127.0.0.1:8080"),
            "node:          http://127.0.0.1:8080\n"
            "version:       0.1.0\n"
            "uptime:        5m 3s\n"
            "worker slots:  1 busy of 4\n"
            "queued:        0\n"
            "rejected:      2\n"
            "functions:     7\n");
}

TEST_F(OutputFormatTest, UnexpectedJsonNeverThrows) {
  for (const json& doc : {json(nullptr), json(42), json("text"), json::array({1, 2}),
                          json{{"functions", "nope"},
                               {"versions", {1, "x", nullptr}},
                               {"lines", {{{"seq", "1"}, {"text", 5}}}},
                               {"recent_invocations", {nullptr, 3}},
                               {"invocations", {{"ok", "many"}}},
                               {"module_bytes", -5},
                               {"version", "three"}}}) {
    EXPECT_NO_THROW({
      formatDeployed(doc);
      formatRolledBack(doc);
      formatFunctionList(doc, kNow);
      formatFunctionInfo(doc, kNow);
      formatVersions(doc, kNow);
      formatLogLines(doc);
      formatStatus(doc, "u");
    }) << doc.dump();
  }
}

// An async invocation's output prints line by line from the record's text. The text is
// longer than any small-string buffer: a formatter that kept a view of a temporary copy
// would read freed memory, which AddressSanitizer reports in the asan preset.
TEST_F(OutputFormatTest, AsyncInvocationOutputPrintsEveryLine) {
  json r = {{"id", "inv-1"},
            {"function", "echo"},
            {"status", "succeeded"},
            {"attempts", 1},
            {"max_attempts", 3},
            {"output", "the first line of the function's answer\nthe second line\nthe last"}};
  std::string text = formatInvocation(r);
  EXPECT_NE(text.find("output:\nthe first line of the function's answer\nthe second line\n"
                      "the last\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace tern::cli
