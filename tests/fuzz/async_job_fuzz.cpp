// Fuzz target: async jobs and job records as peers hand them over (src/cluster/async_job),
// and the job JSON the node then shows and posts to callbacks (src/async/job_json). The
// first byte chooses the parser. Decoded values encode back to the same value; the job
// JSON of any record is valid JSON whose output decodes back to the job's output bytes.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "async/job_json.h"
#include "cluster/async_job.h"
#include "fuzz_check.h"

using namespace tern;
using namespace tern::cluster;

namespace {

void checkJobJson(const async::JobRecord& job) {
  auto j = nlohmann::json::parse(async::jobJson(job), nullptr, false);
  FUZZ_CHECK(j.is_object());
  FUZZ_CHECK(j.value("id", std::string()) == job.id);
  if (job.output.empty() || !j.contains("output")) return;
  std::string shown = j["output"].get<std::string>();
  if (j.value("output_encoding", std::string()) == "base64") {
    auto decoded = base64Decode(shown);
    FUZZ_CHECK(decoded && *decoded == job.output);
  } else {
    FUZZ_CHECK(shown == job.output);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    auto r = decodeAsyncRecord(text);
    if (!r.ok()) {
      FUZZ_CHECK(!r.error().message().empty());
      return 0;
    }
    FUZZ_CHECK(isValidJobId(r->job.id));
    checkJobJson(r->job);
    auto again = decodeAsyncRecord(encodeAsyncRecord(*r, size_t{1} << 20));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->job.id == r->job.id && again->job.function == r->job.function);
    FUZZ_CHECK(again->job.status == r->job.status && again->job.attempts == r->job.attempts);
    FUZZ_CHECK(again->job.output == r->job.output && again->node == r->node);
    return 0;
  }
  auto j = decodeAsyncJob(text);
  if (!j.ok()) {
    FUZZ_CHECK(!j.error().message().empty());
    return 0;
  }
  auto again = decodeAsyncJob(encodeAsyncJob(*j));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->id == j->id && again->function == j->function && again->origin == j->origin);
  FUZZ_CHECK(again->meta == j->meta && again->callbackUrl == j->callbackUrl);
  FUZZ_CHECK(again->env == j->env && again->body == j->body);
  FUZZ_CHECK(again->attemptsBefore == j->attemptsBefore && again->maxAttempts == j->maxAttempts);
  FUZZ_CHECK(again->createdMs == j->createdMs);
  return 0;
}
