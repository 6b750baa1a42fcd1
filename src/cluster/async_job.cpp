#include "cluster/async_job.h"

#include "cluster/payload.h"
#include "util/names.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace tern::cluster {

namespace {

using json = nlohmann::json;

// Typed reads of header fields; each names the field it could not read.
struct Reader {
  const json& h;
  std::optional<std::string> bad;

  std::string str(const char* k, bool required = true) {
    auto it = h.find(k);
    if (it == h.end() && !required) return {};
    if (it == h.end() || !it->is_string()) {
      if (!bad) bad = fmt::format("\"{}\" must be a string", k);
      return {};
    }
    return it->get<std::string>();
  }
  int64_t num(const char* k, int64_t lo, int64_t hi, bool required = true) {
    auto it = h.find(k);
    if (it == h.end() && !required) return 0;
    if (it == h.end() || !it->is_number_integer() || it->get<int64_t>() < lo ||
        it->get<int64_t>() > hi) {
      if (!bad) bad = fmt::format("\"{}\" must be an integer in [{}, {}]", k, lo, hi);
      return 0;
    }
    return it->get<int64_t>();
  }
  Result<void> done() const {
    if (bad) return Error(ErrorCode::kInvalidArgument, *bad);
    return {};
  }
};

constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max();

std::optional<async::JobStatus> statusByName(std::string_view s) {
  for (auto st : {async::JobStatus::kQueued, async::JobStatus::kRunning,
                  async::JobStatus::kSucceeded, async::JobStatus::kFailed}) {
    if (s == async::jobStatusName(st)) return st;
  }
  return std::nullopt;
}

std::optional<async::DeliveryState> deliveryByName(std::string_view s) {
  for (auto d : {async::DeliveryState::kNone, async::DeliveryState::kPending,
                 async::DeliveryState::kDelivered, async::DeliveryState::kGaveUp}) {
    if (s == async::deliveryStateName(d)) return d;
  }
  return std::nullopt;
}

}  // namespace

bool isValidJobId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

AsyncJob asyncJobFrom(const async::JobRecord& r) {
  AsyncJob j;
  j.id = r.id;
  j.function = r.function;
  j.origin = r.origin;
  j.meta = r.meta;
  j.callbackUrl = r.callbackUrl;
  j.env = r.env;
  j.body = r.body;
  j.attemptsBefore = r.attempts;
  j.maxAttempts = r.maxAttempts;
  j.createdMs = r.createdMs;
  return j;
}

std::string encodeAsyncJob(const AsyncJob& j) {
  json h{{"id", j.id},
         {"fn", j.function},
         {"origin", j.origin},
         {"meta", j.meta},
         {"callback_url", j.callbackUrl},
         {"env", j.env},
         {"attempts", j.attemptsBefore},
         {"max_attempts", j.maxAttempts},
         {"created_ms", j.createdMs}};
  return framePayload(h, j.body);
}

Result<AsyncJob> decodeAsyncJob(std::string_view payload) {
  std::string_view raw;
  auto h = unframePayload(payload, raw);
  if (!h.ok()) return h.error();
  Reader in{*h, {}};
  AsyncJob j;
  j.id = in.str("id");
  j.function = in.str("fn");
  j.origin = in.str("origin");
  j.meta = in.str("meta");
  j.callbackUrl = in.str("callback_url");
  j.attemptsBefore = static_cast<uint32_t>(in.num("attempts", 0, 1000));
  j.maxAttempts = static_cast<uint32_t>(in.num("max_attempts", 1, 1000));
  j.createdMs = in.num("created_ms", 0, kMaxTime);
  if (auto ok = in.done(); !ok.ok()) return ok.error();
  auto env = h->find("env");
  if (env == h->end() || !env->is_array()) {
    return Error(ErrorCode::kInvalidArgument, "\"env\" must be an array of strings");
  }
  for (const auto& v : *env) {
    if (!v.is_string() || v.get<std::string>().find('=') == std::string::npos) {
      return Error(ErrorCode::kInvalidArgument, "\"env\" must hold KEY=VALUE strings");
    }
    j.env.push_back(v.get<std::string>());
  }
  if (!isValidJobId(j.id)) return Error(ErrorCode::kInvalidArgument, "\"id\" is not a job id");
  if (!isFunctionName(j.function)) {
    return Error(ErrorCode::kInvalidArgument, "\"fn\" is not a function name");
  }
  if (j.origin.empty() || j.origin.size() > 32) {
    return Error(ErrorCode::kInvalidArgument, "\"origin\" must be 1..32 characters");
  }
  j.body.assign(raw.data(), raw.size());
  return j;
}

