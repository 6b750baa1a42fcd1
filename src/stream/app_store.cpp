#include "stream/app_store.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/names.h"

namespace tern::stream {

using json = nlohmann::json;

std::string appJson(const App& app) {
  json j;
  j["name"] = app.name;
  j["processor"] = app.processor.empty() ? json(nullptr) : json(app.processor);
  j["max_per_second"] = app.maxPerSecond > 0 ? json(app.maxPerSecond) : json(nullptr);
  return j.dump();
}

Result<App> parseAppSpec(std::string_view name, std::string_view body) {
  if (!isFunctionName(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 "an app name is 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  App app;
  app.name = std::string(name);
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return app;
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(ErrorCode::kInvalidArgument, "an app spec is a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "name") {
      if (!value.is_string() || value.get<std::string>() != name) {
        return Error(ErrorCode::kInvalidArgument, "\"name\" differs from the app's name in the path");
      }
    } else if (key == "processor") {
      if (value.is_null()) continue;
      if (!value.is_string() || !isFunctionName(value.get<std::string>())) {
        return Error(ErrorCode::kInvalidArgument, "\"processor\" must be a function name or null");
      }
      app.processor = value.get<std::string>();
    } else if (key == "max_per_second") {
      if (value.is_null()) continue;
      if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() <= 0 ||
          value.get<double>() > 1e6) {
        return Error(ErrorCode::kInvalidArgument,
                     "\"max_per_second\" must be a number above 0 and at most 1000000, or null");
      }
      app.maxPerSecond = value.get<double>();
    } else {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("unknown field \"{}\" (known: processor, max_per_second)", key));
    }
  }
  return app;
}

}  // namespace tern::stream
