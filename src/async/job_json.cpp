#include "async/job_json.h"

#include <nlohmann/json.hpp>

namespace tern::async {

using json = nlohmann::json;

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
