#include "stream/jetstream_topic_log.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/jetstream_kv.h"
#include "cluster/nats_options.h"
#include "cluster/nats_text.h"
#include "util/names.h"

namespace tern::stream {

using cluster::natsText;

namespace {

constexpr std::string_view kStreamPrefix = "TERN_TOPIC_";
constexpr const char* kSubjectFilter = "tern.topic.>";
constexpr const char* kAppsBucket = "tern_apps";
// Idle heartbeats of a feed's consumer: two missed ones make libnats re-create it (the
// fallback when the re-creation right after a reconnect fails, e.g. JetStream not ready).
constexpr std::chrono::seconds kFeedHeartbeat{2};
// How long the server keeps a read's consumer once nobody pulls from it.
constexpr std::chrono::seconds kReadConsumerIdle{5};
// Updates asked of the server per fetch of a read (16 MB of 64 kB updates).
constexpr size_t kFetchBatch = 256;

int64_t nanos(std::chrono::nanoseconds d) { return static_cast<int64_t>(d.count()); }

std::string streamName(std::string_view topic) { return fmt::format("{}{}", kStreamPrefix, topic); }
std::string subjectOf(std::string_view topic) { return fmt::format("tern.topic.{}", topic); }

TopicBounds boundsOf(const jsStreamState& state) {
  if (state.Msgs == 0) return TopicBounds{state.LastSeq + 1, state.LastSeq};
  return TopicBounds{state.FirstSeq, state.LastSeq};
}

bool streamMissing(natsStatus s, jsErrCode err) {
  return s == NATS_NOT_FOUND || err == JSStreamNotFoundErr;
}

Error invalidTopic(std::string_view topic) {
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("\"{}\" is not a topic name (1 to 64 of A-Z a-z 0-9 _ -)", topic));
}

}  // namespace

struct JetStreamConnection {
  JetStreamOptions opt;
  natsOptions* options = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;

  // tern_apps, bound on first use; released before the connection.
  std::unique_ptr<cluster::LazyBucket> apps =
      std::make_unique<cluster::LazyBucket>(cluster::KvBucketSpec{kAppsBucket, 1});

  ~JetStreamConnection() {
    apps.reset();
    jsCtx_Destroy(js);
    cluster::closeNats(conn, options);
  }

  bool connected() const {
    return conn && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED;
  }

  // kUnavailable unless connected: a request made while libnats reconnects would wait for
  // the whole timeout, and a publish would sit in the reconnect buffer.
  Result<void> ready(std::string_view what) const {
    if (connected()) return {};
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{}: NATS at {} is not connected", what, opt.url));
  }

  // A failed libnats call as an error (cluster/jetstream_kv.h).
  Error failure(std::string_view what, natsStatus s, jsErrCode err = static_cast<jsErrCode>(0)) const {
    return cluster::natsFailure(what, opt.url, s, err);
  }

  Result<kvStore*> appsBucket() {
    if (kvStore* kv = apps->bound()) return kv;
    if (auto ok = ready("apps"); !ok) return ok.error();
    return apps->get(js, "", opt.url);
  }
};

// ---- topics ----

Result<TopicBounds> JetStreamTopicLog::ensureStream(std::string_view topic) {
  const Retention& r = nats_.opt.retention;
  std::string name = streamName(topic);
  std::string subject = subjectOf(topic);
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_LimitsPolicy;
  cfg.MaxMsgs = r.maxMessages == 0 ? -1
                                   : static_cast<int64_t>(std::min<uint64_t>(
                                         r.maxMessages, std::numeric_limits<int64_t>::max()));
  cfg.MaxAge = nanos(r.maxAge);
  cfg.MaxMsgSize = static_cast<int32_t>(
      std::min<size_t>(r.maxPayloadBytes, std::numeric_limits<int32_t>::max()));
  cfg.Discard = js_DiscardOld;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = 1;
  jsStreamInfo* si = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, nats_.js, &cfg, nullptr, &err);
  if (s != NATS_OK && err == JSStreamNameExistErr) {
    // The stream exists with other limits (set by another node or an older retention).
    err = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&si, nats_.js, &cfg, nullptr, &err);
  }
  if (s != NATS_OK) return nats_.failure(fmt::format("creating stream {}", name), s, err);
  TopicBounds b = boundsOf(si->State);
  jsStreamInfo_Destroy(si);
  MutexLock lock(mu_);
  ensured_.emplace(topic);
  return b;
}

