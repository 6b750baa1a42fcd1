#pragma once
// The human output of the node commands, and how a command reports its error: pure functions from the node's JSON answers
// (docs/http-api.md) to text. They never throw on unexpected JSON: a missing or mistyped
// field shows as empty, "-" or 0. Text that comes from guests (log lines, trap details) is
// made safe for a terminal. Times are Unix milliseconds; `nowMs` is passed in so ages are
// testable.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tern::cli {

// "512 B", "4.1 KiB", "12.0 MiB", "1.5 GiB".
std::string formatBytes(uint64_t bytes);
// "just now", "42s ago", "5m ago", "3h ago", "12d ago" (a time in the future: "just now").
std::string formatAge(int64_t thenMs, int64_t nowMs);
// Local time "2024-05-01 12:03:04" (with ".123" when `millis`).
enum class Millis { kHide, kShow };
std::string formatTimestamp(int64_t ms, Millis millis = Millis::kHide);
// "850 us", "12.3 ms", "2.41 s".
std::string formatMicros(int64_t us);
// "45s", "5m 3s", "2h 5m", "3d 4h".
std::string formatUptime(double seconds);
// The first 8 hex digits and an ellipsis ("4e4dff14e2c1…").
std::string shortHash(std::string_view sha256);
// Replaces control characters and invalid UTF-8 with \xNN so that guest text cannot move
// the cursor or change the terminal; tabs stay.
std::string terminalSafe(std::string_view text);

// Fields of a node's JSON answer, read without trusting it (it is input): the member, or
// null when `j` is not an object or has none; a string member made terminal-safe (empty
// when absent or not a string); a number member (nullopt when absent, not a number or not
// finite).
const nlohmann::json* answerField(const nlohmann::json& j, const char* key);
std::string answerText(const nlohmann::json& j, const char* key);
std::optional<double> answerNumber(const nlohmann::json& j, const char* key);

// Columns padded to their widest cell, separated by two spaces; the first row is the
// header. The last column is not padded.
std::string renderTable(const std::vector<std::vector<std::string>>& rows);

// A version (PUT /v1/functions/NAME): "deployed hello version 3 (sha256 4e4d…, 4.1 KiB)".
std::string formatDeployed(const nlohmann::json& version);
// A version (POST .../rollback): "hello: version 2 is active (sha256 …, 4.1 KiB)".
std::string formatRolledBack(const nlohmann::json& version);
// GET /v1/functions: a table NAME VERSION VERSIONS UPDATED.
std::string formatFunctionList(const nlohmann::json& list, int64_t nowMs);
// GET /v1/functions/NAME: key: value lines, invocation counts, the last few invocations.
std::string formatFunctionInfo(const nlohmann::json& info, int64_t nowMs);
// GET /v1/functions/NAME/versions: a table with '*' on the active version.
std::string formatVersions(const nlohmann::json& versions, int64_t nowMs);
// GET /v1/functions/NAME/logs: one line per stderr line, "TIME vN ID text".
std::string formatLogLines(const nlohmann::json& logs);
// GET /v1/status: key: value lines.
std::string formatStatus(const nlohmann::json& status, std::string_view nodeUrl);

// How many recent invocations `formatFunctionInfo` shows.
inline constexpr size_t kInfoRecentInvocations = 5;

// Prints "tern: <kind>: <message>" to `err` and returns the kind's exit status: how every
// command reports the error that ends it.
int reportFailure(std::ostream& err, const Error& e);

}  // namespace tern::cli
