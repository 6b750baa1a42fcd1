// AFCL data operations and conditions from tables.

#include "workflow/data_ops.h"

#include <gtest/gtest.h>

#include "workflow/afcl.h"

namespace tern::workflow {
namespace {

using json = nlohmann::json;

Result<double> noRefs(std::string_view r) {
  if (r == "w/two") return 2.0;
  return Error(ErrorCode::kInvalidArgument, "unknown");
}

TEST(DataOpsTest, References) {
  EXPECT_TRUE(isReference("A/b"));
  EXPECT_TRUE(isReference("single Atomic/input"));
  EXPECT_FALSE(isReference("10"));
  EXPECT_FALSE(isReference("/x"));
  EXPECT_FALSE(isReference("x/"));
  EXPECT_EQ(parseConstant("10"), json(10));
  EXPECT_EQ(parseConstant("[1,2]"), json::array({1, 2}));
  EXPECT_EQ(parseConstant("hello"), json("hello"));
  EXPECT_EQ(coerce(json("5"), "number"), json(5));
  EXPECT_EQ(coerce(json("true"), "boolean"), json(true));
  EXPECT_EQ(coerce(json("5"), "string"), json("5"));
}

TEST(DataOpsTest, CollectionOperations) {
  const json a = json::array({0, 1, 2, 3, 4, 5});
  struct Row {
    const char* name;
    const char* args;
    json expected;  // null: an error
  } rows[] = {
      {"element-index", "2", json(2)},
      {"element-index", "1, 3", json::array({1, 3})},
      {"element-index", "1:4:2", json::array({1, 3})},
      {"element-index", "::2", json::array({0, 2, 4})},
      {"element-index", "w/two", json(2)},
      {"element-index", "9", nullptr},
      {"element-index", "0:1:0", nullptr},
      {"block", "2", json::parse("[[0,1],[2,3],[4,5]]")},
      {"block", "3,1", json::parse("[[0,1,2],[2,3,4],[4,5]]")},
      {"block", "2,2", nullptr},
      {"replicate", "2", json::parse("[0,0,1,1,2,2,3,3,4,4,5,5]")},
      {"split", "2", json::parse("[[0,1,2],[3,4,5]]")},
      {"split", "4", json::parse("[[0,1],[2,3],[4,5]]")},
      {"distribution", "BLOCK(1)", a},
      {"distribution", "BLOCK(2)", json::parse("[[0,1],[2,3],[4,5]]")},
      {"distribution", "REPLICATE(*)", a},
      {"distribution", "CYCLIC(2)", nullptr},
  };
  for (const auto& r : rows) {
    auto got = applyCollectionOp(a, r.name, r.args, noRefs);
    if (r.expected.is_null()) {
      EXPECT_FALSE(got.ok()) << r.name << " " << r.args;
    } else {
      ASSERT_TRUE(got.ok()) << r.name << " " << r.args << ": " << got.error().message();
      EXPECT_EQ(*got, r.expected) << r.name << " " << r.args;
    }
  }
  EXPECT_FALSE(applyCollectionOp(json(3), "block", "2", noRefs).ok());
  // Overlapping blocks of a large collection would copy it thousands of times.
  json big = json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  auto huge = applyCollectionOp(big, "block", "50000,49999", noRefs);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message().find("exceed"), std::string::npos);
}

TEST(DataOpsTest, Comparisons) {
  struct Row {
    json a, b;
    const char* op;
    const char* type;
    std::optional<bool> expected;  // nullopt: an error
  } rows[] = {
      {5, 3, ">", "number", true},
      {5, "5", "==", "number", true},
      {3, 5, ">=", "number", false},
      {json::array({1, 2, 3}), 2, "==", "number", true},  // a collection counts size - 1
      {"hello", "ell", "contains", "string", true},
      {"hello", "he", "startsWith", "string", true},
      {"hello", "lo", "endsWith", "string", true},
      {"a", "b", "<", "string", std::nullopt},
      {true, "true", "==", "boolean", true},
      {true, false, "!=", "boolean", true},
      {true, false, "<", "boolean", std::nullopt},
      {"x", 1, "<", "number", std::nullopt},
      {7, 7, "==", "", true},
  };
  for (const auto& r : rows) {
    auto got = compare(r.a, r.b, r.op, r.type);
    if (!r.expected) {
      EXPECT_FALSE(got.ok()) << r.a << r.op << r.b;
    } else {
      ASSERT_TRUE(got.ok()) << r.a << r.op << r.b << ": " << got.error().message();
      EXPECT_EQ(*got, *r.expected) << r.a << r.op << r.b;
    }
  }
}

TEST(DataOpsTest, ConditionsFoldLeftToRightWithNegation) {
  auto item = [](const char* op, bool negation, bool orNext) {
    ConditionItem c;
    c.op = op;
    c.type = "number";
    c.negation = negation;
    c.orNext = orNext;
    return c;
  };
  // (1 > 2) or (1 < 2) -> true; and-joined -> false; negated first -> true.
  std::vector<std::pair<json, json>> v = {{1, 2}, {1, 2}};
  EXPECT_TRUE(*evaluateCondition({item(">", false, true), item("<", false, false)}, v));
  EXPECT_FALSE(*evaluateCondition({item(">", false, false), item("<", false, false)}, v));
  EXPECT_TRUE(*evaluateCondition({item(">", true, false), item("<", false, false)}, v));
}

}  // namespace
}  // namespace tern::workflow
