#pragma once
// Stream applications (docs/design/streams.md): what a subscriber to a topic gets through
// an app, namely its processor (a deployed function called per update and subscriber) and
// its rate limit. Stored in SQLite on a standalone node (SqliteAppStore, in
// sqlite_topic_log.h) and in a JetStream key-value bucket in a cluster, so an app deployed
// on one node is known to all of them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::stream {

struct App {
  std::string name;          // the function-name rule (util/names.h)
  std::string processor;     // a function's name; empty: updates pass unchanged
  double maxPerSecond = 0;   // per subscriber; 0: no limit
};

// App's JSON, as in PUT /v1/apps/NAME and GET /v1/apps: {"name", "processor", "max_per_second"}
// (processor null and max_per_second null when unset).
std::string appJson(const App& app);
// Parses the body of PUT /v1/apps/NAME ({"processor"?: string|null, "max_per_second"?:
// number|null}) for the app `name`. Errors: kInvalidArgument naming the field.
Result<App> parseAppSpec(std::string_view name, std::string_view body);

class AppStore {
 public:
  virtual ~AppStore() = default;
  virtual Result<void> put(const App& app) = 0;
  virtual Result<std::optional<App>> get(std::string_view name) = 0;
  virtual Result<std::vector<App>> list() = 0;
  // True when there was such an app.
  virtual Result<bool> remove(std::string_view name) = 0;
};

}  // namespace tern::stream
