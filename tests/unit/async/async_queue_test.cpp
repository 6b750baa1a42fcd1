// AsyncQueue against real functions (engine, executor, invoker) with a manual clock: the
// dispatcher's decisions about time (backoff, delivery retries, retention) are driven by
// advancing the clock, never by sleeping for them.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "async/async_queue.h"
#include "async/http_callback.h"
#include "async/job_json.h"
#include "async/job_store.h"
#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "store/deployments.h"
#include "store/registry.h"
#include "test_support.h"
#include "util/metrics.h"
#include "util/work_queue.h"

namespace tern::async {
namespace {

// Seconds a job may take to reach an awaited state (real time: the functions really run).
constexpr auto kPatience = std::chrono::seconds(60);

exec::Executor::Options executorOptions(uint32_t slots, uint32_t queueLimit) {
  exec::Executor::Options o;
  o.slots = slots;
  o.queueLimit = queueLimit;
  return o;
}

class AsyncQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reg = store::Registry::open(dir.path() / "registry");
    ASSERT_TRUE(reg.ok()) << reg.error().describe();
    registry = std::move(*reg);
    deployments = std::make_unique<store::Deployments>(*registry, engine, table);
    deploy("echo", test::examplesDir() / "echo.wasm", {});
    deploy("flaky", test::guestsDir() / "flaky.wasm", {"SUCCEED_AT=3"});
    deploy("never", test::guestsDir() / "flaky.wasm", {"SUCCEED_AT=1000"});
    options.file = dir.path() / "queue.db";
    options.retry = RetryPolicy{5, 1000, 60000};
    options.deliveryRetry = RetryPolicy{3, 100, 1000};
    options.pollInterval = std::chrono::milliseconds(5);
    options.purgeIntervalMs = 1000;
  }

  void deploy(const std::string& name, const std::filesystem::path& wasm,
              std::vector<std::string> env) {
    auto bytes = test::readFile(wasm);
    store::FunctionSettings s;
    s.env = std::move(env);
    auto v = deployments->deploy(name, bytes, s);
    ASSERT_TRUE(v.ok()) << v.error().describe();
  }

  std::unique_ptr<AsyncQueue> open() {
    auto q = AsyncQueue::open(options, AsyncDeps{invoker, table, metrics, clock, random});
    EXPECT_TRUE(q.ok()) << q.error().describe();
    return q.ok() ? std::move(*q) : nullptr;
  }

  static JobRequest job(std::string function, std::string body = "") {
    JobRequest r;
    r.function = std::move(function);
    r.body = std::move(body);
    return r;
  }