Result<uint64_t> JetStreamTopicLog::publish(std::string_view topic, std::string_view payload) {
  if (auto ok = checkPublish(topic, payload, nats_.opt.retention); !ok) return ok.error();
  std::string what = fmt::format("publish to {}", topic);
  if (auto ok = nats_.ready(what); !ok) return ok.error();
  bool ensured;
  {
    MutexLock lock(mu_);
    ensured = ensured_.contains(topic);
  }
  if (!ensured) {
    if (auto b = ensureStream(topic); !b) return b.error();
  }
  std::string subject = subjectOf(topic);
  auto send = [&](jsPubAck** ack, jsErrCode* err) {
    return js_Publish(ack, nats_.js, subject.c_str(), payload.data(),
                      static_cast<int>(payload.size()), nullptr, err);
  };
  jsPubAck* ack = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = send(&ack, &err);
  if (s == NATS_NO_RESPONDERS && ensured && nats_.connected()) {
    // No stream takes the subject any more (deleted behind this node's back): again.
    if (auto b = ensureStream(topic); !b) return b.error();
    s = send(&ack, &err);
  }
  if (s != NATS_OK) return nats_.failure(what, s, err);
  uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

Result<TopicBounds> JetStreamTopicLog::bounds(std::string_view topic) {
  if (!isTopicName(topic)) return invalidTopic(topic);
  std::string what = fmt::format("bounds of {}", topic);
  if (auto ok = nats_.ready(what); !ok) return ok.error();
  std::string name = streamName(topic);
  jsStreamInfo* si = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, nats_.js, name.c_str(), nullptr, &err);
  if (streamMissing(s, err)) return TopicBounds{};
  if (s != NATS_OK) return nats_.failure(what, s, err);
  TopicBounds b = boundsOf(si->State);
  jsStreamInfo_Destroy(si);
  return b;
}

Result<std::vector<TopicInfo>> JetStreamTopicLog::topics() {
  if (auto ok = nats_.ready("list of topics"); !ok) return ok.error();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Stream.Info.SubjectsFilter = kSubjectFilter;
  jsStreamInfoList* list = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_Streams(&list, nats_.js, &jo, &err);
  std::vector<TopicInfo> out;
  if (s == NATS_NOT_FOUND) return out;
  if (s != NATS_OK) return nats_.failure("list of topics", s, err);
  for (int i = 0; i < list->Count; ++i) {
    const jsStreamInfo* si = list->List[i];
    std::string_view name = si->Config && si->Config->Name ? si->Config->Name : "";
    if (!name.starts_with(kStreamPrefix)) continue;
    std::string_view topic = name.substr(kStreamPrefix.size());
    if (isTopicName(topic)) out.push_back(TopicInfo{std::string(topic), boundsOf(si->State)});
  }
  jsStreamInfoList_Destroy(list);
  std::sort(out.begin(), out.end(),
            [](const TopicInfo& a, const TopicInfo& b) { return a.topic < b.topic; });
  return out;
}

namespace {

// The topic's update in a message from one of its consumers.
std::optional<Update> updateOf(std::string_view topic, natsMsg* msg) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) return std::nullopt;
  Update u;
  u.topic = std::string(topic);
  u.seq = meta->Sequence.Stream;
  u.publishedMs = meta->Timestamp / 1000000;
  jsMsgMetaData_Destroy(meta);
  const char* data = natsMsg_GetData(msg);
  if (data) u.payload.assign(data, static_cast<size_t>(natsMsg_GetDataLength(msg)));
  return u;
}

}  // namespace

