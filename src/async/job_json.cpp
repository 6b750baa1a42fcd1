#include "async/job_json.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace tern::async {

using json = nlohmann::json;

bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string jobJson(const JobRecord& j) {
  auto optMs = [](int64_t ms) { return ms ? json(ms) : json(nullptr); };
  bool final = j.status == JobStatus::kSucceeded || j.status == JobStatus::kFailed;
  json out{{"id", j.id},
           {"function", j.function},
           {"origin", j.origin},
           {"status", jobStatusName(j.status)},
           {"attempts", j.attempts},
           {"max_attempts", j.maxAttempts},
           {"created_at_ms", j.createdMs},
           {"updated_at_ms", j.updatedMs},
           {"started_at_ms", optMs(j.startedMs)},
           {"finished_at_ms", optMs(j.finishedMs)}};
  if (j.status == JobStatus::kQueued) out["next_attempt_at_ms"] = j.nextAttemptMs;
  if (!j.idempotencyKey.empty()) out["idempotency_key"] = j.idempotencyKey;
  if (!j.callbackUrl.empty()) out["callback_url"] = j.callbackUrl;
  out["error"] = j.errorCode.empty()
                     ? json(nullptr)
                     : json{{"code", j.errorCode}, {"message", j.errorMessage}};
  if (final) {
    out["exit_code"] = j.exitCode >= 0 ? json(j.exitCode) : json(nullptr);
    if (isValidUtf8(j.output)) {
      out["output"] = j.output;
      out["output_encoding"] = "utf-8";
    } else {
      out["output"] = base64Encode(j.output);
      out["output_encoding"] = "base64";
    }
  }
  if (j.delivery != DeliveryState::kNone) {
    out["delivery"] = json{{"state", deliveryStateName(j.delivery)},
                           {"attempts", j.deliveryAttempts},
                           {"error", j.deliveryError.empty() ? json(nullptr)
                                                             : json(j.deliveryError)}};
  }
  // Error messages may quote guest bytes: invalid UTF-8 is replaced, never thrown on.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tern::async
