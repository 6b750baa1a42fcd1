// The pure pieces of `tern up` (src/cli/up_command.h): the node's JSON of a version as the
// plan compares it, what a workflow calls, and the plan as people read it.

#include "cli/up_command.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tern::cli {
namespace {

using json = nlohmann::json;

TEST(UpCommandTest, AVersionFromTheNodeComparesEqualToTheSameDeclaredFunction) {
  json version = json::parse(R"({
    "name": "f", "version": 3, "module_sha256": "abc", "module_bytes": 10, "memory_mb": 64,
    "timeout_ms": 10000, "concurrency": 0, "env": ["B=2", "A=1"], "triggers": ["cron:0 3 * * *"],
    "reply_topic": "", "allow": ["log", "kv"], "slo_ms": 50, "slo_percentile": 95, "weight": 1,
    "placement": {"sites": [], "tier": "", "labels": []}, "compile_tier": "auto",
    "created_at_ms": 1})");
  manifest::FunctionSpec spec;
  spec.name = "f";
  spec.memoryMb = 64;
  spec.env = {"A=1", "B=2"};
  spec.triggers = {manifest::Located{"cron:0 3 * * *", {}}};
  spec.allow = {manifest::Located{"kv", {}}, manifest::Located{"log", {}}};
  spec.sloMs = 50;
  spec.sloPercentile = 95;
  manifest::FunctionState have = functionStateFromJson(version);
  EXPECT_EQ(manifest::declaredFunction(spec, "abc"), have);
  spec.weight = 2;
  EXPECT_EQ(manifest::functionDifferences(manifest::declaredFunction(spec, "abd"), have),
            (std::vector<std::string>{"module", "objective"}));
}

constexpr const char* kChain = R"(name: chain
workflowBody:
- function: {name: One, type: Resize}
- function: {name: Two, type: Notify}
- function: {name: Three, type: Remote}
)";

TEST(UpCommandTest, AWorkflowCallsItsTasksFunctionsAndWhatItsServerlessResourcesReach) {
  auto calls = workflowCalls(kChain, "");
  ASSERT_TRUE(calls.ok()) << calls.error().message();
  EXPECT_EQ(calls->functions, (std::vector<std::string>{"notify", "remote", "resize"}));
  EXPECT_TRUE(calls->workflows.empty());

  auto mapped = workflowCalls(kChain, R"([
    {"functionType": "Resize", "resources": [{"type": "tern", "properties": {"function": "thumb"}}]},
    {"functionType": "Notify", "resources": [{"type": "Serverless", "properties": {"Uri": "http://n:8080/wf/alerts?x=1"}}]},
    {"functionType": "Remote", "resources": [{"type": "Serverless", "properties": {"Uri": "http://n/fn/far/deeper"}}]}])");
  ASSERT_TRUE(mapped.ok()) << mapped.error().message();
  EXPECT_EQ(mapped->functions, (std::vector<std::string>{"far", "thumb"}));
  EXPECT_EQ(mapped->workflows, (std::vector<std::string>{"alerts"}));
}

TEST(UpCommandTest, ABadWorkflowOrMappingIsRefusedWithWhere) {
  auto afcl = workflowCalls("name: x\nworkflowBody: 3\n", "");
  ASSERT_FALSE(afcl.ok());
  EXPECT_EQ(afcl.error().message().rfind("line 2, column", 0), 0u) << afcl.error().message();
  auto types = workflowCalls(kChain, R"([{"resources": []}])");
  ASSERT_FALSE(types.ok());
  EXPECT_EQ(types.error().message(), "type mapping entry 0: needs \"functionType\" and \"resources\"");
}

TEST(UpCommandTest, ThePlanShowsOneLinePerObjectAndASummary) {
  manifest::Plan plan;
  plan.steps = {{manifest::ObjectKind::kFunction, "resize", manifest::Change::kCreate, ""},
                {manifest::ObjectKind::kFunction, "thumb", manifest::Change::kUpdate, "memory_mb changed"},
                {manifest::ObjectKind::kWorkflow, "w", manifest::Change::kUnchanged, ""},
                {manifest::ObjectKind::kRoute, "old", manifest::Change::kDelete, "no longer declared"}};
  EXPECT_EQ(formatPlan(plan, "shop"),
            "plan for app shop:\n"
            "  +  function  resize  create\n"
            "  ~  function  thumb   update: memory_mb changed\n"
            "  =  workflow  w       unchanged\n"
            "  -  route     old     delete: no longer declared\n"
            "1 to create, 1 to update, 1 to delete, 1 unchanged\n");
}

}  // namespace
}  // namespace tern::cli
