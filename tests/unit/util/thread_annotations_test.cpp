#include "util/thread_annotations.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "util/work_queue.h"

namespace tern {
namespace {

// A hand-off between threads through MutexLock::wait: the predicate runs with the mutex
// held, and the waiter sees every value the producer wrote before notifying.
struct Mailbox {
  Mutex mu;
  std::condition_variable cv;
  std::vector<int> items TERN_GUARDED_BY(mu);
  bool closed TERN_GUARDED_BY(mu) = false;

  void put(int v) TERN_EXCLUDES(mu) {
    {
      MutexLock lock(mu);
      items.push_back(v);
    }
    cv.notify_all();
  }
  void close() TERN_EXCLUDES(mu) {
    {
      MutexLock lock(mu);
      closed = true;
    }
    cv.notify_all();
  }
  // Everything put before close().
  std::vector<int> drain() TERN_EXCLUDES(mu) {
    MutexLock lock(mu);
    lock.wait(cv, [this]() TERN_REQUIRES(mu) { return closed; });
    return items;
  }
};

TEST(ThreadAnnotationsTest, WaitReturnsWithTheMutexHeldAndThePredicateTrue) {
  Mailbox box;
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) box.put(i);
    box.close();
  });
  std::vector<int> got = box.drain();
  producer.join();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
}

TEST(ThreadAnnotationsTest, UnlockLetsOtherThreadsInAndLockTakesItBack) {
  Mutex mu;
  MutexLock lock(mu);
  std::thread other([&] { EXPECT_FALSE(mu.try_lock()); });
  other.join();
  lock.unlock();
  std::thread free([&] {
    if (mu.try_lock()) {
      mu.unlock();
    } else {
      ADD_FAILURE() << "the mutex is still held after unlock()";
    }
  });
  free.join();
  lock.lock();
  std::thread again([&] { EXPECT_FALSE(mu.try_lock()); });
  again.join();
}

TEST(ThreadAnnotationsTest, TimedWaitsReportTimeoutAndSuccess) {
  Mutex mu;
  std::condition_variable cv;
  bool ready = false;  // under mu
  MutexLock lock(mu);
  // Nobody sets `ready`: the wait ends at its timeout with the predicate still false.
  EXPECT_FALSE(lock.waitFor(cv, std::chrono::milliseconds(1), [&] { return ready; }));
  std::thread setter([&] {
    {
      MutexLock l(mu);
      ready = true;
    }
    cv.notify_all();
  });
  EXPECT_TRUE(lock.waitUntil(cv, std::chrono::steady_clock::now() + std::chrono::hours(1),
                             [&] { return ready; }));
  lock.unlock();
  setter.join();
}

TEST(ThreadAnnotationsTest, WorkQueueRunsEveryPostedTaskBeforeStopReturns) {
  Mutex mu;
  int ran = 0;  // under mu
  {
    WorkQueue q(2);
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(q.post([&] {
        MutexLock lock(mu);
        ++ran;
      }));
    }
    q.stop();
    EXPECT_FALSE(q.post([] {}));
  }
  MutexLock lock(mu);
  EXPECT_EQ(ran, 1000);
}

}  // namespace
}  // namespace tern
