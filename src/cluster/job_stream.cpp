#include "cluster/job_stream.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cluster/nats_options.h"
#include "cluster/nats_text.h"
#include "util/thread_annotations.h"
#include "cluster/async_job.h"

namespace tern::cluster {

namespace {

constexpr const char* kStream = "TERN_ASYNC";
constexpr const char* kSubjects = "tern.v1.async.>";
constexpr const char* kJobsBucket = "tern_jobs";
constexpr int64_t kJetStreamWaitMs = 2000;
// Deliveries of one message at most. Attempts are bounded by the job's max_attempts (at
// most 100, --async-attempts), which the node enforces before this is reached; the bound
// only keeps a message that no node can settle from circulating forever.
constexpr int64_t kMaxDeliver = 110;
constexpr size_t kMaxOutbox = 10000;
// Hops given to a cluster job's invocation: beyond any --hop-limit, so the invoker never
// forwards it (the stream already chose this node).
constexpr uint32_t kNoForwarding = 255;
constexpr std::chrono::milliseconds kConsumerSyncInterval{1000};
// How many times a job fetched while this node is full waits here for a slot (each wait
// 100-200 ms, the busy delay) before it goes back to the stream for another node.
constexpr uint32_t kMaxBusyRetries = 20;

}  // namespace

struct JobStream::Impl {
  Impl(JobStreamOptions o, ClusterKey k, JobStreamDeps d)
      : opt(std::move(o)), key(std::move(k)), deps(std::move(d)) {}

  JobStreamOptions opt;
  ClusterKey key;
  JobStreamDeps deps;

  natsOptions* natsOpts = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  std::atomic<bool> connected{false};
  std::atomic<bool> bound{false};  // stream and bucket exist; set by the worker thread
  std::atomic<bool> stopping{false};
  std::atomic<bool> draining{false};  // stop() began: no new fetches
  std::weak_ptr<Impl> weakSelf;        // for callbacks that may outlive the JobStream
  kvStore* jobsKv = nullptr;        // written once by the worker thread before `bound`

  // Callers from other threads (hand-offs, lookups) in progress; stop() waits for them.
  Mutex usersMu;
  std::condition_variable usersDone;
  int users TERN_GUARDED_BY(usersMu) = 0;

  struct Consumer {
    natsSubscription* sub = nullptr;
    uint32_t timeoutMs = 0;
  };
  std::map<std::string, Consumer> consumers;  // worker thread only
  std::chrono::steady_clock::time_point nextConsumerSync{};
  size_t rotation = 0;

  // A job fetched here: its message (not acked yet) and what it became.
  struct Running {
    natsMsg* msg = nullptr;
    AsyncJob job;
    uint32_t attempt = 0;
    int64_t startedMs = 0;
    exec::InvokeOutput out;
    std::optional<Result<async::JobRecord>> adopted;
    // Times this node was too busy to start it; it is held here (its message kept in
    // progress) and tried again at `retryAt` rather than sent back to the stream, where
    // every delivery counts as an attempt.
    uint32_t busyRetries = 0;
    std::chrono::steady_clock::time_point retryAt;
    // Deliveries of the job handed back without using an attempt (a busy or stopping
    // node), carried in its tern_jobs record from one delivery to the next.
    uint32_t handedBack = 0;
  };
  Mutex mu;
  std::condition_variable wake;
  std::vector<std::unique_ptr<Running>> finished TERN_GUARDED_BY(mu);  // attempts that ended
  std::vector<std::unique_ptr<Running>> adopted TERN_GUARDED_BY(mu);   // final outcomes recorded here
  std::vector<std::unique_ptr<Running>> held;  // waiting here for a slot; worker thread only
  std::map<std::string, async::JobRecord> outbox TERN_GUARDED_BY(mu);  // records to write to tern_jobs
  uint32_t inFlight TERN_GUARDED_BY(mu) = 0;  // messages fetched and not settled
  std::thread worker;

  Counter* rejected[kRejectionKinds] = {};
  Counter* runs = nullptr;
  Counter* redelivered = nullptr;
  Counter* handedOff = nullptr;

  void initMetrics();
  void reject(Rejection r, const std::string& message) {
    rejected[static_cast<size_t>(r)]->inc();
    spdlog::warn("cluster: refused async job ({}): {}", rejectionName(r), message);
  }
  bool enter();
  void leave();

