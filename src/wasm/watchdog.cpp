#include "wasm/watchdog.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>

namespace tern::wasm {

namespace {
constexpr auto kTick = std::chrono::milliseconds(1);
// Ticks without any running invocation before the watchdog sleeps.
constexpr int kIdleTicksBeforeSleep = 200;

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

void Watchdog::wakeForDeadline() {
  // Pairs with the fence in run() before it sleeps: either it sees this deadline, or this
  // sees it sleeping and wakes it (under its lock, so the wake cannot fall between its
  // check and its wait).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) {
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
  if (deadlineNs) wakeForDeadline();
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
  if (deadline) wakeForDeadline();
  return outer;
}

void Watchdog::leaveNested(ThreadState& ts, const Outer& outer) {
  publish(ts, outer.epoch, outer.deadlineNs);
  // A preemption recorded for the nested call is void; one due to the caller's deadline is
  // sent again on the next tick.
  ts.preemptPending = 0;
}

bool Watchdog::scanLocked(int64_t nowNs) {
  bool anyDeadline = false;
  for (ThreadState* ts = threads_; ts; ts = ts->next) {
    uint64_t epoch = 0;
    int64_t deadline = 0;
    if (!readPublished(*ts, epoch, deadline)) {
      anyDeadline = true;  // changing now: look again on the next tick
      continue;
    }
    if (!deadline) continue;
    anyDeadline = true;
    if (nowNs >= deadline) {
      ts->killEpoch.store(epoch, std::memory_order_relaxed);
      pthread_kill(ts->thread, preemptSignal());
    }
  }
  return anyDeadline;
}

void Watchdog::run() {
  int idleTicks = 0;
  MutexLock lock(mu_);
  while (!stop_) {
    bool anyDeadline = scanLocked(monotonicNs());
    idleTicks = anyDeadline ? 0 : idleTicks + 1;
    if (idleTicks >= kIdleTicksBeforeSleep) {
      sleeping_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      lock.wait(cv_, [this]() TERN_REQUIRES(mu_) {
        if (stop_) return true;
        for (ThreadState* ts = threads_; ts; ts = ts->next) {
          uint64_t epoch = 0;
          int64_t deadline = 0;
          if (!readPublished(*ts, epoch, deadline) || deadline) return true;
        }
        return false;
      });
      sleeping_.store(false, std::memory_order_relaxed);
      idleTicks = 0;
    } else {
      lock.waitFor(cv_, kTick, [this]() TERN_REQUIRES(mu_) { return stop_; });
    }
  }
}

}  // namespace tern::wasm
