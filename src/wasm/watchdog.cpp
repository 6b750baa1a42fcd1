#include "wasm/watchdog.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>

namespace tern::wasm {

namespace {
constexpr auto kTick = std::chrono::milliseconds(1);
// Ticks without any running invocation before the watchdog sleeps.
constexpr int kIdleTicksBeforeSleep = 200;
}  // namespace

Watchdog::Watchdog() : thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::begin(ThreadState& ts, int64_t deadlineNs) {
  MutexLock lock(mu_);
  ts.epoch = ++ts.lastEpoch;
  ts.deadlineNs = deadlineNs;
  ts.preemptPending = 0;
  ts.prev = nullptr;
  ts.next = active_;
  if (active_) active_->prev = &ts;
  active_ = &ts;
  if (sleeping_ && deadlineNs) cv_.notify_one();
}

void Watchdog::end(ThreadState& ts) {
  MutexLock lock(mu_);
  if (ts.prev) {
    ts.prev->next = ts.next;
  } else if (active_ == &ts) {
    active_ = ts.next;
  }
  if (ts.next) ts.next->prev = ts.prev;
  ts.prev = ts.next = nullptr;
  ts.deadlineNs = 0;
}

Watchdog::Outer Watchdog::enterNested(ThreadState& ts, int64_t deadlineNs) {
  MutexLock lock(mu_);
  Outer outer{ts.epoch, ts.deadlineNs};
  ts.epoch = ++ts.lastEpoch;
  if (deadlineNs && (!outer.deadlineNs || deadlineNs < outer.deadlineNs)) {
    ts.deadlineNs = deadlineNs;
  }
  if (sleeping_ && ts.deadlineNs) cv_.notify_one();
  return outer;
}

void Watchdog::leaveNested(ThreadState& ts, const Outer& outer) {
  MutexLock lock(mu_);
  ts.epoch = outer.epoch;
  ts.deadlineNs = outer.deadlineNs;
  // A preemption recorded for the nested call is void; one due to the caller's deadline is
  // sent again on the next tick.
  ts.preemptPending = 0;
}

void Watchdog::run() {
  int idleTicks = 0;
  MutexLock lock(mu_);
  while (!stop_) {
    bool anyDeadline = false;
    int64_t now = monotonicNs();
    for (ThreadState* ts = active_; ts; ts = ts->next) {
      if (!ts->deadlineNs) continue;
      anyDeadline = true;
      if (now >= ts->deadlineNs) {
        ts->killEpoch.store(ts->epoch, std::memory_order_relaxed);
        pthread_kill(ts->thread, preemptSignal());
      }
    }
    idleTicks = anyDeadline ? 0 : idleTicks + 1;
    if (idleTicks >= kIdleTicksBeforeSleep) {
      sleeping_ = true;
      lock.wait(cv_, [this]() TERN_REQUIRES(mu_) {
        if (stop_) return true;
        for (ThreadState* ts = active_; ts; ts = ts->next) {
          if (ts->deadlineNs) return true;
        }
        return false;
      });
      sleeping_ = false;
      idleTicks = 0;
    } else {
      lock.waitFor(cv_, kTick, [this]() TERN_REQUIRES(mu_) { return stop_; });
    }
  }
}

}  // namespace tern::wasm