std::string encodeAsyncRecord(const AsyncRecord& r, size_t maxBytes) {
  const async::JobRecord& j = r.job;
  json h{{"id", j.id},
         {"fn", j.function},
         {"origin", j.origin},
         {"status", async::jobStatusName(j.status)},
         {"attempts", j.attempts},
         {"max_attempts", j.maxAttempts},
         {"exit_code", j.exitCode},
         {"error_code", j.errorCode},
         {"error_message", j.errorMessage},
         {"delivery", async::deliveryStateName(j.delivery)},
         {"delivery_attempts", j.deliveryAttempts},
         {"delivery_error", j.deliveryError},
         {"created_ms", j.createdMs},
         {"updated_ms", j.updatedMs},
         {"started_ms", j.startedMs},
         {"finished_ms", j.finishedMs},
         {"next_attempt_ms", j.nextAttemptMs},
         {"node", r.node},
         {"output_dropped", r.outputDropped}};
  if (r.handedBack > 0) h["handed_back"] = r.handedBack;
  std::string out = framePayload(h, j.output);
  if (out.size() <= maxBytes) return out;
  h["output_dropped"] = true;
  return framePayload(h, "");
}

Result<AsyncRecord> decodeAsyncRecord(std::string_view payload) {
  std::string_view raw;
  auto h = unframePayload(payload, raw);
  if (!h.ok()) return h.error();
  Reader in{*h, {}};
  AsyncRecord r;
  async::JobRecord& j = r.job;
  j.id = in.str("id");
  j.function = in.str("fn");
  j.origin = in.str("origin");
  std::string status = in.str("status");
  j.attempts = static_cast<uint32_t>(in.num("attempts", 0, 1000));
  j.maxAttempts = static_cast<uint32_t>(in.num("max_attempts", 0, 1000));
  j.exitCode = static_cast<int>(in.num("exit_code", -1, 255));
  j.errorCode = in.str("error_code");
  j.errorMessage = in.str("error_message");
  std::string delivery = in.str("delivery");
  j.deliveryAttempts = static_cast<uint32_t>(in.num("delivery_attempts", 0, 1000));
  j.deliveryError = in.str("delivery_error");
  j.createdMs = in.num("created_ms", 0, kMaxTime);
  j.updatedMs = in.num("updated_ms", 0, kMaxTime);
  j.startedMs = in.num("started_ms", 0, kMaxTime);
  j.finishedMs = in.num("finished_ms", 0, kMaxTime);
  j.nextAttemptMs = in.num("next_attempt_ms", 0, kMaxTime);
  r.node = in.str("node");
  if (auto ok = in.done(); !ok.ok()) return ok.error();
  auto st = statusByName(status);
  if (!st) return Error(ErrorCode::kInvalidArgument, "\"status\" is not a job status");
  j.status = *st;
  auto d = deliveryByName(delivery);
  if (!d) return Error(ErrorCode::kInvalidArgument, "\"delivery\" is not a delivery state");
  j.delivery = *d;
  auto dropped = h->find("output_dropped");
  r.outputDropped = dropped != h->end() && dropped->is_boolean() && dropped->get<bool>();
  auto handed = h->find("handed_back");
  if (handed != h->end()) {
    if (!handed->is_number_unsigned() || handed->get<uint64_t>() > UINT32_MAX) {
      return Error(ErrorCode::kInvalidArgument, "\"handed_back\" is not a count");
    }
    r.handedBack = static_cast<uint32_t>(handed->get<uint64_t>());
  }
  if (!isValidJobId(j.id)) return Error(ErrorCode::kInvalidArgument, "\"id\" is not a job id");
  j.output.assign(raw.data(), raw.size());
  return r;
}

uint32_t attemptOfDelivery(uint32_t attemptsBefore, uint64_t numDelivered, uint32_t handedBack) {
  uint64_t used = numDelivered > handedBack ? numDelivered - handedBack : 1;
  uint64_t a = static_cast<uint64_t>(attemptsBefore) + std::max<uint64_t>(used, 1);
  return static_cast<uint32_t>(std::min<uint64_t>(a, std::numeric_limits<uint32_t>::max()));
}

}  // namespace tern::cluster
