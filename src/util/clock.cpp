#include "util/clock.h"

#include <algorithm>


namespace tern {

namespace {
constexpr int64_t kMaxSystemWaitMs = 60 * 60 * 1'000;
}  // namespace

int64_t SystemClock::nowMs() const {
  auto sinceEpoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::milliseconds>(sinceEpoch).count();
}

void SystemClock::waitUntil(Mutex& mu, std::condition_variable_any& cv, int64_t deadlineMs) {
  // Bounded, so a far deadline never overflows the clock's nanosecond time_point, and a
  // caller notices a system time that was set backwards within the hour.
  int64_t until = std::min(deadlineMs, nowMs() + kMaxSystemWaitMs);
  cv.wait_until(mu, std::chrono::system_clock::time_point(std::chrono::milliseconds(until)));
}

int64_t ManualClock::nowMs() const {
  MutexLock guard(mu_);
  return now_;
}

void ManualClock::waitUntil(Mutex& mu, std::condition_variable_any& cv, int64_t deadlineMs) {
  Waiter self{&mu, &cv, deadlineMs};
  {
    MutexLock guard(mu_);
    if (now_ >= deadlineMs) return;
    sleepers_.push_back(&self);
  }
  sleepersChanged_.notify_all();
  // setMs() takes `mu` before notifying, so its wake cannot fall between the registration
  // above and this wait.
  cv.wait(mu);
  // `self` lives on this stack: leave only once no setMs() can still reach it. The caller's
  // mutex is released meanwhile, because setMs() takes it.
  mu.unlock();
  {
    MutexLock guard(mu_);
    std::erase(sleepers_, &self);
    guard.wait(sleepersChanged_, [&]() TERN_REQUIRES(mu_) { return self.pendingWakes == 0; });
  }
  mu.lock();
}

void ManualClock::setMs(int64_t ms) {
  std::vector<Waiter*> woken;
  {
    MutexLock guard(mu_);
    now_ = ms;
    woken = takeSleepers();
  }
  wake(woken);
}

void ManualClock::advanceMs(int64_t deltaMs) {
  std::vector<Waiter*> woken;
  {
    MutexLock guard(mu_);
    now_ += deltaMs;
    woken = takeSleepers();
  }
  wake(woken);
}

std::vector<ManualClock::Waiter*> ManualClock::takeSleepers() {
  std::vector<Waiter*> woken;
  woken.swap(sleepers_);
  for (Waiter* w : woken) ++w->pendingWakes;
  return woken;
}

void ManualClock::wake(const std::vector<Waiter*>& woken) {
  for (Waiter* w : woken) {
    { MutexLock waiterGuard(*w->mutex); }
    w->cv->notify_all();
    {
      MutexLock guard(mu_);
      --w->pendingWakes;  // from here on `w` may be gone
    }
    sleepersChanged_.notify_all();
  }
}

bool ManualClock::awaitSleepers(size_t count, std::chrono::milliseconds limit) {
  MutexLock guard(mu_);
  return guard.waitFor(sleepersChanged_, limit, [&]() TERN_REQUIRES(mu_) {
    size_t asleep = 0;
    for (const Waiter* w : sleepers_) asleep += w->deadlineMs > now_ ? 1 : 0;
    return asleep >= count;
  });
}

}  // namespace tern
