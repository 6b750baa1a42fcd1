#include "wasm/watchdog.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <climits>

namespace tern::wasm {

namespace {
// How often a preemption is signalled again while its invocation has not stopped.
constexpr int64_t kTickNs = 1'000'000;
constexpr int64_t kNever = INT64_MAX;

// Serialises registering, unregistering and destroying watchdogs: a thread's registration
// may outlive neither the thread nor the watchdog, and those end on different threads.
// Taken once per thread and watchdog, never on the invocation path; before any watchdog's
// own lock. Never destroyed, so a thread exiting during process exit can still take it.
Mutex& registrationMutex() {
  static Mutex* mu = new Mutex;
  return *mu;
}

// A consistent (epoch, deadline) of a thread, or false while the thread changes them.
bool readPublished(const ThreadState& ts, uint64_t& epoch, int64_t& deadlineNs) {
  uint64_t before = ts.watchSeq.load(std::memory_order_acquire);
  if (before & 1) return false;
  epoch = ts.epoch.load(std::memory_order_relaxed);
  deadlineNs = ts.deadlineNs.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  return ts.watchSeq.load(std::memory_order_relaxed) == before;
}
}  // namespace

Watchdog::Watchdog() : thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    MutexLock registration(registrationMutex());
    MutexLock lock(mu_);
    stop_ = true;
    for (ThreadState* ts = threads_; ts;) {
      ThreadState* next = ts->next;
      ts->prev = ts->next = nullptr;
      ts->watchdog.store(nullptr, std::memory_order_relaxed);
      ts = next;
    }
    threads_ = nullptr;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::publish(ThreadState& ts, uint64_t epoch, int64_t deadlineNs) {
  // One writer (the thread itself): a sequence count, odd while the pair changes.
  uint64_t seq = ts.watchSeq.load(std::memory_order_relaxed);
  ts.watchSeq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  ts.epoch.store(epoch, std::memory_order_relaxed);
  ts.deadlineNs.store(deadlineNs, std::memory_order_relaxed);
  ts.watchSeq.store(seq + 2, std::memory_order_release);
}

void Watchdog::wakeForDeadline(int64_t deadlineNs) {
  // Pairs with the fence in run() before it waits: either it sees this deadline, or this
  // sees the time it means to wake at and, if that is later, wakes it (under its lock, so
  // the wake cannot fall between its check and its wait).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (deadlineNs < wakeAtNs_.load(std::memory_order_relaxed)) {
    MutexLock lock(mu_);
    cv_.notify_one();
  }
}

void Watchdog::registerThread(ThreadState& ts) {
  MutexLock registration(registrationMutex());
  if (Watchdog* old = ts.watchdog.load(std::memory_order_relaxed)) {
    MutexLock lock(old->mu_);
    old->unlinkLocked(ts);
  }
  MutexLock lock(mu_);
  ts.prev = nullptr;
  ts.next = threads_;
  if (threads_) threads_->prev = &ts;
  threads_ = &ts;
  ts.watchdog.store(this, std::memory_order_relaxed);
}

void Watchdog::unlinkLocked(ThreadState& ts) {
  if (ts.prev) {
    ts.prev->next = ts.next;
  } else if (threads_ == &ts) {
    threads_ = ts.next;
  }
  if (ts.next) ts.next->prev = ts.prev;
  ts.prev = ts.next = nullptr;
}

void Watchdog::forgetThread(ThreadState& ts) {
  MutexLock registration(registrationMutex());
  Watchdog* w = ts.watchdog.load(std::memory_order_relaxed);
  if (!w) return;
  MutexLock lock(w->mu_);
  w->unlinkLocked(ts);
  ts.watchdog.store(nullptr, std::memory_order_relaxed);
}

void Watchdog::begin(ThreadState& ts, int64_t deadlineNs) {
  if (ts.watchdog.load(std::memory_order_relaxed) != this) registerThread(ts);
  ts.preemptPending = 0;
  publish(ts, ++ts.lastEpoch, deadlineNs);
  if (deadlineNs) wakeForDeadline(deadlineNs);
}

