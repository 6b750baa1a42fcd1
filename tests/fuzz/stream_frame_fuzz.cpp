// Fuzz target: the frames of a device connection (src/stream/frames). A frame that parses
// renders (subscribeFrameText) to text that parses to the same frame; a refusal says why.
// The same bytes taken as a published update give a data frame that is one JSON object
// carrying them.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "stream/frames.h"

using namespace tern::stream;

namespace {

bool same(const SubscribeFrame& a, const SubscribeFrame& b) {
  return a.stream == b.stream && a.topic == b.topic && a.app == b.app && a.params == b.params &&
         a.resumeAfter == b.resumeAfter && a.guarantee == b.guarantee && a.credits == b.credits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parseDeviceFrame(text);
  if (auto* e = std::get_if<FrameError>(&parsed)) {
    FUZZ_CHECK(!e->message.empty());
  } else {
    auto& frame = std::get<DeviceFrame>(parsed);
    if (auto* sub = std::get_if<SubscribeFrame>(&frame)) {
      FUZZ_CHECK(sub->stream != 0);
      auto again = parseDeviceFrame(subscribeFrameText(*sub));
      FUZZ_CHECK(std::holds_alternative<DeviceFrame>(again));
      auto* sub2 = std::get_if<SubscribeFrame>(&std::get<DeviceFrame>(again));
      FUZZ_CHECK(sub2 && same(*sub, *sub2));
    } else if (auto* c = std::get_if<CreditsFrame>(&frame)) {
      FUZZ_CHECK(c->stream != 0);
    }
  }
  nlohmann::json payload = payloadValue(text);
  FUZZ_CHECK(!payload.is_discarded());
  std::string frame = dataFrame(7, dataFrameTail(3, "topic", payload));
  auto j = nlohmann::json::parse(frame, nullptr, false);
  FUZZ_CHECK(j.is_object() && j["stream"] == 7 && j["seq"] == 3 && j.contains("payload"));
  return 0;
}
