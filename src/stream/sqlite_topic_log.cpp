#include "stream/sqlite_topic_log.h"

#include <fmt/format.h>

#include "util/sqlite.h"
#include "util/clock.h"

namespace tern::stream {


namespace {

constexpr int kBusyTimeoutMs = 5000;


}  // namespace

class SqliteStreamStore::FeedImpl : public TopicLog::Feed {
 public:
  FeedImpl(SqliteStreamStore& store, std::list<Follower>::iterator at) : store_(store), at_(at) {}
  ~FeedImpl() override {
    MutexLock lock(store_.mu_);
    store_.followers_.erase(at_);
  }

 private:
  SqliteStreamStore& store_;
  std::list<Follower>::iterator at_;
};

SqliteStreamStore::SqliteStreamStore(std::unique_ptr<Database> db, Retention retention)
    : db_(std::move(db)), retention_(retention) {}

SqliteStreamStore::~SqliteStreamStore() = default;

Result<std::unique_ptr<SqliteStreamStore>> SqliteStreamStore::open(const std::filesystem::path& file,
                                                                   Retention retention) {
  auto db = Database::open(file);
  if (!db.ok()) return db.error();
  auto& d = **db;
  for (std::string sql :
       {std::string("PRAGMA synchronous = NORMAL"),
        fmt::format("PRAGMA busy_timeout = {}", kBusyTimeoutMs),
        std::string("CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)"),
        std::string("CREATE TABLE IF NOT EXISTS updates (topic TEXT NOT NULL, seq INTEGER NOT NULL, "
                    "payload BLOB NOT NULL, published_ms INTEGER NOT NULL, "
                    "PRIMARY KEY (topic, seq)) WITHOUT ROWID"),
        std::string("CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, spec TEXT NOT NULL)")}) {
    if (auto ok = d.exec(sql); !ok.ok()) return ok.error();
  }
  auto mode = d.queryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.error();
  return std::unique_ptr<SqliteStreamStore>(new SqliteStreamStore(std::move(*db), retention));
}

Result<Statement*> SqliteStreamStore::statement(std::optional<Statement>& slot, const char* sql) {
  if (!slot) {
    auto stmt = db_->prepare(sql);
    if (!stmt.ok()) return stmt.error();
    slot.emplace(std::move(*stmt));
  }
  return &*slot;
}

Result<void> SqliteStreamStore::trim(std::string_view topic, int64_t nowMs) {
  auto stmt = statement(trim_,
                        "DELETE FROM updates WHERE topic = ?1 AND (published_ms < ?2 OR seq <= "
                        "(SELECT last_seq FROM topics WHERE name = ?1) - ?3)");
  if (!stmt.ok()) return stmt.error();
  StatementUse use(**stmt);
  if (auto b = use->bindAll(topic, oldestKeptMs(nowMs), static_cast<int64_t>(retention_.maxMessages)); !b.ok()) {
    return b.error();
  }
  return use->run();
}

Result<uint64_t> SqliteStreamStore::publish(std::string_view topic, std::string_view payload) {
  if (auto ok = checkPublish(topic, payload, retention_); !ok.ok()) return ok.error();
  int64_t now = unixMillis();
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx.ok()) return tx.error();
  auto next = statement(next_,
                        "INSERT INTO topics (name, last_seq) VALUES (?1, 1) "
                        "ON CONFLICT (name) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq");
  if (!next.ok()) return next.error();
  uint64_t seq = 0;
  {
    StatementUse use(**next);
    if (auto b = use->bindAll(topic); !b.ok()) return b.error();
    auto row = use->step();
    if (!row.ok()) return row.error();
    if (*row != Statement::Step::kRow) return Error(ErrorCode::kInternal, "no sequence number");
    seq = static_cast<uint64_t>(use->columnInt(0));
  }
  auto ins = statement(insert_, "INSERT INTO updates (topic, seq, payload, published_ms) VALUES (?1, ?2, ?3, ?4)");
  if (!ins.ok()) return ins.error();
  Result<void> b;
  {
    StatementUse use(**ins);
    b = use->bind(1, topic);
    if (b.ok()) b = use->bind(2, static_cast<int64_t>(seq));
    if (b.ok()) b = use->bindBlob(3, payload);
    if (b.ok()) b = use->bind(4, now);
    if (b.ok()) b = use->run();
  }
  if (b.ok()) b = trim(topic, now);
  if (b.ok()) b = tx->commit();
  if (!b.ok()) return b.error();

  bool anyone = false;
  for (const auto& f : followers_) anyone = anyone || f.topic == topic;
  if (anyone) {
    auto update = std::make_shared<const Update>(Update{std::string(topic), seq, std::string(payload), now});
    for (const auto& f : followers_) {
      if (f.topic == topic) f.onUpdate(update);
    }
  }
  return seq;
}

