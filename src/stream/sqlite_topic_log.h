#pragma once
// Topics and apps of a standalone node in <data>/streams.db (SQLite, WAL): one table of
// updates keyed by (topic, seq), trimmed to the retention at each publish (reads leave out
// what has aged out since); the apps as JSON. Statements are prepared once. Followers of a
// topic are called in the publisher's thread, in sequence order (publishes are
// serialised), after the update is committed; they only hand the update on.

#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <optional>

#include "util/sqlite.h"
#include "stream/app_store.h"
#include "stream/topic_log.h"
#include "util/thread_annotations.h"

namespace tern::stream {

class SqliteStreamStore : public TopicLog, public AppStore {
 public:
  // Opens (creating) `file`. Errors: kIo.
  static Result<std::unique_ptr<SqliteStreamStore>> open(const std::filesystem::path& file,
                                                         Retention retention);
  ~SqliteStreamStore() override;

  Result<uint64_t> publish(std::string_view topic, std::string_view payload) override;
  Result<std::vector<Update>> read(std::string_view topic, uint64_t after, size_t max) override;
  Result<TopicBounds> bounds(std::string_view topic) override;
  Result<std::vector<TopicInfo>> topics() override;
  Result<std::unique_ptr<Feed>> follow(std::string_view topic, OnUpdate onUpdate) override;

  Result<void> put(const App& app) override;
  Result<std::optional<App>> get(std::string_view name) override;
  Result<std::vector<App>> list() override;
  Result<bool> remove(std::string_view name) override;

 private:
  struct Follower {
    std::string topic;
    OnUpdate onUpdate;
  };
  class FeedImpl;
  SqliteStreamStore(std::unique_ptr<Database> db, Retention retention);
  Result<void> trim(std::string_view topic, int64_t nowMs) TERN_REQUIRES(mu_);
  Result<TopicBounds> boundsLocked(std::string_view topic, int64_t nowMs) TERN_REQUIRES(mu_);
  int64_t oldestKeptMs(int64_t nowMs) const {
    return nowMs - static_cast<int64_t>(retention_.maxAge.count()) * 1000;
  }
  Result<Statement*> statement(std::optional<Statement>& slot, const char* sql) TERN_REQUIRES(mu_);

  // One lock for the connection and the followers: a feed's destructor waits for a
  // notification in progress, so no call follows it.
  Mutex mu_;
  std::unique_ptr<Database> db_ TERN_PT_GUARDED_BY(mu_);
  Retention retention_;
  std::list<Follower> followers_ TERN_GUARDED_BY(mu_);
  std::optional<Statement> next_ TERN_GUARDED_BY(mu_), insert_ TERN_GUARDED_BY(mu_),
      trim_ TERN_GUARDED_BY(mu_), read_ TERN_GUARDED_BY(mu_), bounds_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern::stream