  void loop();
  bool bind();
  void syncConsumers();
  bool fetchRound();
  void runJob(natsMsg* msg);
  // Runs an attempt of a fetched job through the invoker; settle() takes the outcome.
  void attempt(std::unique_ptr<Running> r);
  // Starts held jobs whose retry time has come (all of them, as busy, when draining).
  void retryHeld();
  void settle(std::unique_ptr<Running> r);
  void finishAdopted(std::unique_ptr<Running> r);
  void finalize(std::unique_ptr<Running> r, async::JobRecord record, async::JobStatus outcome);
  async::JobRecord recordOf(const Running& r) const;
  bool putRecord(const async::JobRecord& job, bool onlyIfAbsent, uint32_t handedBack = 0);
  void flushOutbox();

  // ClusterLink.
  Result<void> handOff(const async::JobRecord& job);
  Result<std::optional<async::JobRecord>> lookup(const std::string& id);
  // The job's record in tern_jobs, checked; nullopt when there is none (or it is refused).
  Result<std::optional<AsyncRecord>> readRecord(const std::string& id);
  void changed(const async::JobRecord& job);
};

void JobStream::Impl::initMetrics() {
  rejectionCounters(deps.metrics, rejected);
  runs = &deps.metrics.counter("tern_async_cluster_runs_total",
                               "Attempts of cluster async jobs run by this node");
  redelivered = &deps.metrics.counter(
      "tern_async_cluster_retries_total",
      "Cluster async jobs given back to the stream for another attempt by this node");
  handedOff = &deps.metrics.counter("tern_async_cluster_published_total",
                                    "Async jobs this node published to the TERN_ASYNC stream");
}

bool JobStream::Impl::enter() {
  MutexLock lock(usersMu);
  if (stopping || !connected || !bound) return false;
  ++users;
  return true;
}

void JobStream::Impl::leave() {
  MutexLock lock(usersMu);
  if (--users == 0) usersDone.notify_all();
}

// ---- setup ----

bool JobStream::Impl::bind() {
  jsErrCode err = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, js, kStream, nullptr, &err);
  if (s == NATS_NOT_FOUND || err == JSStreamNotFoundErr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = kStream;
    const char* subjects[] = {kSubjects};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_WorkQueuePolicy;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 2LL * 60 * 1000 * 1000 * 1000;  // the de-duplication window (ns)
    s = js_AddStream(&si, js, &cfg, nullptr, &err);
  }
  jsStreamInfo_Destroy(si);
  if (s != NATS_OK) {
    spdlog::warn("cluster: stream {} not available yet: {}", kStream, natsText(s));
    return false;
  }
  kvStore* kv = nullptr;
  s = js_KeyValue(&kv, js, kJobsBucket);
  if (s != NATS_OK) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = kJobsBucket;
    cfg.History = 1;
    cfg.TTL = static_cast<int64_t>(opt.retention.count()) * 1000000;  // nanoseconds
    cfg.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&kv, js, &cfg);
  }
  if (s != NATS_OK) {
    spdlog::warn("cluster: bucket {} not available yet: {}", kJobsBucket, natsText(s));
    return false;
  }
  jobsKv = kv;
  bound = true;
  spdlog::info("cluster: async work queue {} and bucket {} ready", kStream, kJobsBucket);
  return true;
}

// One durable pull consumer per function served here: `fn-<name>`, filtered on
// tern.v1.async.<name>, AckWait = the function's timeout + the margin. Consumers of
// functions no longer served here are left (other nodes may use them); this node stops
// pulling from them.
void JobStream::Impl::syncConsumers() {
  std::map<std::string, uint32_t> wanted;
  for (const auto& fn : deps.table.all()) {
    if (auto active = fn->active()) wanted[fn->name] = active->config.timeoutMs;
  }
  for (auto it = consumers.begin(); it != consumers.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second != it->second.timeoutMs) {
      natsSubscription_Destroy(it->second.sub);
      it = consumers.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, timeoutMs] : wanted) {
    if (consumers.contains(name)) continue;
    std::string durable = "fn-" + name;
    std::string subject = "tern.v1.async." + name;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (static_cast<int64_t>(timeoutMs) + opt.ackMargin.count()) * 1000000;
    cc.MaxDeliver = kMaxDeliver;
    cc.FilterSubject = subject.c_str();
    cc.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo* ci = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_AddConsumer(&ci, js, kStream, &cc, nullptr, &err);
    if (s != NATS_OK) s = js_UpdateConsumer(&ci, js, kStream, &cc, nullptr, &err);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
      spdlog::warn("cluster: cannot create the async consumer of {}: {}", name, natsText(s));
      continue;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = kStream;
    so.Consumer = durable.c_str();
    natsSubscription* sub = nullptr;
    s = js_PullSubscribe(&sub, js, subject.c_str(), durable.c_str(), nullptr, &so, &err);
    if (s != NATS_OK) {
      spdlog::warn("cluster: cannot pull async jobs of {}: {}", name, natsText(s));
      continue;
    }
    consumers[name] = Consumer{sub, timeoutMs};
  }
}

