// Cluster async jobs: the attempt a delivery stands for, and the job and record payloads
// (round trips and refusals). The decision after an attempt is async::nextStep
// (tests/unit/async/retry_policy_test.cpp).
#include "cluster/async_job.h"

#include <gtest/gtest.h>

namespace tern::cluster {
namespace {

using async::JobStatus;

TEST(AsyncJobTest, AttemptOfADeliveryCountsEarlierAttempts) {
  EXPECT_EQ(attemptOfDelivery(0, 1), 1u);
  EXPECT_EQ(attemptOfDelivery(0, 0), 1u);  // no metadata: the first delivery
  EXPECT_EQ(attemptOfDelivery(2, 1), 3u);
  EXPECT_EQ(attemptOfDelivery(2, 3), 5u);
  // Deliveries handed back by a busy or stopping node used no attempt.
  EXPECT_EQ(attemptOfDelivery(0, 3, 2), 1u);
  EXPECT_EQ(attemptOfDelivery(0, 4, 1), 3u);
  EXPECT_EQ(attemptOfDelivery(2, 3, 1), 4u);
  EXPECT_EQ(attemptOfDelivery(0, 2, 5), 1u);  // a count beyond the deliveries: the first
}

TEST(AsyncJobTest, JobPayloadRoundTripsAndRefusesBadFields) {
  AsyncJob j;
  j.id = "0123456789abcdef01234567";
  j.function = "echo";
  j.origin = "mqtt";
  j.meta = R"({"topic":"a/b"})";
  j.callbackUrl = "http://x/cb";
  j.env = {"A=1", "B="};
  j.body = std::string("bin\0ary", 7);
  j.attemptsBefore = 2;
  j.maxAttempts = 5;
  j.createdMs = 1700000000000;
  auto d = decodeAsyncJob(encodeAsyncJob(j));
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->id, j.id);
  EXPECT_EQ(d->function, j.function);
  EXPECT_EQ(d->origin, j.origin);
  EXPECT_EQ(d->meta, j.meta);
  EXPECT_EQ(d->callbackUrl, j.callbackUrl);
  EXPECT_EQ(d->env, j.env);
  EXPECT_EQ(d->body, j.body);
  EXPECT_EQ(d->attemptsBefore, 2u);
  EXPECT_EQ(d->maxAttempts, 5u);
  EXPECT_EQ(d->createdMs, j.createdMs);

  EXPECT_FALSE(decodeAsyncJob("").ok());
  EXPECT_FALSE(decodeAsyncJob(std::string("\0\0\0\x09{\"id\":1}", 13)).ok());
  AsyncJob bad = j;
  bad.id = "../etc";
  EXPECT_FALSE(decodeAsyncJob(encodeAsyncJob(bad)).ok());
  bad = j;
  bad.function = "Echo.x";
  EXPECT_FALSE(decodeAsyncJob(encodeAsyncJob(bad)).ok());
  bad = j;
  bad.env = {"NOEQUALS"};
  EXPECT_FALSE(decodeAsyncJob(encodeAsyncJob(bad)).ok());
  bad = j;
  bad.maxAttempts = 0;
  EXPECT_FALSE(decodeAsyncJob(encodeAsyncJob(bad)).ok());
}

TEST(AsyncJobTest, RecordRoundTripsAndDropsOutputBeyondTheLimit) {
  AsyncRecord r;
  r.node = "b";
  r.job.id = "00ff";
  r.job.function = "nap";
  r.job.origin = "http";
  r.job.status = JobStatus::kFailed;
  r.job.attempts = 3;
  r.job.maxAttempts = 3;
  r.job.exitCode = 2;
  r.job.errorCode = "exited";
  r.job.errorMessage = "exit code 2";
  r.job.delivery = async::DeliveryState::kGaveUp;
  r.job.output = std::string(1000, 'o');
  auto d = decodeAsyncRecord(encodeAsyncRecord(r, 1 << 20));
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->node, "b");
  EXPECT_EQ(d->job.status, JobStatus::kFailed);
  EXPECT_EQ(d->job.attempts, 3u);
  EXPECT_EQ(d->job.exitCode, 2);
  EXPECT_EQ(d->job.errorMessage, "exit code 2");
  EXPECT_EQ(d->job.delivery, async::DeliveryState::kGaveUp);
  EXPECT_EQ(d->job.output, r.job.output);
  EXPECT_FALSE(d->outputDropped);

  auto small = decodeAsyncRecord(encodeAsyncRecord(r, 600));
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->outputDropped);
  EXPECT_EQ(small->job.output, "");
  EXPECT_EQ(small->job.status, JobStatus::kFailed);
  EXPECT_EQ(small->handedBack, 0u);

  r.handedBack = 4;
  auto handed = decodeAsyncRecord(encodeAsyncRecord(r, 1 << 20));
  ASSERT_TRUE(handed.ok()) << handed.error().message();
  EXPECT_EQ(handed->handedBack, 4u);
}

}  // namespace
}  // namespace tern::cluster