Result<std::vector<Update>> SqliteStreamStore::read(std::string_view topic, uint64_t after, size_t max) {
  MutexLock lock(mu_);
  auto stmt = statement(read_,
                        "SELECT seq, payload, published_ms FROM updates WHERE topic = ?1 AND seq > ?2 "
                        "AND published_ms >= ?4 ORDER BY seq LIMIT ?3");
  if (!stmt.ok()) return stmt.error();
  StatementUse use(**stmt);
  auto capped = std::min<uint64_t>(after, INT64_MAX);
  if (auto b = use->bindAll(topic, static_cast<int64_t>(capped),
                            static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)), oldestKeptMs(unixMillis()));
      !b.ok()) {
    return b.error();
  }
  std::vector<Update> out;
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return row.error();
    if (*row == Statement::Step::kDone) break;
    out.push_back(Update{std::string(topic), static_cast<uint64_t>(use->columnInt(0)), use->columnBlob(1),
                         use->columnInt(2)});
  }
  return out;
}

Result<TopicBounds> SqliteStreamStore::boundsLocked(std::string_view topic, int64_t nowMs) {
  auto stmt = statement(bounds_,
                        "SELECT t.last_seq, (SELECT MIN(seq) FROM updates u WHERE u.topic = t.name AND "
                        "u.published_ms >= ?2) FROM topics t WHERE t.name = ?1");
  if (!stmt.ok()) return stmt.error();
  StatementUse use(**stmt);
  if (auto b = use->bindAll(topic, oldestKeptMs(nowMs)); !b.ok()) return b.error();
  auto row = use->step();
  if (!row.ok()) return row.error();
  TopicBounds b;
  if (*row == Statement::Step::kRow) {
    b.last = static_cast<uint64_t>(use->columnInt(0));
    b.first = use->columnIsNull(1) ? b.last + 1 : static_cast<uint64_t>(use->columnInt(1));
  }
  return b;
}

Result<TopicBounds> SqliteStreamStore::bounds(std::string_view topic) {
  MutexLock lock(mu_);
  return boundsLocked(topic, unixMillis());
}

Result<std::vector<TopicInfo>> SqliteStreamStore::topics() {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("SELECT name FROM topics ORDER BY name");
  if (!stmt.ok()) return stmt.error();
  std::vector<std::string> names;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (*row == Statement::Step::kDone) break;
    names.push_back(stmt->columnText(0));
  }
  std::vector<TopicInfo> out;
  int64_t now = unixMillis();
  for (auto& name : names) {
    auto b = boundsLocked(name, now);
    if (!b.ok()) return b.error();
    out.push_back(TopicInfo{std::move(name), *b});
  }
  return out;
}

Result<std::unique_ptr<TopicLog::Feed>> SqliteStreamStore::follow(std::string_view topic, OnUpdate onUpdate) {
  if (!isTopicName(topic)) return Error(ErrorCode::kInvalidArgument, "not a topic name");
  MutexLock lock(mu_);
  followers_.push_back(Follower{std::string(topic), std::move(onUpdate)});
  return std::unique_ptr<Feed>(new FeedImpl(*this, std::prev(followers_.end())));
}

Result<void> SqliteStreamStore::put(const App& app) {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("INSERT INTO apps (name, spec) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET spec = ?2");
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(app.name, appJson(app)); !b.ok()) return b.error();
  return stmt->run();
}

Result<std::optional<App>> SqliteStreamStore::get(std::string_view name) {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("SELECT spec FROM apps WHERE name = ?1");
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(name); !b.ok()) return b.error();
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (*row == Statement::Step::kDone) return std::optional<App>{};
  auto app = parseAppSpec(name, stmt->columnText(0));
  if (!app.ok()) return app.error();
  return std::optional<App>{std::move(*app)};
}

Result<std::vector<App>> SqliteStreamStore::list() {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("SELECT name, spec FROM apps ORDER BY name");
  if (!stmt.ok()) return stmt.error();
  std::vector<App> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (*row == Statement::Step::kDone) break;
    auto app = parseAppSpec(stmt->columnText(0), stmt->columnText(1));
    if (app.ok()) out.push_back(std::move(*app));
  }
  return out;
}

Result<bool> SqliteStreamStore::remove(std::string_view name) {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("DELETE FROM apps WHERE name = ?1");
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(name); !b.ok()) return b.error();
  if (auto ok = stmt->run(); !ok.ok()) return ok.error();
  return db_->changes() > 0;
}

}  // namespace tern::stream
