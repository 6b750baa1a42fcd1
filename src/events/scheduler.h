#pragma once
// Fires time triggers. Each registered schedule has an id (the node uses one per function
// trigger) and a callback that the scheduler thread calls with the scheduled time of each
// run. What a run was is remembered in a small SQLite database, so after a restart the
// scheduler knows which runs the node missed while it was down.
//
// Contract with the callback:
//  - It runs on the scheduler thread, without the scheduler's lock, and must be short:
//    the node enqueues a durable job and returns. A slow callback delays every schedule.
//  - It is called at least once per run, not exactly once. The run is recorded after the
//    callback returns, so a crash in between (or a lost write, see RunLog) lets a
//    MissedRuns::kRunOnce scheduler fire the same scheduled time again after a restart.
//    The callback makes that harmless by using the scheduled time as an idempotency key
//    (the node enqueues at most one job per id and scheduled time).
//  - It may call add() and remove(), including for its own id. It must not call stop().
//    It should not throw; an exception is caught and reported through onError.
//
// Timing rules:
//  - A schedule added for the first time (no record in the database, or a record of a
//    different spec) starts from now: its first run is the next scheduled time.
//  - Runs missed while no Scheduler had the id registered (the node was down) are handled
//    by SchedulerOptions::missedRuns when the id is added again.
//  - Each wake-up fires a due schedule once, with the latest scheduled time that is due:
//    when the clock jumps forward by hours, an every:10s schedule fires once, not 360
//    times.
//  - Times are wall-clock (Clock::nowMs); cron expressions are UTC.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/clock.h"
#include "events/run_log.h"
#include "events/schedule.h"
#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern::events {

// What happens to runs whose time passed while the node was down.
enum class MissedRuns : uint8_t {
  kSkip,     // forget them; the next run is the next future time
  kRunOnce,  // fire once, at start, for the most recent missed time; then continue
};

struct SchedulerOptions {
  // The run database: a file path (the node uses <data>/schedules.db), or ":memory:" for
  // a scheduler that remembers nothing across restarts.
  std::string databasePath = ":memory:";
  MissedRuns missedRuns = MissedRuns::kSkip;
  // Told, on the scheduler thread, about failures that have no caller to return to: a run
  // that could not be recorded (it was fired), a callback that threw. May be empty; must
  // not call the scheduler.
  std::function<void(const Error&)> onError;
};

class Scheduler {
 public:
  using Fire = std::function<void(int64_t scheduledMs)>;

  // Opens the run database. Errors: kIo. `clock` must outlive the scheduler.
  static Result<std::unique_ptr<Scheduler>> open(SchedulerOptions options, Clock& clock);
  ~Scheduler();  // stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Registers `schedule` under `id`, replacing any schedule registered under it; schedules
  // may be added before start(). Replacing with the same spec keeps the pending run;
  // a different spec starts from now. Once add() returns, the old callback of `id` is not
  // running and will not be called again (unless add() is called from that callback).
  // Errors: kInvalidArgument (empty id or callback, id over 256 bytes), kUnavailable
  // (stopped), kIo (the database).
  Result<void> add(std::string id, Schedule schedule, Fire fire) TERN_EXCLUDES(mu_);

  // Unregisters `id` and forgets its record, so adding it later is a first add. Once
  // remove() returns, its callback is not running and will not be called again (unless
  // called from that callback). Errors: kNotFound (no such id registered), kIo.
  Result<void> remove(const std::string& id) TERN_EXCLUDES(mu_);

  // The time of the next run of `id`, if registered. A time at or before now is due.
  std::optional<int64_t> nextRun(std::string_view id) const TERN_EXCLUDES(mu_);
  // How many schedules are registered (the node's tern_schedules gauge).
  size_t size() const TERN_EXCLUDES(mu_);

  // Starts the scheduler thread. Calls after the first, and after stop(), do nothing.
  void start() TERN_EXCLUDES(mu_);
  // Refuses further add()s, lets a callback in progress return, fires nothing more and
  // joins the thread. Returns promptly when the thread is waiting. Idempotent.
  void stop() TERN_EXCLUDES(mu_);

 private:
  struct Entry {
    Schedule schedule;
    Fire fire;
    int64_t nextMs;  // next run; due once the clock reaches it
  };

  // One run being fired: what the callback needs and what recording it afterwards needs.
  struct Firing {
    std::string id;
    std::string spec;
    int64_t scheduledMs;
    Fire fire;
  };

  Scheduler(SchedulerOptions options, Clock& clock, std::unique_ptr<RunLog> log);
  void run() TERN_EXCLUDES(mu_);
  // The ids whose next run is due at `now`.
  std::vector<std::string> dueAt(int64_t now) const TERN_REQUIRES(mu_);
  // Starts firing `id` if it is still due (an earlier callback, run unlocked, may have
  // removed or replaced it): advances its next run and marks it as firing.
  std::optional<Firing> beginFiring(const std::string& id, int64_t now) TERN_REQUIRES(mu_);
  // Records the run (unless the callback removed the id or changed its schedule) and ends
  // the firing. Returns the failure to record it, if any.
  std::optional<Error> endFiring(const Firing& firing) TERN_REQUIRES(mu_);
  // The earliest next run of any schedule (kNever: none).
  int64_t nextDeadline() const TERN_REQUIRES(mu_);
  // Waits until no callback of `id` runs on another thread than the caller's.
  void awaitNotFiring(MutexLock& lock, const std::string& id) TERN_REQUIRES(mu_);
  void reportError(const Error& error) TERN_EXCLUDES(mu_);

  const SchedulerOptions options_;
  Clock& clock_;

  mutable Mutex mu_;
  std::condition_variable_any wake_;      // entries changed, or stop (waited on in Clock)
  std::condition_variable firingEnded_;   // firing_ was cleared
  const std::unique_ptr<RunLog> log_ TERN_PT_GUARDED_BY(mu_);
  std::map<std::string, Entry, std::less<>> entries_ TERN_GUARDED_BY(mu_);
  std::optional<std::string> firing_ TERN_GUARDED_BY(mu_);  // id whose callback runs now
  bool started_ TERN_GUARDED_BY(mu_) = false;
  bool stopping_ TERN_GUARDED_BY(mu_) = false;
  std::thread thread_ TERN_GUARDED_BY(mu_);
  std::thread::id threadId_ TERN_GUARDED_BY(mu_);  // of thread_, readable while stop() joins it
};

}  // namespace tern::events
