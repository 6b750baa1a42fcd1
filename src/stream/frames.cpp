#include "stream/frames.h"

#include <fmt/format.h>

namespace tern::stream {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxStreamId = uint64_t{1} << 53;  // exact in every JSON implementation

// A non-negative integer field; nullopt when it is absent, an error text when it is bad.
std::variant<std::optional<uint64_t>, std::string> unsignedField(const json& j, const char* key,
                                                                 uint64_t max) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<uint64_t>{};
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return fmt::format("\"{}\" must be a non-negative integer", key);
  }
  uint64_t v = it->get<uint64_t>();
  if (v > max) return fmt::format("\"{}\" must be at most {}", key, max);
  return std::optional<uint64_t>{v};
}

}  // namespace

json parseJsonBounded(std::string_view text) {
  bool tooDeep = false;
  json j = json::parse(
      text,
      [&tooDeep](int depth, json::parse_event_t, json&) {
        if (depth > kMaxJsonDepth) tooDeep = true;
        return !tooDeep;
      },
      false);
  return tooDeep ? json(json::value_t::discarded) : j;
}

std::string_view guaranteeName(Guarantee g) {
  return g == Guarantee::kAtLeastOnce ? "at-least-once" : "best-effort";
}

std::variant<DeviceFrame, FrameError> parseDeviceFrame(std::string_view text) {
  if (text.size() > kMaxFrameBytes) {
    return FrameError{{}, fmt::format("a frame is at most {} bytes", kMaxFrameBytes)};
  }
  json j = parseJsonBounded(text);
  if (j.is_discarded() || !j.is_object()) {
    return FrameError{{}, fmt::format("a frame is a JSON object nested at most {} deep", kMaxJsonDepth)};
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    return FrameError{{}, "a frame needs \"type\": subscribe, credits or cancel"};
  }
  auto id = unsignedField(j, "stream", kMaxStreamId);
  if (auto* e = std::get_if<std::string>(&id)) return FrameError{{}, *e};
  auto stream = std::get<std::optional<uint64_t>>(id);
  if (!stream || *stream == 0) {
    return FrameError{{}, fmt::format("a frame needs \"stream\": an integer from 1 to {}", kMaxStreamId)};
  }
  auto fail = [&](std::string message) { return FrameError{stream, std::move(message)}; };
  const std::string& t = type->get_ref<const std::string&>();

  if (t == "credits") {
    auto n = unsignedField(j, "credits", kMaxStreamId);
    if (auto* e = std::get_if<std::string>(&n)) return fail(*e);
    auto credits = std::get<std::optional<uint64_t>>(n);
    if (!credits) return fail("a credits frame needs \"credits\"");
    return DeviceFrame{CreditsFrame{*stream, *credits}};
  }
  if (t == "cancel") return DeviceFrame{CancelFrame{*stream}};
  if (t != "subscribe") {
    return fail(fmt::format("unknown frame type (known: subscribe, credits, cancel)"));
  }

  SubscribeFrame f;
  f.stream = *stream;
  auto topic = j.find("topic");
  if (topic == j.end() || !topic->is_string()) return fail("a subscribe frame needs \"topic\"");
  f.topic = topic->get<std::string>();
  if (auto app = j.find("app"); app != j.end() && !app->is_null()) {
    if (!app->is_string()) return fail("\"app\" must be a string");
    f.app = app->get<std::string>();
  }
  if (auto params = j.find("params"); params != j.end() && !params->is_null()) {
    if (!params->is_object()) return fail("\"params\" must be a JSON object");
    if (params->dump().size() > kMaxParamsBytes) {
      return fail(fmt::format("\"params\" is at most {} bytes", kMaxParamsBytes));
    }
    f.params = *params;
  }
  auto resume = unsignedField(j, "resume_after", UINT64_MAX);
  if (auto* e = std::get_if<std::string>(&resume)) return fail(*e);
  f.resumeAfter = std::get<std::optional<uint64_t>>(resume);
  if (auto g = j.find("guarantee"); g != j.end() && !g->is_null()) {
    if (*g == "best-effort") {
      f.guarantee = Guarantee::kBestEffort;
    } else if (*g == "at-least-once") {
      f.guarantee = Guarantee::kAtLeastOnce;
    } else {
      return fail("\"guarantee\" must be \"best-effort\" or \"at-least-once\"");
    }
  }
  auto credits = unsignedField(j, "credits", kMaxStreamId);
  if (auto* e = std::get_if<std::string>(&credits)) return fail(*e);
  f.credits = std::get<std::optional<uint64_t>>(credits);
  return DeviceFrame{std::move(f)};
}

json payloadValue(std::string_view bytes) {
  json v = parseJsonBounded(bytes);
  if (!v.is_discarded()) return v;
  return json(std::string(bytes));
}

std::string subscribeFrameText(const SubscribeFrame& f) {
  json j{{"type", "subscribe"}, {"stream", f.stream}, {"topic", f.topic}};
  if (!f.app.empty()) j["app"] = f.app;
  if (!f.params.empty()) j["params"] = f.params;
  if (f.resumeAfter) j["resume_after"] = *f.resumeAfter;
  j["guarantee"] = guaranteeName(f.guarantee);
  if (f.credits) j["credits"] = *f.credits;
  return j.dump();
}

std::string subscribedFrame(uint64_t stream, std::string_view topic, uint64_t first, uint64_t last) {
  return json{{"type", "subscribed"}, {"stream", stream}, {"topic", topic},
              {"first_seq", first},   {"last_seq", last}}
      .dump();
}

std::string dataFrameTail(uint64_t seq, std::string_view topic, const json& payload) {
  // Payloads come from valid UTF-8 (checked at publish) or a processor's JSON output;
  // anything else is replaced rather than thrown on.
  return fmt::format(R"(,"seq":{},"topic":{},"payload":{}}})", seq, json(topic).dump(),
                     payload.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string dataFrame(uint64_t stream, std::string_view tail) {
  return fmt::format(R"({{"type":"data","stream":{}{})", stream, tail);
}

std::string terminateFrame(std::optional<uint64_t> stream, std::string_view reason,
                           std::string_view message) {
  json j{{"type", "terminate"}};
  if (stream) j["stream"] = *stream;
  j["reason"] = reason;
  j["message"] = message;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tern::stream