  // Polls the job's record until `done` holds for it; fails the test after kPatience.
  JobRecord waitFor(AsyncQueue& q, const std::string& id,
                    const std::function<bool(const JobRecord&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    JobRecord last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = q.get(id);
      EXPECT_TRUE(r.ok()) << r.error().describe();
      if (r.ok() && *r) {
        last = **r;
        if (done(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "job " << id << " never reached the awaited state; last: " << jobJson(last);
    return last;
  }

  // The queue counts an outcome after it has recorded it, so a test that has seen the record
  // waits for the metric as well.
  bool metricShows(const std::string& line) {
    return test::eventually([&] { return metrics.render().find(line) != std::string::npos; },
                            kPatience);
  }

  static bool finished(const JobRecord& r) {
    return r.status == JobStatus::kSucceeded || r.status == JobStatus::kFailed;
  }

  test::TempDir dir;
  MetricsRegistry metrics;
  wasm::Engine engine{test::engineConfig()};
  std::unique_ptr<store::Registry> registry;
  exec::FunctionTable table{metrics};
  exec::Executor executor{executorOptions(2, 16)};
  WorkQueue workers{2};
  exec::Invoker invoker{engine, executor, table,
                        [this](std::function<void()> t) { workers.post(std::move(t)); }};
  std::unique_ptr<store::Deployments> deployments;
  ManualClock clock;
  FixedRandom random{0.0};
  AsyncOptions options;
};

TEST(BackoffTest, DoublesFromTheBaseWithJitterInTheUpperHalfAndStopsAtTheCap) {
  struct Case {
    RetryPolicy policy;
    uint32_t failed;
    double unit;
    int64_t expected;
  };
  const Case cases[] = {
      {{5, 1000, 300000}, 1, 0.0, 500},      // d = 1000, lower half kept
      {{5, 1000, 300000}, 1, 0.5, 750},
      {{5, 1000, 300000}, 1, 0.999999, 999},
      {{5, 1000, 300000}, 2, 0.0, 1000},     // d = 2000
      {{5, 1000, 300000}, 4, 0.0, 4000},     // d = 8000
      {{5, 1000, 300000}, 9, 0.0, 128000},   // d = 256000
      {{5, 1000, 300000}, 10, 0.0, 150000},  // capped: d = 300000
      {{5, 1000, 300000}, 4000000000u, 0.5, 225000},  // no overflow for huge counts
      {{5, 1000, 300000}, 1, 7.0, 1000},     // out-of-range jitter is clamped
      {{5, 0, 300000}, 3, 0.5, 0},
      {{5, 5000, 2000}, 1, 0.0, 1000},       // base above the cap
  };
  for (const auto& c : cases) {
    EXPECT_EQ(backoffMs(c.policy, c.failed, c.unit), c.expected)
        << "base " << c.policy.baseMs << " cap " << c.policy.capMs << " failed " << c.failed
        << " unit " << c.unit;
  }
}

TEST_F(AsyncQueueTest, RunsAJobAndRecordsItsOutcome) {
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto a = q->enqueue(job("echo", "hello async"));
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_FALSE(a->duplicate);
  EXPECT_EQ(a->id.size(), 24u);
  auto r = waitFor(*q, a->id, finished);
  EXPECT_EQ(r.status, JobStatus::kSucceeded);
  EXPECT_EQ(r.output, "hello async");
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_EQ(r.errorCode, "");
  EXPECT_EQ(r.delivery, DeliveryState::kNone);
  EXPECT_EQ(r.finishedMs, clock.nowMs());
  EXPECT_TRUE(metricShows("tern_async_succeeded_total 1\n"));
  EXPECT_TRUE(metricShows("tern_async_queue_depth 0\n"));
}

TEST_F(AsyncQueueTest, RetriesWithBackoffOnTheClockAndTellsTheGuestItsAttempt) {
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto a = q->enqueue(job("flaky", "payload"));
  ASSERT_TRUE(a.ok()) << a.error().describe();
  int64_t t0 = clock.nowMs();
  auto r = waitFor(*q, a->id, [](const JobRecord& j) { return j.attempts == 1 &&
                                                              j.status == JobStatus::kQueued; });
  EXPECT_EQ(r.errorCode, "function_failed");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.nextAttemptMs, t0 + 500);  // base 1000, jitter 0: half
  clock.advanceMs(500);
  r = waitFor(*q, a->id, [](const JobRecord& j) { return j.attempts == 2 &&
                                                         j.status == JobStatus::kQueued; });
  EXPECT_EQ(r.nextAttemptMs, t0 + 500 + 1000);  // doubled
  EXPECT_EQ(r.output, "attempt 2 fails\n");
  clock.advanceMs(1000);
  r = waitFor(*q, a->id, finished);
  EXPECT_EQ(r.status, JobStatus::kSucceeded);
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_EQ(r.output, "attempt=3 id=" + a->id + " body=payload");
  EXPECT_EQ(r.errorCode, "function_failed");  // the last failed attempt stays recorded
  EXPECT_TRUE(metricShows("tern_async_retries_total 2\n"));
}

TEST_F(AsyncQueueTest, FailsAfterTheLastAttempt) {
  options.retry = RetryPolicy{2, 100, 1000};
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto a = q->enqueue(job("never"));
  ASSERT_TRUE(a.ok());
  waitFor(*q, a->id, [](const JobRecord& j) { return j.attempts == 1 &&
                                                     j.status == JobStatus::kQueued; });
  clock.advanceMs(100);
  auto r = waitFor(*q, a->id, finished);
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_EQ(r.maxAttempts, 2u);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.errorCode, "function_failed");
  EXPECT_NE(r.errorMessage.find("code 1"), std::string::npos) << r.errorMessage;
  EXPECT_TRUE(metricShows("tern_async_failed_total 1\n"));
}

TEST_F(AsyncQueueTest, IdempotencyKeyDeduplicatesPerFunction) {
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto keyed = [](std::string fn, std::string key) {
    JobRequest r = job(std::move(fn));
    r.idempotencyKey = std::move(key);
    return r;
  };
  auto a = q->enqueue(keyed("echo", "order-17"));
  auto b = q->enqueue(keyed("echo", "order-17"));
  auto c = q->enqueue(keyed("flaky", "order-17"));
  auto d = q->enqueue(keyed("echo", "order-18"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(b->id, a->id);
  EXPECT_TRUE(b->duplicate);
  EXPECT_NE(c->id, a->id);
  EXPECT_FALSE(c->duplicate);
  EXPECT_NE(d->id, a->id);
  EXPECT_NE(metrics.render().find("tern_async_enqueued_total 3\n"), std::string::npos);
}

TEST_F(AsyncQueueTest, RefusesBadRequestsWithClearErrors) {
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  struct Case {
    std::function<void(JobRequest&)> change;
    ErrorCode code;
    std::string mentions;
  };
  const Case cases[] = {
      {[](JobRequest& r) { r.function = "missing"; }, ErrorCode::kNotFound, "missing"},
      {[](JobRequest& r) { r.function = "Bad/Name"; }, ErrorCode::kInvalidArgument, "name"},
      {[](JobRequest& r) { r.idempotencyKey = std::string(129, 'k'); },
       ErrorCode::kInvalidArgument, "1..128"},
      {[](JobRequest& r) { r.idempotencyKey = "has space"; }, ErrorCode::kInvalidArgument,
       "printable"},
      {[](JobRequest& r) { r.idempotencyKey = "tab\there"; }, ErrorCode::kInvalidArgument,
       "printable"},
      {[](JobRequest& r) { r.callbackUrl = "ftp://example.com/"; },
       ErrorCode::kInvalidArgument, "unsupported scheme"},
      {[](JobRequest& r) { r.callbackUrl = "http://"; }, ErrorCode::kInvalidArgument, "host"},
      {[](JobRequest& r) { r.callbackUrl = "http://h:99999/"; }, ErrorCode::kInvalidArgument,
       "port"},
      {[](JobRequest& r) { r.callbackUrl = "http://h/a b"; }, ErrorCode::kInvalidArgument,
       "spaces"},
      {[](JobRequest& r) { r.env = {"NOEQUALS"}; }, ErrorCode::kInvalidArgument, "KEY=VALUE"},
  };
  for (const auto& c : cases) {
    JobRequest r = job("echo");
    c.change(r);
    auto a = q->enqueue(r);
    ASSERT_FALSE(a.ok()) << c.mentions;
    EXPECT_EQ(a.error().code(), c.code) << a.error().describe();
    EXPECT_NE(a.error().message().find(c.mentions), std::string::npos) << a.error().describe();
  }
  EXPECT_NE(metrics.render().find("tern_async_enqueued_total 0\n"), std::string::npos);
}

TEST_F(AsyncQueueTest, RefusesWhenTooManyJobsWait) {
  options.maxPending = 2;
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  // Hold both worker slots: the jobs wait in the executor and stay unfinished.
  exec::AdmissionState hog;
  ASSERT_EQ(executor.tryRunNow(hog), exec::Admission::kRunNow);
  ASSERT_EQ(executor.tryRunNow(hog), exec::Admission::kRunNow);
  ASSERT_TRUE(q->enqueue(job("echo")).ok());
  ASSERT_TRUE(q->enqueue(job("echo")).ok());
  auto third = q->enqueue(job("echo"));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code(), ErrorCode::kSaturated) << third.error().describe();
  executor.finish(hog);
  executor.finish(hog);
}

TEST_F(AsyncQueueTest, ASaturatedNodeDoesNotUseUpAttempts) {
  exec::Executor tiny{executorOptions(1, 0)};
  exec::Invoker tinyInvoker{engine, tiny, table,
                            [this](std::function<void()> t) { workers.post(std::move(t)); }};
  auto opened = AsyncQueue::open(options, AsyncDeps{tinyInvoker, table, metrics, clock, random});
  ASSERT_TRUE(opened.ok());
  auto& q = *opened;
  ASSERT_TRUE(q->start().ok());
  exec::AdmissionState hog;
  ASSERT_EQ(tiny.tryRunNow(hog), exec::Admission::kRunNow);  // the only slot
  auto a = q->enqueue(job("echo", "later"));
  ASSERT_TRUE(a.ok());
  auto echo = table.find("echo");
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (echo->outcomes[exec::FunctionEntry::kRejected]->value() < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    clock.advanceMs(200);  // past the saturation delay, so the job is tried again
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_GE(echo->outcomes[exec::FunctionEntry::kRejected]->value(), 3u);
  tiny.finish(hog);
  // A refusal may still be on its way to the store, with its retry time taken from the clock
  // after this point: keep time moving until the job is done.
  auto done = waitFor(*q, a->id, [&](const JobRecord& r) {
    clock.advanceMs(200);
    return finished(r);
  });
  EXPECT_EQ(done.status, JobStatus::kSucceeded);
  EXPECT_EQ(done.attempts, 1u) << "refusals at admission must not count as attempts";
  EXPECT_EQ(done.output, "later");
  q->stop();
}

TEST_F(AsyncQueueTest, AFunctionRemovedBeforeItsRetryFailsAtOnce) {
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto a = q->enqueue(job("never"));
  ASSERT_TRUE(a.ok());
  waitFor(*q, a->id, [](const JobRecord& j) { return j.attempts == 1 &&
                                                     j.status == JobStatus::kQueued; });
  ASSERT_TRUE(deployments->remove("never").ok());
  clock.advanceMs(500);
  auto r = waitFor(*q, a->id, finished);
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_EQ(r.attempts, 2u);  // of 5: no further attempts
  EXPECT_EQ(r.errorCode, "not_found");
}

TEST_F(AsyncQueueTest, ARestartRunsJobsThatWereRunningAgain) {
  std::string id = "0123456789abcdef01234567";
  {
    // A dispatcher that claimed the job and died: the row says running, attempt 1.
    auto s = JobStore::open(options.file);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    auto ins = (*s)->insert({NewJob{id, job("echo", "again"), 5, clock.nowMs()}});
    ASSERT_TRUE(ins.ok()) << ins.error().describe();
    auto claimed = (*s)->claim(JobState::kQueued, JobState::kRunning, clock.nowMs(), 10);
    ASSERT_TRUE(claimed.ok());
    ASSERT_EQ(claimed->size(), 1u);
    auto row = (*s)->get(id);
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ((*row)->record.status, JobStatus::kRunning);
    EXPECT_EQ((*row)->record.attempts, 1u);
  }
  auto q = open();
  auto before = q->get(id);
  ASSERT_TRUE(before.ok() && *before);
  EXPECT_EQ((*before)->status, JobStatus::kQueued);
  EXPECT_EQ((*before)->attempts, 0u);  // the interrupted attempt is not counted
  EXPECT_EQ(q->stats().pending, 1u);
  ASSERT_TRUE(q->start().ok());
  auto r = waitFor(*q, id, finished);
  EXPECT_EQ(r.status, JobStatus::kSucceeded);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.output, "again");
}

TEST_F(AsyncQueueTest, QueuedJobsSurviveStopAndStart) {
  std::string id;
  auto waitingForRetry = [](uint32_t attempts) {
    return [attempts](const JobRecord& j) {
      return j.attempts == attempts && j.status == JobStatus::kQueued;
    };
  };
  {
    auto q = open();
    ASSERT_TRUE(q->start().ok());
    auto a = q->enqueue(job("flaky", "kept"));
    ASSERT_TRUE(a.ok());
    id = a->id;
    waitFor(*q, id, waitingForRetry(1));
    q->stop();
    auto again = q->enqueue(job("echo"));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code(), ErrorCode::kUnavailable);
  }
  auto q = open();
  auto kept = q->get(id);
  ASSERT_TRUE(kept.ok() && *kept);
  EXPECT_EQ((*kept)->status, JobStatus::kQueued);
  EXPECT_EQ((*kept)->attempts, 1u);
  ASSERT_TRUE(q->start().ok());
  clock.advanceMs(500);
  waitFor(*q, id, waitingForRetry(2));
  clock.advanceMs(1000);
  auto r = waitFor(*q, id, finished);
  EXPECT_EQ(r.status, JobStatus::kSucceeded);
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_EQ(r.output, "attempt=3 id=" + id + " body=kept");
}

TEST_F(AsyncQueueTest, FinishedJobsArePurgedAfterTheRetention) {
  options.retentionMs = 10000;
  auto q = open();
  ASSERT_TRUE(q->start().ok());
  auto a = q->enqueue(job("echo"));
  ASSERT_TRUE(a.ok());
  waitFor(*q, a->id, finished);
  clock.advanceMs(9000);  // a purge runs, but the job is younger than the retention
  auto young = q->enqueue(job("echo"));  // wakes the loop; its purge leaves `a` alone
  ASSERT_TRUE(young.ok());
  waitFor(*q, young->id, finished);
  auto kept = q->get(a->id);
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->has_value());
  clock.advanceMs(2000);
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    auto r = q->get(a->id);
    ASSERT_TRUE(r.ok());
    gone = !r->has_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(gone) << "a finished job older than the retention must be purged";
  auto y = q->get(young->id);
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(y->has_value()) << "a job within the retention must stay";
}

TEST_F(AsyncQueueTest, DeliveryIsRetriedAndTheJobFinishesAfterIt) {
  auto q = open();
  std::atomic<int> calls{0};
  std::mutex seenMu;
  std::vector<JobRecord> seen;
  q->setDelivery("test", [&](const JobRecord& r) -> Result<void> {
    {
      std::lock_guard lock(seenMu);
      seen.push_back(r);
    }
    if (++calls < 3) return Error(ErrorCode::kUnavailable, "receiver down");
    return {};
  });
  ASSERT_TRUE(q->start().ok());
  JobRequest r = job("echo", "deliver me");
  r.origin = "test";
  r.meta = R"({"reply":"x"})";
  auto a = q->enqueue(r);
  ASSERT_TRUE(a.ok());
  auto pending = waitFor(*q, a->id, [](const JobRecord& j) { return j.deliveryAttempts == 1; });
  EXPECT_EQ(pending.status, JobStatus::kRunning);  // not finished before delivery
  EXPECT_EQ(pending.delivery, DeliveryState::kPending);
  EXPECT_NE(pending.deliveryError.find("receiver down"), std::string::npos);
  EXPECT_EQ(pending.nextAttemptMs, clock.nowMs() + 50);
  clock.advanceMs(50);
  waitFor(*q, a->id, [](const JobRecord& j) { return j.deliveryAttempts == 2; });
  clock.advanceMs(100);
  auto done = waitFor(*q, a->id, finished);
  EXPECT_EQ(done.status, JobStatus::kSucceeded);
  EXPECT_EQ(done.delivery, DeliveryState::kDelivered);
  EXPECT_EQ(done.deliveryAttempts, 3u);
  EXPECT_EQ(done.attempts, 1u);  // the function ran once
  std::lock_guard lock(seenMu);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].status, JobStatus::kSucceeded);  // the hook sees the final outcome
  EXPECT_EQ(seen[0].output, "deliver me");
  EXPECT_EQ(seen[0].meta, R"({"reply":"x"})");
}

