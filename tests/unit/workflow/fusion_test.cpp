// Fused units from tables: a plan applied to a chain, the wire form of a unit and of its
// answer (round trips, and a peer's malformed messages refused naming the field), and a
// member's input made from the outputs before it.

#include "workflow/fusion.h"

#include <gtest/gtest.h>

namespace tern::workflow {
namespace {

using json = nlohmann::json;

const char* kChain = R"(
name: c
dataIns: [{name: n, source: n}]
workflowBody:
- function: {name: A, type: T, dataIns: [{name: n, source: c/n}], dataOuts: [{name: n}, {name: list}]}
- function: {name: B, type: T, dataIns: [{name: n, source: A/n}], dataOuts: [{name: n}]}
- function: {name: C, type: T, dataIns: [{name: n, source: B/n}, {name: firsts, source: A/list}], dataOuts: [{name: n}]}
)";

TEST(FusionTest, APlanMakesEdgeTasksAndCloudUnits) {
  auto wf = parseAfcl(kChain);
  ASSERT_TRUE(wf.ok()) << wf.error().message();
  auto f = applyPlan(**wf, json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"B", "C"})})}});
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_EQ(f->units.size(), 2u);
  EXPECT_EQ(f->units[0].tier, "edge");
  EXPECT_EQ(f->units[0].group, -1);
  EXPECT_EQ(f->units[1].tier, "cloud");
  EXPECT_EQ(f->units[1].group, 0);
  ASSERT_EQ(f->units[1].members.size(), 2u);
  EXPECT_EQ(f->units[1].members[0]->name, "B");
  EXPECT_EQ(f->of((*wf)->functions[2]), &f->units[1]);
  EXPECT_EQ(f->of((*wf)->functions[0]), &f->units[0]);
  // Every function alone in the cloud, and all at the edge.
  EXPECT_EQ(applyPlan(**wf, json{{"edge", json::array()}, {"cloud_groups", json::array({json::array({"A"}), json::array({"B"}), json::array({"C"})})}})->units.size(), 3u);
  EXPECT_EQ(applyPlan(**wf, json{{"edge", {"A", "B", "C"}}, {"cloud_groups", json::array()}})->units.size(), 3u);
}

TEST(FusionTest, PlansThatDoNotFitAreRefusedNamingWhy) {
  auto wf = parseAfcl(kChain);
  ASSERT_TRUE(wf.ok());
  struct Row {
    json plan;
    std::string expected;
  } rows[] = {
      {json("x"), "must be a JSON object"},
      {json{{"edge", {"A"}}}, "needs edge and cloud_groups"},
      {json{{"edge", {"A", "B", "C"}}, {"cloud_groups", json::array()}, {"feasible", false}}, "not feasible"},
      {json{{"edge", {"A", "B", "C"}}, {"cloud_groups", json::array()}, {"feasible", "yes"}}, "feasible must be true or false"},
      {json{{"edge", {"A", 1}}, {"cloud_groups", json::array()}}, "edge must be a list of function names"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({"B", "C"})}}, "cloud_groups[0] must be a list"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"B"}), json::array()})}}, "cloud_groups[1] is empty"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"C", "B"})})}}, "(A, C, B) are not the workflow's chain (A, B, C)"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"B", "C", "D"})})}}, "are not the workflow's chain"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"B", "C"})})}, {"latency_ms", "1"}}, "latency_ms must be a number"},
      {json{{"edge", {"A"}}, {"cloud_groups", json::array({json::array({"B", "C"})})}, {"groups", 1}}, "unknown field \"groups\""},
  };
  for (const auto& row : rows) {
    auto f = applyPlan(**wf, row.plan);
    ASSERT_FALSE(f.ok()) << row.plan.dump();
    EXPECT_EQ(f.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(f.error().message().find(row.expected), std::string::npos) << row.plan.dump() << ": " << f.error().message();
  }
}

