#include "stream/topic_log.h"

#include <fmt/format.h>

#include "util/stream_topic.h"
#include "util/utf8.h"

namespace tern::stream {

bool isTopicName(std::string_view name) { return isStreamTopicName(name); }

Result<void> checkPublish(std::string_view topic, std::string_view payload, const Retention& r) {
  if (!isTopicName(topic)) {
    return Error(ErrorCode::kInvalidArgument,
                 "a topic name is 1 to 64 of A-Z, a-z, 0-9, '_' and '-', starting with a "
                 "letter or digit");
  }
  if (payload.size() > r.maxPayloadBytes) {
    return Error(ErrorCode::kBodyTooLarge,
                 fmt::format("the update is {} bytes, the limit is {} bytes", payload.size(),
                             r.maxPayloadBytes));
  }
  if (!isValidUtf8(payload)) {
    return Error(ErrorCode::kInvalidArgument,
                 "an update must be UTF-8 text (JSON or a string); encode binary data, e.g. "
                 "as base64");
  }
  return {};
}

}  // namespace tern::stream
