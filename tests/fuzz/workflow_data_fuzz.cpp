// Fuzz target: the data operations of a workflow run (src/workflow/data_ops): collection
// operations (element-index, block, replicate, split, distribution) whose arguments come
// from the AFCL document and whose values come from a run's input, constants, and
// conditions' comparisons. Input: a selector byte, the arguments, NUL, a JSON value
// (nested at most 64 deep, as the service reads inputs; other bytes are taken as a string,
// which may not be UTF-8), NUL, a second operand. Checked: refusals say why (and never
// throw on bytes that are not UTF-8); an operation on JSON gives JSON; a comparison
// answers or refuses.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "workflow/data_ops.h"

using namespace tern;
using namespace tern::workflow;
using nlohmann::json;

namespace {

// The JSON value of `text` (nested at most 64 deep), else the text as a string;
// `isJson` says which.
json parseBounded(std::string_view text, bool& isJson) {
  bool tooDeep = false;
  json j = json::parse(
      text, [&tooDeep](int depth, json::parse_event_t, json&) {
        if (depth > 64) tooDeep = true;
        return !tooDeep;
      },
      false);
  isJson = !tooDeep && !j.is_discarded();
  return isJson ? j : json(std::string(text));
}

constexpr const char* kOps[] = {"element-index", "block", "replicate", "split", "distribution",
                                "unknown-op"};
constexpr const char* kCompareOps[] = {"==", "!=", "<", "<=", ">", ">=", "contains",
                                       "startsWith", "endsWith"};
constexpr const char* kTypes[] = {"", "number", "string", "boolean", "collection"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t a = rest.find('\0');
  std::string_view args = rest.substr(0, a);
  std::string_view valueText = a == std::string_view::npos ? "" : rest.substr(a + 1);
  size_t b = valueText.find('\0');
  std::string_view otherText = b == std::string_view::npos ? "" : valueText.substr(b + 1);
  valueText = valueText.substr(0, b);

  bool valueIsJson = false, otherIsJson = false;
  json value = parseBounded(valueText, valueIsJson);
  const char* op = kOps[data[0] % std::size(kOps)];
  ResolveNumber resolve = [](std::string_view reference) -> Result<double> {
    if (reference == "wf/n") return 3.0;
    return Error(ErrorCode::kInvalidArgument, "unknown reference");
  };
  auto result = applyCollectionOp(value, op, args, resolve);
  if (!result.ok()) {
    FUZZ_CHECK(!result.error().message().empty());
  } else if (valueIsJson) {
    // What a run passes on is written as JSON: an operation on JSON gives JSON.
    bool dumped = true;
    try {
      (void)result->dump();
    } catch (const json::exception&) {
      dumped = false;
    }
    FUZZ_CHECK(dumped);
  }

  json constant = parseConstant(args);
  const char* type = kTypes[(data[0] >> 3) % std::size(kTypes)];
  (void)coerce(constant, type);
  (void)isReference(args);
  json other = parseBounded(otherText, otherIsJson);
  auto cmp = compare(value, other, kCompareOps[(data[0] >> 5) % std::size(kCompareOps)], type);
  if (!cmp.ok()) FUZZ_CHECK(!cmp.error().message().empty());
  return 0;
}