void Watchdog::end(ThreadState& ts) {
  publish(ts, ts.epoch.load(std::memory_order_relaxed), 0);
}

Watchdog::Outer Watchdog::enterNested(ThreadState& ts, int64_t deadlineNs) {
  Outer outer{ts.epoch.load(std::memory_order_relaxed),
              ts.deadlineNs.load(std::memory_order_relaxed)};
  int64_t deadline = outer.deadlineNs;
  if (deadlineNs && (!deadline || deadlineNs < deadline)) deadline = deadlineNs;
  publish(ts, ++ts.lastEpoch, deadline);
  if (deadline) wakeForDeadline(deadline);
  return outer;
}

void Watchdog::leaveNested(ThreadState& ts, const Outer& outer) {
  publish(ts, outer.epoch, outer.deadlineNs);
  // The watchdog may have skipped this thread while it changed its pair (the scan below),
  // so the caller's deadline is checked against its wake like any other.
  if (outer.deadlineNs) wakeForDeadline(outer.deadlineNs);
  // A preemption recorded for the nested call is void; one due to the caller's deadline is
  // sent again on the next tick.
  ts.preemptPending = 0;
}

int64_t Watchdog::scanLocked(int64_t nowNs) {
  int64_t next = kNever;
  for (ThreadState* ts = threads_; ts; ts = ts->next) {
    uint64_t epoch = 0;
    int64_t deadline = 0;
    // A thread changing its pair is skipped: every change that sets a deadline is followed
    // by wakeForDeadline, which sees the wake time that run() publishes after this scan
    // (the fences there and in wakeForDeadline), so it wakes the watchdog if it must.
    if (!readPublished(*ts, epoch, deadline) || !deadline) continue;
    lastDeadlineNs_ = nowNs;
    if (nowNs >= deadline) {
      ts->killEpoch.store(epoch, std::memory_order_relaxed);
      pthread_kill(ts->thread, preemptSignal());
      // Signalled again on each tick until the invocation stops (the signal may find it in
      // a host function, which defers the stop).
      next = std::min(next, nowNs + kTickNs);
    } else {
      next = std::min(next, deadline);
    }
  }
  if (next == kNever && nowNs - lastDeadlineNs_ < kLingerNs) next = lastDeadlineNs_ + kLingerNs;
  return next;
}

bool Watchdog::earlierDeadlineLocked(int64_t wakeAtNs) const {
  for (const ThreadState* ts = threads_; ts; ts = ts->next) {
    uint64_t epoch = 0;
    int64_t deadline = 0;
    // A thread changing its pair checks the wake time itself (scanLocked).
    if (readPublished(*ts, epoch, deadline) && deadline && deadline < wakeAtNs) return true;
  }
  return false;
}

void Watchdog::run() {
  MutexLock lock(mu_);
  while (!stop_) {
    int64_t now = monotonicNs();
    int64_t next = scanLocked(now);
    scans_.fetch_add(1, std::memory_order_relaxed);
    // Published before the last look at the threads below: an invocation that publishes a
    // deadline earlier than `next` from now on wakes the watchdog (wakeForDeadline).
    wakeAtNs_.store(next, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    auto woken = [this, next]() TERN_REQUIRES(mu_) {
      return stop_ || earlierDeadlineLocked(next);
    };
    bool early = false;  // woken by a deadline earlier than `next` (or a stop)
    if (next == kNever) {
      lock.wait(cv_, woken);
      early = true;
    } else if (next - now <= kTickNs) {
      // A tick (a preemption to signal again): only a stop ends it early.
      lock.waitFor(cv_, std::chrono::nanoseconds(next - now),
                   [this]() TERN_REQUIRES(mu_) { return stop_; });
    } else {
      early = lock.waitUntil(
          cv_, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next)), woken);
    }
    // The deadline that woke it counts as seen, even if its invocation ends before the
    // scan: the watchdog then lingers on its timer instead of waiting to be woken again.
    if (early) lastDeadlineNs_ = monotonicNs();
  }
}

}  // namespace tern::wasm
