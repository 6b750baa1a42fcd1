#pragma once
// The delivery hook of the "http" origin: POSTs the job's JSON (job_json.h) to the job's
// callback URL, http:// or https:// (the certificate verified against the system's trusted
// CAs), through tern's HTTP client (http/http_client.h), one request per connection with
// a deadline. A 2xx answer is success; anything else is an error, which the queue retries
// with backoff.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "async/async_queue.h"
#include "http/http_client.h"

namespace tern::async {

// A callback URL: http[s]://HOST[:PORT][/PATH][?QUERY], its path and query in `path`.
using CallbackUrl = http::Url;

// Parses a callback URL (http::parseUrl for requests). Errors: kInvalidArgument saying
// what is wrong, naming callback_url.
Result<CallbackUrl> parseCallbackUrl(std::string_view url);

// One POST of `body` (application/json) and its answer: status and body (cut at `maxBody`
// bytes, and then `truncated`). Errors: kUnavailable (cannot resolve or connect, no
// complete answer before the deadline); any status is an answer.
struct PostAnswer {
  int status = 0;
  std::string body;
  bool truncated = false;
};
Result<PostAnswer> post(const CallbackUrl& url, std::string_view body, std::string_view requestId,
                        std::chrono::milliseconds timeout, size_t maxBody);

// Sends one POST of `body` (application/json) and reads the answer. Errors: kUnavailable
// (cannot resolve or connect, no complete answer before the deadline, or a status other
// than 2xx, which the message names).
Result<void> postJson(const CallbackUrl& url, std::string_view body, std::string_view jobId,
                      std::chrono::milliseconds timeout);

// The "http" origin's Delivery: postJson of jobJson(record) to its callback URL (nothing
// to do without one).
AsyncQueue::Delivery httpCallbackDelivery(std::chrono::milliseconds timeout);
// The jobs httpCallbackDelivery has something to do for: those with a callback URL.
bool hasCallbackUrl(const JobRecord& job);

}  // namespace tern::async
