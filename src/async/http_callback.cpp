#include "async/http_callback.h"

#include <fmt/format.h>

#include "async/job_json.h"

namespace tern::async {

Result<CallbackUrl> parseCallbackUrl(std::string_view url) {
  auto parsed = http::parseUrl(url, http::UrlUse::kRequest);
  if (!parsed) return Error(parsed.error().code(), "callback_url: " + parsed.error().message());
  return parsed;
}

Result<void> checkCallbackUrl(std::string_view url) {
  auto parsed = parseCallbackUrl(url);
  if (!parsed) return parsed.error();
  return {};
}

Result<PostAnswer> post(const CallbackUrl& url, std::string_view body, std::string_view requestId,
                        std::chrono::milliseconds timeout, size_t maxBody) {
  http::HttpRequest request;
  request.method = "POST";
  request.target = "";  // the URL's path and query
  request.headers = {{"Content-Type", "application/json"},
                     {"X-Tern-Invocation-Id", std::string(requestId)}};
  request.body = std::string(body);
  http::HttpClientOptions options;
  options.connectTimeout = timeout;
  options.responseTimeout = timeout;
  options.maxResponseBodyBytes = maxBody;
  options.bodyOverflow = http::BodyOverflow::kTruncate;
  auto answer = http::sendHttp(url, request, options);
  if (!answer) return answer.error();
  return PostAnswer{answer->status, std::move(answer->body), answer->truncated};
}

Result<void> postJson(const CallbackUrl& url, std::string_view body, std::string_view jobId,
                      std::chrono::milliseconds timeout) {
  // The answer's body is not used; keep it small.
  auto answer = post(url, body, jobId, timeout, 64 * 1024);
  if (!answer.ok()) return Error(ErrorCode::kUnavailable, "callback: " + answer.error().message());
  if (answer->status < 200 || answer->status > 299) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("callback {}: answered HTTP {}", url.text(), answer->status));
  }
  return {};
}

bool hasCallbackUrl(const JobRecord& job) { return !job.callbackUrl.empty(); }

AsyncQueue::Delivery httpCallbackDelivery(std::chrono::milliseconds timeout) {
  return [timeout](const JobRecord& job) -> Result<void> {
    if (job.callbackUrl.empty()) return {};
    auto url = parseCallbackUrl(job.callbackUrl);
    if (!url) return url.error();
    return postJson(*url, jobJson(job), job.id, timeout);
  };
}

}  // namespace tern::async