TEST_F(AsyncQueueTest, DeliveryGivesUpAfterItsAttemptsAndSaysWhy) {
  options.deliveryRetry = RetryPolicy{2, 100, 1000};
  options.retry = RetryPolicy{1, 100, 1000};
  auto q = open();
  q->setDelivery("test", [](const JobRecord&) -> Result<void> {
    return Error(ErrorCode::kUnavailable, "broker unreachable");
  });
  ASSERT_TRUE(q->start().ok());
  JobRequest r = job("never");
  r.origin = "test";
  auto a = q->enqueue(r);
  ASSERT_TRUE(a.ok());
  auto first = waitFor(*q, a->id, [](const JobRecord& j) { return j.deliveryAttempts == 1; });
  EXPECT_EQ(first.status, JobStatus::kRunning);
  clock.advanceMs(50);
  auto done = waitFor(*q, a->id, finished);
  EXPECT_EQ(done.status, JobStatus::kFailed);
  EXPECT_EQ(done.delivery, DeliveryState::kGaveUp);
  EXPECT_EQ(done.deliveryAttempts, 2u);
  EXPECT_NE(done.deliveryError.find("broker unreachable"), std::string::npos);
}

TEST_F(AsyncQueueTest, JobsOfAnOriginWithoutAHookFinishWithoutDelivery) {
  auto q = open();
  q->setDelivery("http", httpCallbackDelivery(std::chrono::seconds(1)), hasCallbackUrl);
  ASSERT_TRUE(q->start().ok());
  JobRequest cron = job("echo");
  cron.origin = "cron";
  auto a = q->enqueue(cron);
  auto b = q->enqueue(job("echo"));  // http without a callback URL
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(waitFor(*q, a->id, finished).delivery, DeliveryState::kNone);
  EXPECT_EQ(waitFor(*q, b->id, finished).delivery, DeliveryState::kNone);
}