// ---- running jobs ----

// Fetches up to the free capacity from the consumers, one after another (a different one
// first each round). Returns whether anything was fetched.
bool JobStream::Impl::fetchRound() {
  if (consumers.empty() || draining) return false;
  std::vector<natsSubscription*> subs;
  for (auto& [name, c] : consumers) subs.push_back(c.sub);
  rotation = (rotation + 1) % subs.size();
  std::rotate(subs.begin(), subs.begin() + static_cast<long>(rotation), subs.end());
  int64_t wait = std::max<int64_t>(20, 200 / static_cast<int64_t>(subs.size()));
  bool any = false;
  for (natsSubscription* sub : subs) {
    uint32_t free;
    {
      MutexLock lock(mu);
      free = opt.maxInFlight > inFlight ? opt.maxInFlight - inFlight : 0;
    }
    if (free == 0 || draining) break;
    natsMsgList list{};
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = natsSubscription_Fetch(&list, sub, static_cast<int>(free), wait, &err);
    if (s != NATS_OK && s != NATS_TIMEOUT) {
      spdlog::debug("cluster: async fetch: {}", natsText(s));
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      list.Msgs[i] = nullptr;
      any = true;
      runJob(m);
    }
    natsMsgList_Destroy(&list);
  }
  return any;
}

void JobStream::Impl::runJob(natsMsg* msg) {
  auto bytes = std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                         static_cast<size_t>(natsMsg_GetDataLength(msg)));
  std::string subject = natsMsg_GetSubject(msg);
  // A refused message is terminated: it is never delivered again.
  auto refuse = [&](Rejection r, const std::string& why) {
    reject(r, fmt::format("{} on {}", why, subject));
    natsMsg_Term(msg, nullptr);
    natsMsg_Destroy(msg);
  };
  Decoded d = decodeEnvelope(key, bytes, opt.maxMessageBytes);
  if (!d.ok) return refuse(d.refused.reason, d.refused.message);
  if (d.envelope.kind != MessageKind::kAsyncJob) {
    return refuse(Rejection::kUnknownKind,
                  fmt::format("message kind {} in the async stream", int(d.envelope.kind)));
  }
  auto job = decodeAsyncJob(d.envelope.payload);
  if (!job.ok()) return refuse(Rejection::kMalformed, job.error().message());
  if (job->function != lastToken(subject)) {
    return refuse(Rejection::kForgedIdentity,
                  fmt::format("a job of function \"{}\" from \"{}\"", job->function,
                              d.envelope.sender));
  }
  jsMsgMetaData* meta = nullptr;
  uint64_t delivered = 1;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
  }
  auto r = std::make_unique<Running>();
  r->msg = msg;
  if (delivered > 1) {
    // A redelivery: earlier deliveries may have been handed back without using an
    // attempt, which only the job's record says.
    auto rec = readRecord(job->id);
    if (rec.ok() && *rec) r->handedBack = (*rec)->handedBack;
  }
  r->attempt = attemptOfDelivery(job->attemptsBefore, delivered, r->handedBack);
  r->job = std::move(*job);
  r->startedMs = deps.clock();
  {
    MutexLock lock(mu);
    ++inFlight;
  }
  if (r->attempt > r->job.maxAttempts) {
    // Its last attempt was cut short (the node running it stopped answering).
    async::JobRecord rec = recordOf(*r);
    rec.attempts = r->job.maxAttempts;
    rec.errorCode = errorKind(ErrorCode::kUnavailable).name;
    rec.errorMessage = "the node running its last attempt stopped before recording it";
    return finalize(std::move(r), std::move(rec), async::JobStatus::kFailed);
  }
  async::JobRecord running = recordOf(*r);
  running.status = async::JobStatus::kRunning;
  putRecord(running, false, r->handedBack);
  runs->inc();
  attempt(std::move(r));
}

