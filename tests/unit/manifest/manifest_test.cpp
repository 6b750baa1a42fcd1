// The manifest parser (src/manifest/manifest.h): what a tern.yaml becomes, and the one-line
// error, with file, line, column and field, for each kind of bad input.

#include "manifest/manifest.h"

#include <gtest/gtest.h>

#include <cctype>

namespace tern::manifest {
namespace {

constexpr const char* kFull = R"(app: shop
functions:
  resize:
    module: build/resize.wasm
    build: make resize
    source: [resize.c, lib]
    memory_mb: 64
    timeout_ms: 5000
    concurrency: 4
    env: {ZOOM: "2", MODE: fast}
    triggers: ["cron:*/5 * * * *", "mqtt:photos/+"]
    reply_topic: out/resized
    allow: [kv, "invoke:thumb"]
    objective: {slo_ms: 50, percentile: 95, weight: 2}
    placement: {sites: [a, b], tier: edge, labels: {gpu: "yes"}}
    compile_tier: baseline
  thumb:
    module: thumb.wasm
workflows:
  pipeline:
    file: pipeline.yaml
    types: types.json
    options: {policy: size, attempts: 2}
routes:
  thumb: {providers: [local, cloud], policy: lowest-latency}
streams:
  photos: {processor: thumb, max_per_second: 5}
  raw:
)";

TEST(ManifestTest, ReadsEveryKindOfObject) {
  auto m = parseManifest(kFull, "tern.yaml");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->app, "shop");
  ASSERT_EQ(m->functions.size(), 2u);
  const FunctionSpec& f = m->functions[0];
  EXPECT_EQ(f.name, "resize");
  EXPECT_EQ(f.at.line, 3);
  EXPECT_EQ(f.module.value, "build/resize.wasm");
  EXPECT_EQ(f.build, "make resize");
  ASSERT_EQ(f.sources.size(), 2u);
  EXPECT_EQ(f.sources[1].value, "lib");
  EXPECT_EQ(f.memoryMb, 64u);
  EXPECT_EQ(f.timeoutMs, 5000u);
  EXPECT_EQ(f.concurrency, 4u);
  EXPECT_EQ(f.env, (std::vector<std::string>{"MODE=fast", "ZOOM=2"}));
  ASSERT_EQ(f.triggers.size(), 2u);
  EXPECT_EQ(f.triggers[0].value, "cron:*/5 * * * *");
  EXPECT_EQ(f.replyTopic, "out/resized");
  ASSERT_EQ(f.allow.size(), 2u);
  EXPECT_EQ(f.allow[1].value, "invoke:thumb");
  EXPECT_EQ(f.allow[1].at.line, 13);
  EXPECT_EQ(f.sloMs, 50.0);
  EXPECT_EQ(f.sloPercentile, 95.0);
  EXPECT_EQ(f.weight, 2.0);
  EXPECT_EQ(f.sites, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.tier, "edge");
  EXPECT_EQ(f.labels, (std::vector<std::string>{"gpu=yes"}));
  EXPECT_EQ(f.compileTier, "baseline");
  EXPECT_FALSE(m->functions[1].memoryMb.has_value());
  ASSERT_EQ(m->workflows.size(), 1u);
  EXPECT_EQ(m->workflows[0].file.value, "pipeline.yaml");
  EXPECT_EQ(m->workflows[0].types.value, "types.json");
  EXPECT_EQ(m->workflows[0].options,
            (std::map<std::string, std::string>{{"attempts", "2"}, {"policy", "\"size\""}}));
  ASSERT_EQ(m->routes.size(), 1u);
  EXPECT_EQ(m->routes[0].providers, (std::vector<std::string>{"local", "cloud"}));
  EXPECT_EQ(m->routes[0].policy, "lowest-latency");
  ASSERT_EQ(m->streams.size(), 2u);
  EXPECT_EQ(m->streams[0].processor, "thumb");
  EXPECT_EQ(m->streams[0].maxPerSecond, 5.0);
  EXPECT_EQ(m->streams[1].name, "raw");
  EXPECT_TRUE(m->streams[1].processor.empty());
}

