// Compiled, not run, by the thread_safety_analysis_* tests (clang only): with
// TERN_VIOLATION defined, each function below breaks one locking rule and clang's
// -Werror=thread-safety must refuse the file; without it, the file must compile, so the
// refusal cannot come from anything else.
#include "util/thread_annotations.h"

namespace {

class Counter {
 public:
  void add() TERN_EXCLUDES(mu_) {
    tern::MutexLock lock(mu_);
    addLocked();
  }
#ifdef TERN_VIOLATION
  // A guarded member read without the lock.
  int unlockedRead() { return value_; }
  // A function that requires the lock called without it.
  void unlockedCall() { addLocked(); }
  // A function that takes the lock called with it held (self-deadlock).
  void relock() TERN_REQUIRES(mu_) { add(); }
#endif

 private:
  void addLocked() TERN_REQUIRES(mu_) { ++value_; }

  tern::Mutex mu_;
  int value_ TERN_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter c;
  c.add();
  return 0;
}