void JobStream::Impl::attempt(std::unique_ptr<Running> r) {
  exec::InvokeInput in;
  in.function = r->job.function;
  in.body = r->job.body;
  in.env = Environment(r->job.env);
  in.env.add("TERN_ASYNC_ID", r->job.id);
  in.env.add("TERN_ATTEMPT", std::to_string(r->attempt));
  in.hops = kNoForwarding;
  Running* raw = r.release();
  deps.invoker.invoke(std::move(in), [self = weakSelf.lock(), raw](exec::InvokeOutput out) {
    raw->out = std::move(out);
    {
      MutexLock lock(self->mu);
      self->finished.emplace_back(raw);
    }
    self->wake.notify_all();
  });
}

async::JobRecord JobStream::Impl::recordOf(const Running& r) const {
  async::JobRecord rec;
  rec.id = r.job.id;
  rec.function = r.job.function;
  rec.origin = r.job.origin;
  rec.meta = r.job.meta;
  rec.callbackUrl = r.job.callbackUrl;
  rec.status = async::JobStatus::kRunning;
  rec.attempts = r.attempt;
  rec.maxAttempts = r.job.maxAttempts;
  rec.createdMs = r.job.createdMs;
  rec.startedMs = r.startedMs;
  rec.updatedMs = deps.clock();
  return rec;
}

// An attempt ended: a retry goes back to the stream, a final outcome is adopted here.
void JobStream::Impl::settle(std::unique_ptr<Running> r) {
  async::JobRecord rec = recordOf(*r);
  exec::InvokeOutput& out = r->out;
  if (out.ran) {
    rec.output = out.result.stdoutData;
    rec.exitCode = out.result.outcome == wasm::Outcome::kOk       ? 0
                   : out.result.outcome == wasm::Outcome::kExited ? out.result.exitCode
                                                                  : -1;
  }
  if (out.error) {
    rec.errorCode = std::string(errorKind(out.error->code()).name);
    rec.errorMessage = out.error->message();
  }
  async::AttemptEnd end = async::attemptEndOf(out.error);
  if (end == async::AttemptEnd::kNodeBusy && r->busyRetries < kMaxBusyRetries && !draining) {
    // Full here: the job waits on this node for a slot, without using up a delivery.
    natsMsg_InProgress(r->msg, nullptr);
    r->busyRetries += 1;
    r->retryAt = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(async::backoffMs(
                     async::RetryPolicy{1, opt.busyDelayMs, opt.busyDelayMs}, 1,
                     deps.random.uniform()));
    held.push_back(std::move(r));
    return;
  }
  // The rule shared with the local queue (async/retry_policy.h).
  async::NextStep step = async::nextStep(opt.retry, opt.busyDelayMs, r->attempt,
                                         r->job.maxAttempts, end, deps.random.uniform());
  if (step.kind == async::NextStep::kSucceed) {
    return finalize(std::move(r), std::move(rec), async::JobStatus::kSucceeded);
  }
  if (step.kind == async::NextStep::kFail) {
    return finalize(std::move(r), std::move(rec), async::JobStatus::kFailed);
  }
  rec.status = async::JobStatus::kQueued;
  rec.nextAttemptMs = deps.clock() + step.delayMs;
  if (!step.usesAttempt) {
    // The stream counts every delivery; the record tells the next one that this one used
    // no attempt. It is written before the nak, so the redelivery reads it.
    r->handedBack += 1;
    rec.attempts = r->attempt > 0 ? r->attempt - 1 : 0;
  }
  putRecord(rec, false, r->handedBack);
  redelivered->inc();
  natsMsg_NakWithDelay(r->msg, step.delayMs, nullptr);
  natsMsg_Destroy(r->msg);
  {
    MutexLock lock(mu);
    --inFlight;
  }
  wake.notify_all();
}

void JobStream::Impl::finalize(std::unique_ptr<Running> r, async::JobRecord record,
                               async::JobStatus outcome) {
  Running* raw = r.release();
  deps.queue.adopt(std::move(record), outcome,
                   [self = weakSelf.lock(), raw](Result<async::JobRecord> done) {
                     raw->adopted = std::move(done);
                     {
                       MutexLock lock(self->mu);
                       self->adopted.emplace_back(raw);
                     }
                     self->wake.notify_all();
                   });
}

