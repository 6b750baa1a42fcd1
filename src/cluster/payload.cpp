#include "cluster/payload.h"

namespace tern::cluster {

using json = nlohmann::json;

std::string framePayload(const json& header, std::string_view raw) {
  std::string h = header.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(4 + h.size() + raw.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((h.size() >> (8 * i)) & 0xff));
  out += h;
  out.append(raw.data(), raw.size());
  return out;
}

Result<json> unframePayload(std::string_view payload, std::string_view& raw) {
  if (payload.size() < 4) return Error(ErrorCode::kInvalidArgument, "payload shorter than its header length");
  size_t len = 0;
  for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(payload[i]);
  if (len > payload.size() - 4) {
    return Error(ErrorCode::kInvalidArgument, "header length beyond the payload");
  }
  json header = json::parse(payload.substr(4, len), nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return Error(ErrorCode::kInvalidArgument, "header is not a JSON object");
  raw = payload.substr(4 + len);
  return header;
}

}  // namespace tern::cluster