TEST(ManifestTest, AnAppAloneIsAManifest) {
  auto m = parseManifest("app: empty\nfunctions:\n", "t.yaml");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_TRUE(m->functions.empty());
}

struct BadCase {
  const char* what;
  const char* text;
  const char* error;  // the whole message
};

// Test names from the case's description: "an unknown key" -> an_unknown_key.
std::string caseName(const ::testing::TestParamInfo<BadCase>& info) {
  std::string name;
  for (const char* c = info.param.what; *c; ++c) {
    name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
  }
  return name;
}

class BadManifestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadManifestTest, IsRefusedNamingFileLineAndField) {
  auto m = parseManifest(GetParam().text, "app/tern.yaml");
  ASSERT_FALSE(m.ok()) << GetParam().what;
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(m.error().message(), GetParam().error) << GetParam().what;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadManifestTest,
    ::testing::Values(
        BadCase{"no app", "functions: {}\n", "app/tern.yaml:1:1: app: is required (the application's name)"},
        BadCase{"unknown top-level key", "app: a\nfunction: {}\n",
                "app/tern.yaml:2:1: function: unknown key (known here: app, functions, workflows, "
                "routes, streams)"},
        BadCase{"unknown function key", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    memory: 3\n",
                "app/tern.yaml:5:5: functions.f.memory: unknown key (known here: module, build, "
                "source, memory_mb, timeout_ms, concurrency, env, triggers, reply_topic, allow, "
                "objective, placement, compile_tier)"},
        BadCase{"wrong type", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    memory_mb: lots\n",
                "app/tern.yaml:5:16: functions.f.memory_mb: must be an integer 1..4096, got \"lots\""},
        BadCase{"out of range", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    timeout_ms: 0\n",
                "app/tern.yaml:5:17: functions.f.timeout_ms: must be an integer 1..900000, got \"0\""},
        BadCase{"a list where text goes", "app: a\nfunctions:\n  f:\n    module: [a, b]\n",
                "app/tern.yaml:4:13: functions.f.module: must be text"},
        BadCase{"duplicate function", "app: a\nfunctions:\n  f:\n    module: f.wasm\n  f:\n    module: g.wasm\n",
                "app/tern.yaml:5:3: functions.f: appears twice"},
        BadCase{"missing module", "app: a\nfunctions:\n  f:\n    memory_mb: 3\n",
                "app/tern.yaml:3:3: functions.f.module: is required (the .wasm file, built or given)"},
        BadCase{"source without build", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    source: f.c\n",
                "app/tern.yaml:3:3: functions.f.source: needs build: the command that makes the "
                "module from it"},
        BadCase{"bad function name", "app: a\nfunctions:\n  Resize:\n    module: f.wasm\n",
                "app/tern.yaml:3:3: functions.Resize: function \"Resize\" is not a valid name: use "
                "1-63 characters a-z, 0-9 and '-', starting with a letter or digit"},
        BadCase{"reserved function name", "app: a\nfunctions:\n  tern-app-x:\n    module: f.wasm\n",
                "app/tern.yaml:3:3: functions.tern-app-x: names starting with \"tern-app-\" are kept "
                "for apps' ownership records"},
        BadCase{"bad app name", "app: My App\n",
                "app/tern.yaml:1:6: app: \"My App\" is not a valid app name: 1-54 characters a-z, "
                "0-9 and '-', starting with a letter or digit"},
        BadCase{"bad trigger", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    triggers: [\"cron:* *\"]\n",
                "app/tern.yaml:5:16: functions.f.triggers[0]: trigger \"cron:* *\": cron expression "
                "\"* *\": has 2 fields, expected 5 (minute hour day-of-month month day-of-week)"},
        BadCase{"reply topic answering its own trigger",
                "app: a\nfunctions:\n  f:\n    module: f.wasm\n    triggers: [\"mqtt:t/+\"]\n    reply_topic: t/r\n",
                "app/tern.yaml:6:18: functions.f.reply_topic: reply topic \"t/r\" matches the "
                "function's own trigger \"mqtt:t/+\": every reply would invoke the function again"},
        BadCase{"bad capability", "app: a\nfunctions:\n  f:\n    module: f.wasm\n    allow: [fly]\n",
                "app/tern.yaml:5:13: functions.f.allow[0]: invalid capability \"fly\": unknown kind; "
                "use kv, log, publish:TOPIC_FILTER, invoke:NAME or stream:TOPIC"},
        BadCase{"percentile without objective",
                "app: a\nfunctions:\n  f:\n    module: f.wasm\n    objective: {percentile: 90}\n",
                "app/tern.yaml:5:29: functions.f.objective.percentile: needs slo_ms"},
        BadCase{"workflow without file", "app: a\nworkflows:\n  w: {types: t.json}\n",
                "app/tern.yaml:3:3: workflows.w.file: is required (the AFCL document)"},
        BadCase{"unknown workflow policy",
                "app: a\nworkflows:\n  w: {file: w.yaml, options: {policy: fastest}}\n",
                "app/tern.yaml:3:39: workflows.w.options.policy: must be local-first, size, latency "
                "or random"},
        BadCase{"route without policy", "app: a\nroutes:\n  f: {providers: [local]}\n",
                "app/tern.yaml:3:3: routes.f.policy: is required"},
        BadCase{"bad stream rate", "app: a\nstreams:\n  s: {max_per_second: -1}\n",
                "app/tern.yaml:3:23: streams.s.max_per_second: must be more than 0"},
        BadCase{"malformed YAML", "app: a\nfunctions:\n  f: [\n",
                "app/tern.yaml:4:1: (document): malformed YAML: end of sequence flow not found"},
        BadCase{"an alias inside what it names", "app: a\nfunctions:\n  f: &f {module: f.wasm, env: *f}\n",
                "app/tern.yaml:3:31: (document): an alias names a sequence or map that contains it"},
        BadCase{"not a map", "- a\n- b\n",
                "app/tern.yaml:1:1: (document): a manifest is a map with app, functions, "
                "workflows, routes and streams"}),
    caseName);

Manifest cycleManifest(const char* allowA, const char* allowB) {
  std::string text = std::string("app: a\nfunctions:\n  a:\n    module: a.wasm\n    allow: [\"") +
                     allowA + "\"]\n  b:\n    module: b.wasm\n    allow: [\"" + allowB +
                     "\"]\nworkflows:\n  w:\n    file: w.yaml\n";
  auto m = parseManifest(text, "tern.yaml");
  EXPECT_TRUE(m.ok()) << m.error().message();
  return *m;
}

TEST(ManifestCycleTest, FunctionsThatInvokeEachOtherAreACycle) {
  auto r = checkCycles(cycleManifest("invoke:b", "invoke:a"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "tern.yaml:8:13: functions.b.allow[0]: a cycle between functions and workflows: "
            "function a -> function b -> function a");
}

TEST(ManifestCycleTest, AWorkflowThatCallsItselfThroughAnotherIsACycle) {
  std::string text =
      "app: a\nworkflows:\n  w:\n    file: w.yaml\n  v:\n    file: v.yaml\n";
  auto m = parseManifest(text, "tern.yaml");
  ASSERT_TRUE(m.ok());
  auto r = checkCycles(*m, {{"w", WorkflowCalls{{}, {"v"}}}, {"v", WorkflowCalls{{}, {"w"}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("workflow v -> workflow w -> workflow v"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().rfind("tern.yaml:", 0), 0u);
}

TEST(ManifestCycleTest, ChainsAndCallsOutsideTheManifestAreNoCycle) {
  EXPECT_TRUE(checkCycles(cycleManifest("invoke:b", "kv"), {{"w", WorkflowCalls{{"a", "b"}, {}}}}).ok());
  EXPECT_TRUE(checkCycles(cycleManifest("invoke:elsewhere", "invoke:*"), {}).ok());
}

}  // namespace
}  // namespace tern::manifest