void JobStream::Impl::retryHeld() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Running>> due;
  std::erase_if(held, [&](std::unique_ptr<Running>& r) {
    if (!draining && r->retryAt > now) return false;
    due.push_back(std::move(r));
    return true;
  });
  for (auto& r : due) {
    if (draining) {
      // The node is stopping: another node takes it (this wait used up a delivery).
      r->out = exec::InvokeOutput{};
      r->out.error = Error(ErrorCode::kSaturated, "the node stopped while the job waited");
      settle(std::move(r));
    } else {
      attempt(std::move(r));
    }
  }
}

// The final outcome is in queue.db (the adoption also put its record in the outbox):
// write the record, then ack. When the adoption failed, another node gets the job.
void JobStream::Impl::finishAdopted(std::unique_ptr<Running> r) {
  if (r->adopted && r->adopted->ok()) {
    flushOutbox();
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = natsMsg_AckSync(r->msg, nullptr, &err);
    if (s != NATS_OK) {
      spdlog::warn("cluster: async job {} finished but its ack failed ({}); it may run again",
                   r->job.id, natsText(s));
    }
  } else {
    spdlog::error("cluster: cannot record the outcome of async job {}: {}", r->job.id,
                  r->adopted ? r->adopted->error().describe() : std::string("no result"));
    natsMsg_NakWithDelay(r->msg, opt.busyDelayMs, nullptr);
  }
  natsMsg_Destroy(r->msg);
  {
    MutexLock lock(mu);
    --inFlight;
  }
  wake.notify_all();
}

// ---- records ----

bool JobStream::Impl::putRecord(const async::JobRecord& job, bool onlyIfAbsent,
                                uint32_t handedBack) {
  if (!jobsKv || !connected) return false;
  size_t limit = std::min<size_t>(opt.maxMessageBytes,
                                  static_cast<size_t>(natsConnection_GetMaxPayload(conn)));
  // Room for the envelope around the payload.
  size_t room = limit > 256 ? limit - 256 : limit;
  AsyncRecord rec{job, opt.nodeId, false, handedBack};
  rec.job.body.clear();
  rec.job.env.clear();
  std::string msg = encodeEnvelope(key, Envelope{MessageKind::kAsyncRecord, opt.nodeId,
                                                 deps.clock(), encodeAsyncRecord(rec, room)});
  natsStatus s = onlyIfAbsent
                     ? kvStore_Create(nullptr, jobsKv, job.id.c_str(), msg.data(),
                                      static_cast<int>(msg.size()))
                     : kvStore_Put(nullptr, jobsKv, job.id.c_str(), msg.data(),
                                   static_cast<int>(msg.size()));
  if (s != NATS_OK && !onlyIfAbsent) {
    spdlog::debug("cluster: record of async job {} not written: {}", job.id, natsText(s));
  }
  return s == NATS_OK;
}

void JobStream::Impl::flushOutbox() {
  std::map<std::string, async::JobRecord> batch;
  {
    MutexLock lock(mu);
    batch.swap(outbox);
  }
  for (auto it = batch.begin(); it != batch.end(); ++it) {
    if (!putRecord(it->second, false)) {
      // Kept for the next round, unless a newer record of the job arrived meanwhile.
      MutexLock lock(mu);
      for (auto rest = it; rest != batch.end(); ++rest) outbox.insert(*rest);
      return;
    }
  }
}

void JobStream::Impl::changed(const async::JobRecord& job) {
  {
    MutexLock lock(mu);
    if (outbox.size() >= kMaxOutbox && !outbox.contains(job.id)) return;
    outbox[job.id] = job;
  }
  wake.notify_all();
}

