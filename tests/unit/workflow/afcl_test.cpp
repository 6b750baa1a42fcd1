// The AFCL parser: what it accepts (Apollo's 1.1 and 1.0 forms) and where it points at
// what it refuses.

#include "workflow/afcl.h"

#include <gtest/gtest.h>

namespace tern::workflow {
namespace {

std::string errorOf(const std::string& yaml) {
  auto r = parseAfcl(yaml);
  return r.ok() ? std::string("accepted") : r.error().message();
}

TEST(AfclTest, ReadsReferencesAndScopes) {
  auto wf = parseAfcl(R"(
name: w
dataIns: [{name: x, type: number, source: x}]
workflowBody:
- parallelFor:
    name: P
    dataIns: [{name: items, type: collection, source: w/x}]
    iterators: [items]
    loopBody:
    - function: {name: F, type: F, dataIns: [{name: i, source: P/items}, {name: c, value: 3}], dataOuts: [{name: o}]}
    dataOuts: [{name: all, type: collection, source: F/o}]
dataOuts: [{name: all, source: P/all}]
)");
  ASSERT_TRUE(wf.ok()) << wf.error().message();
  ASSERT_EQ((*wf)->functions.size(), 1u);
  const Element* f = (*wf)->functions[0];
  EXPECT_EQ(f->loop, &(*wf)->body[0]);
  ASSERT_TRUE(f->dataIns[0].source);
  EXPECT_TRUE(f->dataIns[0].source->alias);
  EXPECT_EQ(f->dataIns[0].source->loop, &(*wf)->body[0]);
  EXPECT_EQ(*f->dataIns[1].value, 3);
  EXPECT_EQ((*wf)->body[0].iterators, std::vector<std::string>{"items"});
}

TEST(AfclTest, AcceptsTheOneZeroConditionForm) {
  EXPECT_EQ(errorOf(R"(
name: w
dataIns: [{name: x, source: x}]
workflowBody:
- if:
    name: I
    dataIns: [{name: v, source: w/x}]
    condition: {combinedWith: or, conditions: [{data1: I/v, data2: 1, operator: "=="}]}
    then: [{function: {name: A, type: A, dataOuts: [{name: o}]}}]
    dataOuts: [{name: o, source: "A/o,NULL"}]
)"),
            "accepted");
}

TEST(AfclTest, RefusesWithLineAndColumn) {
  struct Row {
    const char* yaml;
    const char* expected;
  } rows[] = {
      {"name: w\nworkflowBody:\n- map: {name: m}\n", "line 3, column 3: unknown construct \"map\""},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, colour: red}\n", "line 3, column 32: function \"A\": unknown key \"colour\""},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A}\n- function: {name: A, type: A}\n", "line 4, column 3: the name \"A\" is used twice"},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, dataIns: [{name: i, source: B/o}]}\n", "no function or compound is named \"B\""},
      {"name: w\nworkflowBody:\n- function: {name: B, type: B}\n- function: {name: A, type: A, dataIns: [{name: i, source: B/o}]}\n", "function \"B\" has no dataOut \"o\""},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, dataIns: [{name: i, source: w/nope}]}\n", "the workflow has no dataIn \"nope\""},
      {"name: w\nworkflowBody:\n- if: {name: I, condition: [{data1: 1, data2: 1, operator: \"==\"}], then: [{function: {name: F, type: F, dataOuts: [{name: o}]}}]}\n"
       "- function: {name: A, type: A, dataIns: [{name: i, source: F/o}]}\n",
       "\"F\" is inside if \"I\"; read that compound's dataOuts instead"},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, dataIns: [{name: i, source: B/o}], dataOuts: [{name: o}]}\n"
       "- function: {name: B, type: B, dataIns: [{name: i, source: A/o}], dataOuts: [{name: o}]}\n",
       "a cycle of data dependencies"},
      {"name: w\nworkflowBody: [unclosed\n", "malformed YAML"},
      {"- just a list\n", "line 1, column 1: an AFCL workflow is a map"},
      {"name: w\nworkflowBody:\n- if: {name: I, condition: [{data1: 1, data2: 1, operator: \"~\"}], then: []}\n", "unknown operator \"~\""},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, dataOuts: [{name: o}]}\ndataOuts: [{name: r, source: \"NULL\"}]\n",
       "needs a source other than NULL"},
      {"name: w\nworkflowBody:\n- sequence: {name: S, dataIns: [{name: v, value: 1}], sequenceBody: [], dataOuts: [{name: v, source: S/v}]}\n",
       "dataIn and dataOut \"v\" share a name"},
      {"name: w\nworkflowBody:\n- function: {name: A, type: A, dataOuts: [{name: o}]}\n- sequence: {name: S, sequenceBody: [], dataOuts: [{name: v, source: \"A/o,A/o\"}]}\n",
       "alternatives (A/x,B/y) are for if and switch"},
  };
  for (const auto& r : rows) {
    std::string e = errorOf(r.yaml);
    EXPECT_NE(e.find(r.expected), std::string::npos) << r.yaml << "\n got: " << e;
  }
}

