#include "exec/executor.h"

#include <vector>

namespace tern::exec {

Executor::Executor(Options options) : options_(options) {}

bool Executor::canRun(const AdmissionState& fn) const {
  uint32_t limit = fn.limit.load(std::memory_order_relaxed);
  return running_ < options_.slots && (limit == 0 || fn.running < limit);
}

Admission Executor::admit(AdmissionState& fn, std::function<void()> start) {
  std::lock_guard lock(mu_);
  Admission now = takeSlotLocked(fn);
  if (now != Admission::kQueued) return now;
  if (queue_.size() >= options_.queueLimit) {
    ++rejected_;
    return Admission::kRejected;
  }
  queue_.push_back(Waiting{&fn, std::move(start)});
  return Admission::kQueued;
}

Admission Executor::tryRunNow(AdmissionState& fn) {
  std::lock_guard lock(mu_);
  return takeSlotLocked(fn);
}

Admission Executor::takeSlotLocked(AdmissionState& fn) {
  if (stopping_) return Admission::kStopped;
  // Waiting requests go first: a newcomer may not overtake the queue.
  if (queue_.empty() && canRun(fn)) {
    ++running_;
    ++fn.running;
    return Admission::kRunNow;
  }
  return Admission::kQueued;
}

void Executor::finish(AdmissionState& fn) {
  std::vector<std::function<void()>> starts;
  {
    std::lock_guard lock(mu_);
    --running_;
    --fn.running;
    // Start, in order, every waiting request that can now run (the first may be blocked by
    // its function's own limit while a later one can go).
    for (auto it = queue_.begin(); it != queue_.end() && running_ < options_.slots;) {
      if (canRun(*it->fn)) {
        ++running_;
        ++it->fn->running;
        starts.push_back(std::move(it->start));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (running_ == 0 && queue_.empty()) drained_.notify_all();
  }
  for (auto& s : starts) s();
}

bool Executor::stop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  stopping_ = true;
  return drained_.wait_for(lock, timeout, [this] { return running_ == 0 && queue_.empty(); });
}

Executor::Stats Executor::stats() const {
  std::lock_guard lock(mu_);
  return Stats{options_.slots, running_, static_cast<uint32_t>(queue_.size()), rejected_};
}

}  // namespace tern::exec
