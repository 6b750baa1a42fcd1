#include "events/scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "util/quote.h"

namespace tern::events {

namespace {
constexpr size_t kMaxIdBytes = 256;
}  // namespace

Result<std::unique_ptr<Scheduler>> Scheduler::open(SchedulerOptions options, Clock& clock) {
  auto log = RunLog::open(options.databasePath);
  if (!log) return log.error();
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(options), clock, std::move(*log)));
}

Scheduler::Scheduler(SchedulerOptions options, Clock& clock, std::unique_ptr<RunLog> log)
    : options_(std::move(options)), clock_(clock), log_(std::move(log)) {}

Scheduler::~Scheduler() { stop(); }

Result<void> Scheduler::add(std::string id, Schedule schedule, Fire fire) {
  if (id.empty()) return Error(ErrorCode::kInvalidArgument, "schedule id is empty");
  if (id.size() > kMaxIdBytes) {
    return Error(ErrorCode::kInvalidArgument, "schedule id " + quoteUntrusted(id) +
                                                  " is longer than " +
                                                  std::to_string(kMaxIdBytes) + " bytes");
  }
  if (!fire) {
    return Error(ErrorCode::kInvalidArgument,
                 "schedule " + quoteUntrusted(id) + " has no callback");
  }
  MutexLock lock(mu_);
  awaitNotFiring(lock, id);
  if (stopping_) return Error(ErrorCode::kUnavailable, "the scheduler is stopped");

  const int64_t now = clock_.nowMs();
  const std::string spec = schedule.spec();
  auto existing = entries_.find(id);
  if (existing != entries_.end() && existing->second.schedule == schedule) {
    existing->second.fire = std::move(fire);
    return {};
  }

  int64_t next = schedule.nextAfter(now);
  if (existing == entries_.end()) {
    auto record = log_->find(id);
    if (!record) return record.error();
    if (*record && (*record)->spec == spec) {
      // Registered before, by this or an earlier process: runs after lastMs were missed.
      int64_t lastMs = (*record)->lastMs;
      next = schedule.nextAfter(std::max(now, lastMs));
      std::optional<int64_t> missed = schedule.latestIn(lastMs, now);
      if (options_.missedRuns == MissedRuns::kRunOnce && missed) {
        next = *missed;  // due: the scheduler thread fires it first
      } else if (missed) {
        if (auto r = log_->put(id, RunRecord{spec, now}); !r) return r.error();
      }
    } else if (auto r = log_->put(id, RunRecord{spec, now}); !r) {
      return r.error();
    }
  } else if (auto r = log_->put(id, RunRecord{spec, now}); !r) {
    return r.error();
  }

  Entry entry{std::move(schedule), std::move(fire), next};
  if (existing != entries_.end()) {
    existing->second = std::move(entry);
  } else {
    entries_.emplace(std::move(id), std::move(entry));
  }
  wake_.notify_all();
  return {};
}

Result<void> Scheduler::remove(const std::string& id) {
  MutexLock lock(mu_);
  awaitNotFiring(lock, id);
  bool registered = entries_.erase(id) > 0;
  if (registered) wake_.notify_all();
  if (auto r = log_->erase(id); !r) return r.error();
  if (!registered) {
    return Error(ErrorCode::kNotFound, "no schedule " + quoteUntrusted(id) + " is registered");
  }
  return {};
}

std::optional<int64_t> Scheduler::nextRun(std::string_view id) const {
  MutexLock lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.nextMs;
}

size_t Scheduler::size() const {
  MutexLock lock(mu_);
  return entries_.size();
}

void Scheduler::start() {
  MutexLock lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
  threadId_ = thread_.get_id();
}

void Scheduler::stop() {
  std::thread thread;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    // From a callback the thread cannot join itself; it leaves its loop when the callback
    // returns, and the destructor joins it.
    if (threadId_ == std::this_thread::get_id()) return;
    thread = std::move(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

void Scheduler::run() {
  MutexLock lock(mu_);
  while (!stopping_) {
    const int64_t now = clock_.nowMs();
    for (const std::string& id : dueAt(now)) {
      if (stopping_) break;
      std::optional<Firing> firing = beginFiring(id, now);
      if (!firing) continue;
      lock.unlock();
      std::optional<Error> failure;
      try {
        firing->fire(firing->scheduledMs);
      } catch (const std::exception& e) {
        failure = Error(ErrorCode::kInternal,
                        "schedule " + quoteUntrusted(id) + ": callback threw: " + e.what());
      } catch (...) {
        failure = Error(ErrorCode::kInternal, "schedule " + quoteUntrusted(id) +
                                                  ": callback threw a non-standard exception");
      }
      lock.lock();
      if (std::optional<Error> unrecorded = endFiring(*firing)) failure = std::move(unrecorded);
      if (failure) {
        lock.unlock();
        reportError(*failure);
        lock.lock();
      }
    }
    if (stopping_) break;
    clock_.waitUntil(mu_, wake_, nextDeadline());
  }
}

std::vector<std::string> Scheduler::dueAt(int64_t now) const {
  std::vector<std::string> due;
  for (const auto& [id, entry] : entries_) {
    if (entry.nextMs <= now) due.push_back(id);
  }
  return due;
}

std::optional<Scheduler::Firing> Scheduler::beginFiring(const std::string& id, int64_t now) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.nextMs > now) return std::nullopt;
  Entry& entry = it->second;
  int64_t scheduled = entry.schedule.latestIn(entry.nextMs - 1, now).value_or(entry.nextMs);
  entry.nextMs = entry.schedule.nextAfter(std::max(now, scheduled));
  firing_ = id;
  return Firing{id, entry.schedule.spec(), scheduled, entry.fire};
}

std::optional<Error> Scheduler::endFiring(const Firing& firing) {
  std::optional<Error> failure;
  // The run is recorded only after its callback returned: see the contract in the header.
  // Not when the callback removed the id or gave it another schedule.
  auto after = entries_.find(firing.id);
  if (after != entries_.end() && after->second.schedule.spec() == firing.spec) {
    if (auto r = log_->put(firing.id, RunRecord{firing.spec, firing.scheduledMs}); !r) {
      failure = r.error();
    }
  }
  firing_.reset();
  firingEnded_.notify_all();
  return failure;
}

int64_t Scheduler::nextDeadline() const {
  int64_t deadline = kNever;
  for (const auto& [id, entry] : entries_) deadline = std::min(deadline, entry.nextMs);
  return deadline;
}

void Scheduler::awaitNotFiring(MutexLock& lock, const std::string& id) {
  if (threadId_ == std::this_thread::get_id()) return;
  lock.wait(firingEnded_, [&]() TERN_REQUIRES(mu_) { return firing_ != id; });
}

void Scheduler::reportError(const Error& error) {
  if (options_.onError) options_.onError(error);
}

}  // namespace tern::events
