#include "exec/capabilities.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/quote.h"
#include "util/names.h"
#include "util/stream_topic.h"
#include "util/topic.h"

namespace tern::exec {

namespace {


void addOnce(std::vector<std::string>& list, std::string_view value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.emplace_back(value);
}

std::string joined(const std::vector<std::string>& list, std::string_view prefix) {
  std::string out;
  for (const auto& v : list) {
    if (!out.empty()) out += ", ";
    out += fmt::format("\"{}{}\"", prefix, v);
  }
  return out;
}

}  // namespace

Result<Capabilities> parseCapabilities(const std::vector<std::string>& granted) {
  Capabilities caps;
  for (const auto& entry : granted) {
    auto bad = [&](std::string why) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("invalid capability {}: {}", quoteUntrusted(entry), why));
    };
    size_t colon = entry.find(':');
    std::string_view kind = std::string_view(entry).substr(0, colon);
    std::string_view arg =
        colon == std::string::npos ? std::string_view() : std::string_view(entry).substr(colon + 1);
    const bool hasArg = colon != std::string::npos;
    if (kind == "kv" || kind == "log") {
      if (hasArg) return bad(fmt::format("\"{}\" takes no argument", kind));
      if (kind == "kv") caps.kv_ = true;
    } else if (kind == "publish") {
      if (!hasArg || arg.empty()) return bad("use publish:TOPIC_FILTER, e.g. publish:alerts/#");
      if (auto ok = checkTopicFilter(arg); !ok.ok()) return bad(ok.error().message());
      addOnce(caps.publish_, arg);
    } else if (kind == "invoke") {
      if (!hasArg || arg.empty()) return bad("use invoke:NAME (a function name) or invoke:*");
      if (arg == "*") {
        caps.invokeAny_ = true;
      } else if (!isFunctionName(arg)) {
        return bad("a function name is 1 to 63 characters of a-z, 0-9 and '-', not starting "
                   "with '-'");
      } else {
        addOnce(caps.invoke_, arg);
      }
    } else if (kind == "stream") {
      if (!hasArg || arg.empty()) return bad("use stream:TOPIC (a stream topic name) or stream:*");
      if (arg == "*") {
        caps.streamAny_ = true;
      } else if (!isStreamTopicName(arg)) {
        return bad("a stream topic name is 1 to 64 of A-Z, a-z, 0-9, '_' and '-', starting "
                   "with a letter or digit");
      } else {
        addOnce(caps.stream_, arg);
      }
    } else {
      return bad("unknown kind; use kv, log, publish:TOPIC_FILTER, invoke:NAME or stream:TOPIC");
    }
  }
  return caps;
}

bool Capabilities::allowsPublish(std::string_view topic) const {
  return std::any_of(publish_.begin(), publish_.end(),
                     [&](const std::string& f) { return topicMatches(f, topic); });
}

bool Capabilities::allowsInvoke(std::string_view function) const {
  return invokeAny_ || std::find(invoke_.begin(), invoke_.end(), function) != invoke_.end();
}

bool Capabilities::allowsStream(std::string_view topic) const {
  return streamAny_ || std::find(stream_.begin(), stream_.end(), topic) != stream_.end();
}

std::string Capabilities::kvDenial() const {
  return fmt::format("key-value state needs the \"kv\" capability (granted: {})", describe());
}

std::string Capabilities::publishDenial(std::string_view topic) const {
  if (publish_.empty()) {
    return fmt::format("publishing to topic {} needs a \"publish:TOPIC_FILTER\" capability "
                       "(granted: {})",
                       quoteUntrusted(topic, 200), describe());
  }
  return fmt::format("{} {} {} not cover topic {}",
                     publish_.size() == 1 ? "capability" : "capabilities",
                     joined(publish_, "publish:"), publish_.size() == 1 ? "does" : "do",
                     quoteUntrusted(topic, 200));
}

std::string Capabilities::invokeDenial(std::string_view function) const {
  if (invoke_.empty()) {
    return fmt::format("invoking function {} needs an \"invoke:NAME\" capability "
                       "(granted: {})",
                       quoteUntrusted(function), describe());
  }
  return fmt::format("{} {} {} not cover function {}",
                     invoke_.size() == 1 ? "capability" : "capabilities", joined(invoke_, "invoke:"), invoke_.size() == 1 ? "does" : "do",
                     quoteUntrusted(function));
}

std::string Capabilities::streamDenial(std::string_view topic) const {
  if (stream_.empty()) {
    return fmt::format("publishing to stream topic {} needs a \"stream:TOPIC\" capability "
                       "(granted: {})",
                       quoteUntrusted(topic), describe());
  }
  return fmt::format("{} {} {} not cover stream topic {}",
                     stream_.size() == 1 ? "capability" : "capabilities", joined(stream_, "stream:"),
                     stream_.size() == 1 ? "does" : "do", quoteUntrusted(topic));
}

std::string Capabilities::describe() const {
  std::vector<std::string> parts;
  if (kv_) parts.emplace_back("kv");
  for (const auto& f : publish_) parts.push_back("publish:" + f);
  if (invokeAny_) parts.emplace_back("invoke:*");
  for (const auto& n : invoke_) parts.push_back("invoke:" + n);
  if (streamAny_) parts.emplace_back("stream:*");
  for (const auto& t : stream_) parts.push_back("stream:" + t);
  if (parts.empty()) return "none";
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

}  // namespace tern::exec
