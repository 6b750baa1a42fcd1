#pragma once
// A function's host API capabilities, parsed from the strings granted at deploy
// (`tern deploy --allow ...`, stored in the registry as FunctionSettings::allow):
//
//   kv                    its own key-value namespace (get, set, delete, list)
//   publish:TOPIC_FILTER  publish to topics matching an MQTT filter (+ and # wildcards)
//   invoke:NAME           invoke the function NAME on this node; invoke:* any function
//   stream:TOPIC          publish updates to the stream topic TOPIC; stream:* any topic
//   log                   accepted for explicitness; logging is always allowed
//
// Nothing else is granted: a function deployed without --allow may only log. Parsed once
// per active version; the checks are pure functions of the parsed value. See
// docs/design/host-api.md and docs/security-model.md.

#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::exec {

class Capabilities {
 public:
  Capabilities() = default;  // nothing granted

  bool allowsKv() const { return kv_; }
  bool allowsPublish(std::string_view topic) const;
  bool allowsInvoke(std::string_view function) const;
  bool allowsStream(std::string_view topic) const;

  // Why a call is refused, for last_error and the function's log, e.g.
  // `capability "publish:alerts/#" does not cover topic "x/y"`.
  std::string kvDenial() const;
  std::string publishDenial(std::string_view topic) const;
  std::string invokeDenial(std::string_view function) const;
  std::string streamDenial(std::string_view topic) const;

  // The granted capabilities in canonical form, e.g. "kv, publish:alerts/#"; "none".
  std::string describe() const;

 private:
  friend Result<Capabilities> parseCapabilities(const std::vector<std::string>& granted);
  bool kv_ = false;
  bool invokeAny_ = false;
  bool streamAny_ = false;
  std::vector<std::string> publish_;  // topic filters
  std::vector<std::string> invoke_;   // function names
  std::vector<std::string> stream_;   // stream topic names
};

// Errors (kInvalidArgument) name the offending entry: an unknown kind, a kind that takes
// an argument without one (or the reverse), an invalid topic filter, function name or
// stream topic name.
Result<Capabilities> parseCapabilities(const std::vector<std::string>& granted);

}  // namespace tern::exec
