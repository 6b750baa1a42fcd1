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

void SystemClock::waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            int64_t deadlineMs) {
  // Bounded, so a far deadline never overflows the clock's nanosecond time_point, and a
  // caller notices a system time that was set backwards within the hour.
  int64_t until = std::min(deadlineMs, nowMs() + kMaxSystemWaitMs);
  cv.wait_until(lock, std::chrono::system_clock::time_point(std::chrono::milliseconds(until)));
}

int64_t ManualClock::nowMs() const {
  std::lock_guard guard(mu_);
  return now_;
}

void ManualClock::waitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            int64_t deadlineMs) {
  Waiter self{lock.mutex(), &cv, deadlineMs};
  {
    std::lock_guard guard(mu_);
    if (now_ >= deadlineMs) return;
    sleepers_.push_back(&self);
  }
  sleepersChanged_.notify_all();
  // setMs() takes `lock`'s mutex before notifying, so its wake cannot fall between the
  // registration above and this wait.
  cv.wait(lock);
  // `self` lives on this stack: leave only once no setMs() can still reach it. The caller's
  // mutex is released meanwhile, because setMs() takes it.
  lock.unlock();
  {
    std::unique_lock guard(mu_);
    std::erase(sleepers_, &self);
    sleepersChanged_.wait(guard, [&] { return self.pendingWakes == 0; });
  }
  lock.lock();
}

void ManualClock::setMs(int64_t ms) {
  std::vector<Waiter*> woken;
  {
    std::lock_guard guard(mu_);
    now_ = ms;
    woken = takeSleepers();
  }
  wake(woken);
}

void ManualClock::advanceMs(int64_t deltaMs) {
  std::vector<Waiter*> woken;
  {
    std::lock_guard guard(mu_);
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
    { std::lock_guard waiterGuard(*w->mutex); }
    w->cv->notify_all();
    {
      std::lock_guard guard(mu_);
      --w->pendingWakes;  // from here on `w` may be gone
    }
    sleepersChanged_.notify_all();
  }
}

bool ManualClock::awaitSleepers(size_t count, std::chrono::milliseconds limit) {
  std::unique_lock guard(mu_);
  return sleepersChanged_.wait_for(guard, limit, [&] {
    return static_cast<size_t>(std::count_if(sleepers_.begin(), sleepers_.end(), [&](Waiter* w) {
             return w->deadlineMs > now_;
           })) >= count;
  });
}

}  // namespace tern