Result<void> JobStream::Impl::handOff(const async::JobRecord& job) {
  if (!enter()) return Error(ErrorCode::kUnavailable, "the cluster's work queue is not reachable");
  struct Leave {
    Impl* self;
    ~Leave() { self->leave(); }
  } guard{this};
  std::string msg = encodeEnvelope(key, Envelope{MessageKind::kAsyncJob, opt.nodeId,
                                                 deps.clock(), encodeAsyncJob(asyncJobFrom(job))});
  if (msg.size() > static_cast<size_t>(natsConnection_GetMaxPayload(conn)) ||
      msg.size() > opt.maxMessageBytes) {
    return Error(ErrorCode::kBodyTooLarge,
                 fmt::format("async job {} ({} bytes) is larger than a cluster message may be",
                             job.id, msg.size()));
  }
  {
    // An older record of the job waiting here must not overwrite what the cluster writes.
    MutexLock lock(mu);
    outbox.erase(job.id);
  }
  std::string subject = "tern.v1.async." + job.function;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = job.id.c_str();
  po.MaxWait = kJetStreamWaitMs;
  jsPubAck* ack = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_Publish(&ack, js, subject.c_str(), msg.data(), static_cast<int>(msg.size()),
                            &po, &err);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot publish async job {}: {}", job.id, natsText(s)));
  }
  handedOff->inc();
  async::JobRecord queued = job;
  queued.status = async::JobStatus::kQueued;
  putRecord(queued, true);
  return {};
}

Result<std::optional<AsyncRecord>> JobStream::Impl::readRecord(const std::string& id) {
  if (!isValidJobId(id)) return std::optional<AsyncRecord>();
  if (!enter()) return Error(ErrorCode::kUnavailable, "the cluster's job records are not reachable");
  struct Leave {
    Impl* self;
    ~Leave() { self->leave(); }
  } guard{this};
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, jobsKv, id.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<AsyncRecord>();
  if (s != NATS_OK) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot read the record of job {}: {}", id, natsText(s)));
  }
  auto bytes = std::span(reinterpret_cast<const uint8_t*>(kvEntry_Value(entry)),
                         static_cast<size_t>(kvEntry_ValueLen(entry)));
  Decoded d = decodeEnvelope(key, bytes, opt.maxMessageBytes);
  kvEntry_Destroy(entry);
  std::string where = fmt::format("record of job {}", id);
  if (!d.ok) {
    reject(d.refused.reason, fmt::format("{}: {}", where, d.refused.message));
    return std::optional<AsyncRecord>();
  }
  if (d.envelope.kind != MessageKind::kAsyncRecord) {
    reject(Rejection::kUnknownKind, where);
    return std::optional<AsyncRecord>();
  }
  auto rec = decodeAsyncRecord(d.envelope.payload);
  if (!rec.ok()) {
    reject(Rejection::kMalformed, fmt::format("{}: {}", where, rec.error().message()));
    return std::optional<AsyncRecord>();
  }
  if (rec->job.id != id || rec->node != d.envelope.sender) {
    reject(Rejection::kForgedIdentity,
           fmt::format("{} names job {} and node \"{}\", signed by \"{}\"", where, rec->job.id,
                       rec->node, d.envelope.sender));
    return std::optional<AsyncRecord>();
  }
  return std::optional<AsyncRecord>(std::move(*rec));
}

Result<std::optional<async::JobRecord>> JobStream::Impl::lookup(const std::string& id) {
  auto rec = readRecord(id);
  if (!rec.ok()) return rec.error();
  if (!*rec) return std::optional<async::JobRecord>();
  return std::optional<async::JobRecord>(std::move((*rec)->job));
}

// ---- the worker thread ----

void JobStream::Impl::loop() {
  auto pause = [this](std::chrono::milliseconds d) {
    MutexLock lock(mu);
    lock.waitFor(wake, d, [this]() TERN_REQUIRES(mu) {
      return stopping.load() || !finished.empty() || !adopted.empty();
    });
  };
  while (!stopping) {
    std::vector<std::unique_ptr<Running>> ended, recorded;
    {
      MutexLock lock(mu);
      ended.swap(finished);
      recorded.swap(adopted);
    }
    for (auto& r : ended) settle(std::move(r));
    for (auto& r : recorded) finishAdopted(std::move(r));
    retryHeld();
    if (!connected) {
      pause(std::chrono::milliseconds(100));
      continue;
    }
    if (!bound && !bind()) {
      pause(std::chrono::milliseconds(500));
      continue;
    }
    flushOutbox();
    auto now = std::chrono::steady_clock::now();
    if (now >= nextConsumerSync) {
      syncConsumers();
      nextConsumerSync = now + kConsumerSyncInterval;
    }
    if (!fetchRound()) {
      bool full;
      {
        MutexLock lock(mu);
        full = inFlight >= opt.maxInFlight;
      }
      if (full || consumers.empty()) pause(std::chrono::milliseconds(100));
    }
  }
}