// Found by the afcl fuzz target: yaml-cpp passes bytes that are not UTF-8 through, and a
// run would then fail to write such a value as JSON.
TEST(AfclTest, RefusesTextThatIsNotUtf8) {
  for (const char* bytes : {"\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xc3"}) {
    std::string yaml = "name: w\nworkflowBody:\n- function:\n    name: A\n    type: t";
    yaml.append(bytes).append("\n");
    std::string e = errorOf(yaml);
    EXPECT_NE(e.find("line 5, column 11: text that is not valid UTF-8"), std::string::npos) << e;
  }
  // Escapes are characters, written as UTF-8.
  EXPECT_EQ(errorOf("name: \"w\\x80\\u00E9\\U0001F600\"\nworkflowBody:\n- function: {name: A, type: A}\n"),
            "accepted");
}

TEST(AfclTest, BoundsWhatAliasesExpandTo) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 6; ++i) {
    std::string name = std::to_string(i), previous = std::to_string(i - 1);
    yaml.append("a").append(name).append(": &a").append(name).append(" [");
    for (int k = 0; k < 10; ++k) yaml.append(k ? ", *a" : "*a").append(previous);
    yaml.append("]\n");
  }
  yaml += "name: w\nworkflowBody: []\n";
  EXPECT_NE(errorOf(yaml).find("expands to more than"), std::string::npos) << errorOf(yaml);
}

// Found by the afcl fuzz target: a sequence that contains itself was followed round its
// cycle to the bound on values (a million steps) before it was refused.
TEST(AfclTest, RefusesAnAliasInsideWhatItNames) {
  EXPECT_EQ(errorOf("a: &a [*a]\n"), "line 1, column 8: an alias names a sequence or map that contains it");
  EXPECT_EQ(errorOf("name: w\nworkflowBody:\n- &f {function: {name: A, type: A, x: [1, {y: *f}]}}\n"),
            "line 3, column 47: an alias names a sequence or map that contains it");
  // An alias to a node that is complete is a copy, not a cycle.
  EXPECT_EQ(errorOf("name: w\ndescription: &x [1, 2]\nproperties: [*x, *x]\nworkflowBody: []\n"), "accepted");
}

TEST(AfclTest, BoundsTheTree) {
  std::string deep = "name: w\nworkflowBody:\n";
  std::string indent;
  for (int i = 0; i < 100; ++i) {
    deep += indent + "- sequence:\n" + indent + "    name: s" + std::to_string(i) + "\n" + indent + "    sequenceBody:\n";
    indent += "    ";
  }
  deep += indent + "- function: {name: F, type: F}\n";
  EXPECT_NE(errorOf(deep).find("nested more than"), std::string::npos) << errorOf(deep);
}

TEST(AfclTest, TaskEdgesFollowTheDataThroughCompounds) {
  auto wf = parseAfcl(R"(
name: w
dataIns: [{name: x, source: x}]
workflowBody:
- function: {name: Split, type: S, dataIns: [{name: t, source: w/x}], dataOuts: [{name: parts}]}
- parallelFor:
    name: P
    dataIns: [{name: items, source: Split/parts}]
    iterators: [items]
    loopBody:
    - function: {name: Shift, type: F, dataIns: [{name: i, source: P/items}], dataOuts: [{name: o}]}
    dataOuts: [{name: all, source: Shift/o}]
- parallel:
    name: Q
    dataIns: [{name: v, source: Split/parts}]
    parallelBody:
    - section: [{function: {name: L, type: F, dataIns: [{name: i, source: Q/v}], dataOuts: [{name: o}]}}]
    - section: [{function: {name: R, type: F, dataIns: [{name: i, source: Q/v}], dataOuts: [{name: o}]}}]
    dataOuts: [{name: l, source: L/o}, {name: r, source: R/o}]
- function: {name: Join, type: J, dataIns: [{name: a, source: P/all}, {name: b, source: Split/parts}, {name: c, source: Q/l}], dataOuts: [{name: r}]}
dataOuts: [{name: r, source: Join/r}, {name: s, source: Q/r}]
)");
  ASSERT_TRUE(wf.ok()) << wf.error().message();
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& e : taskEdges(**wf)) got.emplace_back(e.from, e.to);
  // Shift reads the loop's input, which Split made; L and R the parallel's; Join reads the
  // loop's output (Shift's), Split's directly and the parallel's `l` (L's, not R's);
  // nothing reads the workflow's own input as an edge.
  std::vector<std::pair<std::string, std::string>> want = {
      {"Split", "Shift"}, {"Split", "L"}, {"Split", "R"}, {"Shift", "Join"}, {"Split", "Join"}, {"L", "Join"}};
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace tern::workflow