Result<std::vector<Update>> JetStreamTopicLog::read(std::string_view topic, uint64_t after,
                                                    size_t max) {
  if (!isTopicName(topic)) return invalidTopic(topic);
  std::vector<Update> out;
  if (max == 0) return out;
  auto b = bounds(topic);
  if (!b) return b.error();
  if (after >= b->last) return out;
  uint64_t start = std::max(after + 1, b->first);
  if (start > b->last) return out;
  size_t wanted = static_cast<size_t>(std::min<uint64_t>(max, b->last - start + 1));

  std::string what = fmt::format("read of {}", topic);
  std::string name = streamName(topic);
  std::string subject = subjectOf(topic);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = name.c_str();
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = start;
  so.Config.AckPolicy = js_AckNone;
  so.Config.MemoryStorage = true;
  so.Config.Replicas = 1;
  so.Config.InactiveThreshold = nanos(kReadConsumerIdle);
  natsSubscription* sub = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_PullSubscribe(&sub, nats_.js, subject.c_str(), nullptr, nullptr, &so, &err);
  if (streamMissing(s, err)) return out;
  if (s != NATS_OK) return nats_.failure(what, s, err);

  auto deadline = std::chrono::steady_clock::now() + nats_.opt.requestTimeout;
  Result<std::vector<Update>> result = std::vector<Update>();
  while (out.size() < wanted) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) break;
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = static_cast<int>(std::min(wanted - out.size(), kFetchBatch));
    req.NoWait = true;
    req.Expires = nanos(left);
    natsMsgList list{};
    s = natsSubscription_FetchRequest(&list, sub, &req);
    if (s == NATS_NOT_FOUND || (s == NATS_TIMEOUT && !out.empty())) break;  // no more now
    if (s != NATS_OK) {
      result = nats_.failure(what, s);
      break;
    }
    for (int i = 0; i < list.Count; ++i) {
      if (auto u = updateOf(topic, list.Msgs[i]); u && out.size() < wanted) {
        out.push_back(std::move(*u));
      }
    }
    bool partial = list.Count < req.Batch;
    natsMsgList_Destroy(&list);
    if (partial) break;
  }
  // The server drops the consumer once idle (kReadConsumerIdle): no request to wait for.
  natsSubscription_Destroy(sub);
  if (!result) return result;
  return out;
}

// ---- feeds ----

namespace {

// What a feed's libnats callback shares with the feed. Owned by the feed and by the
// subscription (through the closure, released by the subscription's completion callback),
// so the callback never sees it freed.
struct FeedState {
  std::string topic;
  TopicLog::OnUpdate onUpdate;
  Mutex mu;
  std::condition_variable idle;
  bool closed TERN_GUARDED_BY(mu) = false;   // the feed was destroyed: no more calls
  bool calling TERN_GUARDED_BY(mu) = false;  // onUpdate is running
  std::thread::id caller TERN_GUARDED_BY(mu);  // the thread running it
  uint64_t last TERN_GUARDED_BY(mu) = 0;     // the highest sequence seen
};

void onFeedMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto& state = **static_cast<std::shared_ptr<FeedState>*>(closure);
  std::optional<Update> u = updateOf(state.topic, msg);
  natsMsg_Destroy(msg);
  if (!u) return;
  {
    MutexLock lock(state.mu);
    // A re-created consumer may deliver again what was seen; the first message of a feed
    // is the topic's last update before it started.
    if (state.closed || u->seq <= state.last) return;
    state.last = u->seq;
    state.calling = true;
    state.caller = std::this_thread::get_id();
  }
  state.onUpdate(std::make_shared<const Update>(std::move(*u)));
  {
    MutexLock lock(state.mu);
    state.calling = false;
  }
  state.idle.notify_all();
}

void onFeedComplete(void* closure) { delete static_cast<std::shared_ptr<FeedState>*>(closure); }

class JetStreamFeed final : public TopicLog::Feed {
 public:
  JetStreamFeed(std::shared_ptr<FeedState> state, natsSubscription* sub)
      : state_(std::move(state)), sub_(sub) {}

  ~JetStreamFeed() override {
    {
      FeedState& state = *state_;
      MutexLock lock(state.mu);
      state.closed = true;
      // A callback that destroys its own feed does not wait for itself.
      if (state.caller != std::this_thread::get_id()) {
        lock.wait(state.idle, [&state]() TERN_REQUIRES(state.mu) { return !state.calling; });
      }
    }
    // Removes the interest at once; the server drops the ephemeral consumer when it sees
    // nobody listening, so no request is waited for here.
    natsSubscription_Destroy(sub_);
  }

 private:
  std::shared_ptr<FeedState> state_;
  natsSubscription* sub_;
};

}  // namespace