Segment sample() {
  Segment s;
  s.env = {"TERN_WORKFLOW=c"};
  s.members.push_back(SegmentMember{"B", "step", json{{"k", 1}}, {}});
  s.members.push_back(SegmentMember{"C", "step2", json::object(),
                                    {Binding{"n", 0, "n", {}}, Binding{"firsts", 0, "list", {CollectionOp{"element-index", "0:1:1"}}}}});
  return s;
}

TEST(FusionTest, SegmentsTravelAndComeBackTheSame) {
  Segment s = sample();
  auto back = parseSegment(segmentJson(s));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(segmentJson(*back), segmentJson(s));

  SegmentResult r;
  r.members.push_back(MemberResult{"B", "{\"n\":2}", 100, 20, 10, std::nullopt});
  r.members.push_back(MemberResult{"C", "", 120, 5, 3, std::string("it exited with code 1")});
  r.error = Error(ErrorCode::kFunctionFailed, "it exited with code 1");
  auto rb = parseSegmentResult(segmentResultJson(r).dump());
  ASSERT_TRUE(rb.ok()) << rb.error().message();
  EXPECT_EQ(segmentResultJson(*rb), segmentResultJson(r));
  EXPECT_EQ(rb->error->code(), ErrorCode::kFunctionFailed);
}

TEST(FusionTest, MalformedSegmentsFromAPeerAreRefused) {
  json good = segmentJson(sample());
  auto with = [&](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return j;
  };
  struct Row {
    json segment;
    std::string expected;
  } rows[] = {
      {json::array(), "not a JSON object"},
      {with([](json& j) { j.erase("env"); }), "env must be a list"},
      {with([](json& j) { j["env"] = {1}; }), "env must be a list of text"},
      {with([](json& j) { j["members"] = json::array(); }), "members must be a non-empty list"},
      {with([](json& j) { j["members"][0].erase("fn"); }), "members[0] needs key and fn"},
      {with([](json& j) { j["members"][0]["in"] = "x"; }), "members[0].in must be an object"},
      {with([](json& j) { j["members"][1]["from"] = {}; }), "members[1].from must be a list"},
      {with([](json& j) { j["members"][1]["from"][0]["member"] = 1; }), "an earlier member"},
      {with([](json& j) { j["members"][1]["from"][0]["member"] = -1; }), "an earlier member"},
      {with([](json& j) { j["members"][1]["from"][1]["ops"] = {{{"name", "block"}}}; }), "ops need name and value"},
  };
  for (const auto& row : rows) {
    auto s = parseSegment(row.segment);
    ASSERT_FALSE(s.ok()) << row.segment.dump();
    EXPECT_NE(s.error().message().find(row.expected), std::string::npos) << row.segment.dump() << ": " << s.error().message();
  }
  for (const char* answer : {"", "[]", "{\"members\": 1}", "{\"members\": [{\"key\": \"B\"}]}",
                             "{\"members\": [], \"error\": \"x\"}"}) {
    EXPECT_FALSE(parseSegmentResult(answer).ok()) << answer;
  }
}

TEST(FusionTest, AMembersInputComesFromTheOutputsBeforeIt) {
  Segment s = sample();
  auto first = memberInput(s, 0, {});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(json::parse(*first), (json{{"k", 1}}));
  auto second = memberInput(s, 1, {R"({"n": 7, "list": [4, 5, 6]})"});
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(json::parse(*second), (json{{"n", 7}, {"firsts", {4, 5}}}));
  struct Row {
    std::string output, expected;
  } rows[] = {
      {"not json", "the output of \"B\" is not a JSON object"},
      {"[1]", "the output of \"B\" is not a JSON object"},
      {R"({"list": [1]})", "the output of \"B\" has no \"n\""},
      {R"({"n": 1, "list": 5})", "dataIn \"firsts\""},
  };
  for (const auto& row : rows) {
    auto in = memberInput(s, 1, {row.output});
    ASSERT_FALSE(in.ok()) << row.output;
    EXPECT_NE(in.error().message().find(row.expected), std::string::npos) << row.output << ": " << in.error().message();
  }
}

}  // namespace
}  // namespace tern::workflow
