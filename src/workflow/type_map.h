#pragma once
// Function types and their implementations, in Apollo's type-mapping format:
//   [{"functionType": "Shift",
//     "resources": [{"type": "tern", "properties": {"function": "shift", "tier": "edge"}},
//                   {"type": "Serverless", "properties": {"Uri": "http://host/shift"}}]}]
// Resource type `tern` is a tern function (placement properties `tier`, `site`, `labels`
// narrow the cluster nodes it may run on); `Serverless` is an HTTP endpoint that takes the
// task's JSON input by POST and answers its JSON output. A type without a mapping is the
// tern function named as the type in lower case.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::workflow {

struct Implementation {
  enum class Kind : uint8_t { kTern, kServerless };
  Kind kind = Kind::kTern;
  std::string function;  // kTern
  std::string tier;      // kTern: edge, cloud, or empty (any)
  std::vector<std::string> sites;
  std::vector<std::string> labels;  // KEY=VALUE
  std::string uri;       // kServerless: http://HOST[:PORT]/PATH
};

class TypeMap {
 public:
  // Parses a mapping file's JSON. Errors: kInvalidArgument naming the entry and field
  // (unknown resource types, a tern resource without a valid function name, a Serverless
  // resource without an http:// Uri, a type mapped twice).
  static Result<TypeMap> parse(std::string_view jsonText);

  // The implementations of `type`, in the file's order; the default when unmapped.
  std::vector<Implementation> implementations(const std::string& type) const;
  bool empty() const { return types_.empty(); }

 private:
  std::map<std::string, std::vector<Implementation>> types_;
};

// The default function of an unmapped type: the type in lower case.
std::string defaultFunctionName(std::string_view type);

}  // namespace tern::workflow