Result<std::unique_ptr<TopicLog::Feed>> JetStreamTopicLog::follow(std::string_view topic,
                                                                  OnUpdate onUpdate) {
  if (!isTopicName(topic)) return invalidTopic(topic);
  std::string what = fmt::format("follow {}", topic);
  if (auto ok = nats_.ready(what); !ok) return ok.error();
  auto b = ensureStream(topic);
  if (!b) return b.error();

  auto state = std::make_shared<FeedState>();
  state->topic = std::string(topic);
  state->onUpdate = std::move(onUpdate);
  {
    MutexLock lock(state->mu);  // nobody else sees it yet
    state->last = b->last;
  }
  std::string name = streamName(topic);
  std::string subject = subjectOf(topic);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = name.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = std::max<uint64_t>(b->last, 1);
  so.Config.Heartbeat = nanos(kFeedHeartbeat);
  auto* closure = new std::shared_ptr<FeedState>(state);
  natsSubscription* sub = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  natsStatus s = js_Subscribe(&sub, nats_.js, subject.c_str(), onFeedMessage, closure, nullptr,
                              &so, &err);
  if (s != NATS_OK) {
    delete closure;
    return nats_.failure(what, s, err);
  }
  s = natsSubscription_SetOnCompleteCB(sub, onFeedComplete, closure);
  if (s != NATS_OK) {
    // Closed already (the connection is closing): the closure stays, a few bytes.
    natsSubscription_Destroy(sub);
    return nats_.failure(what, s);
  }
  return std::unique_ptr<Feed>(std::make_unique<JetStreamFeed>(std::move(state), sub));
}

// ---- apps ----

namespace {

Error invalidApp(std::string_view name) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("\"{}\" is not an app name", name));
}

// An app from its record: appJson's object, read with the rules of PUT /v1/apps/NAME (the
// key gives the name).
Result<App> appOf(std::string_view name, std::string_view value) {
  auto json = nlohmann::json::parse(value, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return Error(ErrorCode::kIo, fmt::format("app {} in bucket {} is not a JSON object", name,
                                             kAppsBucket));
  }
  json.erase("name");
  auto app = parseAppSpec(name, json.dump());
  if (!app) {
    return Error(ErrorCode::kIo, fmt::format("app {} in bucket {}: {}", name, kAppsBucket,
                                             app.error().message()));
  }
  return app;
}

std::string_view valueOf(kvEntry* e) {
  const char* data = static_cast<const char*>(kvEntry_Value(e));
  return data ? std::string_view(data, static_cast<size_t>(kvEntry_ValueLen(e)))
              : std::string_view();
}

}  // namespace

Result<void> JetStreamAppStore::put(const App& app) {
  if (!isFunctionName(app.name)) return invalidApp(app.name);
  auto kv = nats_.appsBucket();
  if (!kv) return kv.error();
  std::string value = appJson(app);
  natsStatus s = kvStore_Put(nullptr, *kv, app.name.c_str(), value.data(),
                             static_cast<int>(value.size()));
  if (s != NATS_OK) return nats_.failure(fmt::format("storing app {}", app.name), s);
  return {};
}

Result<std::optional<App>> JetStreamAppStore::get(std::string_view name) {
  if (!isFunctionName(name)) return std::optional<App>();
  auto kv = nats_.appsBucket();
  if (!kv) return kv.error();
  std::string key(name);
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, *kv, key.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<App>();
  if (s != NATS_OK) return nats_.failure(fmt::format("reading app {}", name), s);
  auto app = appOf(name, valueOf(e));
  kvEntry_Destroy(e);
  if (!app) return app.error();
  return std::optional<App>(std::move(*app));
}

Result<std::vector<App>> JetStreamAppStore::list() {
  auto kv = nats_.appsBucket();
  if (!kv) return kv.error();
  std::unique_ptr<cluster::KvWatch> w;
  natsStatus s = cluster::KvWatch::open(w, nats_.conn, nats_.js, *kv, {.ignoreDeletes = true});
  if (s != NATS_OK) return nats_.failure("list of apps", s);
  // The watch delivers every current record, then says it has.
  std::vector<App> out;
  auto deadline = std::chrono::steady_clock::now() + nats_.opt.requestTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<cluster::KvChange> e;
    s = left.count() > 0 ? w->next(e, left.count()) : NATS_TIMEOUT;
    if (s != NATS_OK || !e) break;
    if (auto app = appOf(e->key, e->value)) {
      out.push_back(std::move(*app));
    } else {
      spdlog::warn("streams: {}", app.error().message());
    }
  }
  if (s != NATS_OK) return nats_.failure("list of apps", s);
  std::sort(out.begin(), out.end(), [](const App& a, const App& b) { return a.name < b.name; });
  return out;
}

