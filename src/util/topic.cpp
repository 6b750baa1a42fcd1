#include "util/topic.h"

#include "util/utf8.h"
#include "util/quote.h"

#include <string>

namespace tern {

namespace {

Result<void> checkCommon(std::string_view s, const char* what) {
  if (s.empty()) return Error(ErrorCode::kInvalidArgument, std::string(what) + " is empty");
  if (s.size() > 65535) {
    return Error(ErrorCode::kInvalidArgument, std::string(what) + " is longer than 65535 bytes");
  }
  if (s.find('\0') != std::string_view::npos || !isValidUtf8(s)) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(what) + " " + quoteUntrusted(s) + " is not UTF-8 text without NUL");
  }
  return {};
}

}  // namespace

Result<void> checkTopicName(std::string_view topic) {
  if (auto ok = checkCommon(topic, "MQTT topic"); !ok) return ok;
  if (topic.find_first_of("+#") != std::string_view::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "MQTT topic " + quoteUntrusted(topic) + " contains a wildcard ('+' or '#')");
  }
  return {};
}

Result<void> checkTopicFilter(std::string_view filter) {
  if (auto ok = checkCommon(filter, "MQTT topic filter"); !ok) return ok;
  size_t start = 0;
  while (true) {
    size_t end = filter.find('/', start);
    std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    bool last = end == std::string_view::npos;
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level == "#" && !last) {
        return Error(ErrorCode::kInvalidArgument,
                     "MQTT topic filter " + quoteUntrusted(filter) + ": '#' must be the last level");
      }
      if (level != "+" && level != "#") {
        return Error(ErrorCode::kInvalidArgument,
                     "MQTT topic filter " + quoteUntrusted(filter) +
                         ": a wildcard ('+' or '#') must fill a whole level");
      }
    }
    if (last) break;
    start = end + 1;
  }
  return {};
}

bool topicMatches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  size_t f = 0, t = 0;
  while (true) {
    size_t fe = filter.find('/', f);
    std::string_view fl = filter.substr(f, fe == std::string_view::npos ? std::string_view::npos : fe - f);
    if (fl == "#") return true;  // matches this level and everything below, or the parent
    if (t > topic.size()) return false;
    size_t te = topic.find('/', t);
    std::string_view tl = topic.substr(t, te == std::string_view::npos ? std::string_view::npos : te - t);
    if (fl != "+" && fl != tl) return false;
    bool fLast = fe == std::string_view::npos, tLast = te == std::string_view::npos;
    if (fLast || tLast) {
      if (fLast && tLast) return true;
      // "a/#" matches "a": the filter continues with exactly "/#".
      return tLast && !fLast && filter.substr(fe + 1) == "#";
    }
    f = fe + 1;
    t = te + 1;
  }
}

}  // namespace tern
