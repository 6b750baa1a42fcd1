#pragma once
// The scheduler's memory across restarts: for each schedule id, its canonical spec and the
// last scheduled time it accounted for (the last time it fired, or when it was added). One
// small SQLite table; SQLite stays out of this header. Not thread-safe: the Scheduler
// serialises every call.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.h"

namespace tern::events {

struct RunRecord {
  std::string spec;    // Schedule::spec() when the record was written
  int64_t lastMs = 0;  // runs at or before this time are done or forgiven
};

class RunLog {
 public:
  // Opens (creating if needed) the database at `path`; ":memory:" keeps nothing across
  // processes. Errors: kIo (cannot open, not a database, written by a newer tern).
  static Result<std::unique_ptr<RunLog>> open(const std::string& path);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  Result<std::optional<RunRecord>> find(std::string_view id);
  Result<void> put(std::string_view id, const RunRecord& record);
  Result<void> erase(std::string_view id);

 private:
  struct Connection;
  explicit RunLog(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> db_;
};

}  // namespace tern::events