TEST(JobJsonTest, OutputIsTextWhenUtf8ElseBase64) {
  JobRecord r;
  r.id = "abc";
  r.status = JobStatus::kSucceeded;
  r.output = "h\xc3\xa9llo";
  r.exitCode = 0;
  auto text = jobJson(r);
  EXPECT_NE(text.find("\"output\":\"h\xc3\xa9llo\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"output_encoding\":\"utf-8\""), std::string::npos) << text;
  r.output = std::string("\xff\x00\x01", 3);
  text = jobJson(r);
  EXPECT_NE(text.find("\"output\":\"/wAB\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"output_encoding\":\"base64\""), std::string::npos) << text;
  r.status = JobStatus::kQueued;
  text = jobJson(r);
  EXPECT_EQ(text.find("\"output\""), std::string::npos) << "no output before the outcome";
}

TEST(JobJsonTest, Utf8Validation) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("plain"));
  EXPECT_TRUE(isValidUtf8("\xf0\x9f\x98\x80"));
  EXPECT_FALSE(isValidUtf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(isValidUtf8("\xe2\x82"));          // truncated
}

TEST(CallbackUrlTest, ParsesHostPortAndTarget) {
  auto u = parseCallbackUrl("http://127.0.0.1:9000/hook?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->path, "/hook?x=1");
  u = parseCallbackUrl("HTTP://[::1]");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  for (const char* bad : {"", "ftp://h/", "http://user@h/", "http://[::1/", "http://h:/",
                          "http://h:0/", "http://h\x01/", "http://bad host/"}) {
    EXPECT_FALSE(parseCallbackUrl(bad).ok()) << bad;
  }
  EXPECT_FALSE(parseCallbackUrl("http://h/" + std::string(3000, 'a')).ok());
}

}  // namespace
}  // namespace tern::async