Result<bool> JetStreamAppStore::remove(std::string_view name) {
  if (!isFunctionName(name)) return false;
  auto kv = nats_.appsBucket();
  if (!kv) return kv.error();
  std::string key(name);
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, *kv, key.c_str());
  if (s == NATS_NOT_FOUND) return false;
  kvEntry_Destroy(e);
  if (s == NATS_OK) s = kvStore_Delete(*kv, key.c_str());
  if (s != NATS_OK) return nats_.failure(fmt::format("removing app {}", name), s);
  return true;
}

// ---- the connection ----

namespace {

void onDisconnected(natsConnection* nc, void* closure) {
  if (natsConnection_IsClosed(nc)) return;  // closed by the destructor
  spdlog::warn("streams: disconnected from NATS at {}; reconnecting",
               static_cast<JetStreamConnection*>(closure)->opt.url);
}

void onConnected(natsConnection*, void* closure) {
  spdlog::info("streams: connected to NATS at {}",
               static_cast<JetStreamConnection*>(closure)->opt.url);
}

void onAsyncError(natsConnection*, natsSubscription*, natsStatus s, void*) {
  // Missed heartbeats of a feed's consumer are followed by its re-creation, which libnats
  // retries at the next heartbeat while NATS is away (the disconnection is logged once);
  // anything else, such as a feed whose callback is too slow, is worth an operator's look.
  if (s == NATS_MISSED_HEARTBEAT || s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
      s == NATS_CONNECTION_DISCONNECTED || s == NATS_CONNECTION_CLOSED) {
    spdlog::debug("streams: NATS: {}", natsText(s));
  } else {
    spdlog::warn("streams: NATS: {}", natsText(s));
  }
}

}  // namespace

Result<std::unique_ptr<JetStreamTopics>> JetStreamTopics::connect(JetStreamOptions options) {
  if (options.requestTimeout <= std::chrono::milliseconds(0)) {
    return Error(ErrorCode::kInvalidArgument, "the JetStream request timeout must be positive");
  }
  auto c = std::make_unique<JetStreamConnection>();
  c->opt = std::move(options);
  auto check = [](natsStatus s, std::string_view what) -> Result<void> {
    if (s == NATS_OK) return {};
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS {}: {}", what, natsText(s)));
  };
  auto natsOpts = cluster::makeNatsOptions(
      c->opt.url, c->opt.connectionName.empty() ? "tern-streams" : c->opt.connectionName,
      c->opt.nats);
  if (!natsOpts.ok()) return natsOpts.error();
  c->options = *natsOpts;
  natsOptions* o = c->options;
  natsOptions_SetFailRequestsOnDisconnect(o, true);
  natsOptions_SetRetryOnFailedConnect(o, true, onConnected, c.get());
  natsOptions_SetReconnectedCB(o, onConnected, c.get());
  natsOptions_SetDisconnectedCB(o, onDisconnected, c.get());
  natsOptions_SetErrorHandler(o, onAsyncError, nullptr);
  natsStatus s = natsConnection_Connect(&c->conn, o);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    ErrorCode code = s == NATS_INVALID_ARG || s == NATS_ADDRESS_MISSING
                         ? ErrorCode::kInvalidArgument
                         : ErrorCode::kUnavailable;
    return Error(code, fmt::format("NATS connection to {}: {}", c->opt.url, natsText(s)));
  }
  if (s == NATS_OK) onConnected(c->conn, c.get());
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = c->opt.requestTimeout.count();
  if (!c->opt.jetStreamDomain.empty()) jo.Domain = c->opt.jetStreamDomain.c_str();
  if (auto ok = check(natsConnection_JetStream(&c->js, c->conn, &jo), "JetStream"); !ok) {
    return ok.error();
  }
  return std::unique_ptr<JetStreamTopics>(new JetStreamTopics(std::move(c)));
}

JetStreamTopics::JetStreamTopics(std::unique_ptr<JetStreamConnection> nats)
    : nats_(std::move(nats)), log_(*nats_), apps_(*nats_) {}

JetStreamTopics::~JetStreamTopics() = default;

bool JetStreamTopics::connected() const { return nats_->connected(); }

}  // namespace tern::stream