// ---- the service ----

JobStream::JobStream(JobStreamOptions options, ClusterKey key, JobStreamDeps deps)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(key), std::move(deps))) {
  impl_->weakSelf = impl_;
  impl_->initMetrics();
}

JobStream::~JobStream() { stop(); }

Result<void> JobStream::start() {
  Impl& c = *impl_;
  if (c.opt.maxInFlight == 0) {
    return Error(ErrorCode::kInvalidArgument, "async jobs in flight must be at least 1");
  }
  auto check = [](natsStatus s, const char* what) -> Result<void> {
    if (s == NATS_OK) return {};
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS {}: {}", what, natsText(s)));
  };
  auto options = makeNatsOptions(c.opt.url, "tern-" + c.opt.nodeId + "-async", c.opt.nats);
  if (!options.ok()) return options.error();
  c.natsOpts = *options;
  natsOptions* o = c.natsOpts;
  auto onConnected = [](natsConnection*, void* self) {
    auto* impl = static_cast<Impl*>(self);
    impl->connected = true;
    impl->wake.notify_all();
  };
  natsOptions_SetRetryOnFailedConnect(o, true, onConnected, &c);
  natsOptions_SetReconnectedCB(o, onConnected, &c);
  natsOptions_SetDisconnectedCB(
      o, [](natsConnection*, void* self) { static_cast<Impl*>(self)->connected = false; }, &c);
  natsStatus s = natsConnection_Connect(&c.conn, o);
  if (s == NATS_OK) {
    c.connected = true;
  } else if (s != NATS_NOT_YET_CONNECTED) {
    return Error(ErrorCode::kUnavailable, fmt::format("NATS connect: {}", natsText(s)));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kJetStreamWaitMs;
  if (!c.opt.jetStreamDomain.empty()) jo.Domain = c.opt.jetStreamDomain.c_str();
  if (auto ok = check(natsConnection_JetStream(&c.js, c.conn, &jo), "JetStream"); !ok.ok()) return ok;
  c.worker = std::thread([&c] { c.loop(); });
  // The link holds the Impl alive while a hand-off or lookup runs.
  std::shared_ptr<Impl> self = impl_;
  async::ClusterLink link;
  link.ready = [self] { return self->connected && self->bound && !self->stopping; };
  link.handOff = [self](const async::JobRecord& job) { return self->handOff(job); };
  link.lookup = [self](const std::string& id) { return self->lookup(id); };
  link.changed = [self](const async::JobRecord& job) { self->changed(job); };
  c.deps.queue.setClusterLink(std::move(link));
  return {};
}

void JobStream::stop() {
  Impl& c = *impl_;
  if (c.draining.exchange(true)) return;
  c.deps.queue.setClusterLink({});
  // Jobs running here finish and are settled (recorded and acked) by the worker thread.
  {
    MutexLock lock(c.mu);
    lock.waitFor(c.wake, std::chrono::seconds(30), [&c]() TERN_REQUIRES(c.mu) { return c.inFlight == 0; });
  }
  {
    // Under the lock: the worker is either before its wait's check or inside the wait.
    MutexLock lock(c.mu);
    c.stopping = true;
  }
  c.wake.notify_all();
  if (c.worker.joinable()) c.worker.join();
  {
    MutexLock lock(c.usersMu);
    lock.waitFor(c.usersDone, std::chrono::seconds(10), [&c]() TERN_REQUIRES(c.usersMu) { return c.users == 0; });
  }
  // Attempts still running here: their outcomes are recorded by the queue only if they
  // finish before the node stops; unacked, they are delivered again after AckWait.
  bool running;
  {
    MutexLock lock(c.mu);
    running = c.inFlight > 0;
  }
  if (running) {
    spdlog::info("cluster: async jobs still running at stop are delivered again elsewhere");
    return;  // the connection stays open for the callbacks (the process is ending)
  }
  for (auto& [name, consumer] : c.consumers) natsSubscription_Destroy(consumer.sub);
  c.consumers.clear();
  kvStore_Destroy(c.jobsKv);
  c.jobsKv = nullptr;
  jsCtx_Destroy(c.js);
  c.js = nullptr;
  closeNats(c.conn, c.natsOpts);
}

}  // namespace tern::cluster
