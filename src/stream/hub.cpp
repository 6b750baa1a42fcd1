#include "stream/hub.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "stream/frames.h"
#include "util/thread_annotations.h"
#include "util/token_bucket.h"

namespace tern::stream {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// An update as its subscribers get it unchanged: the data frame's tail is rendered once
// for all of them.
struct Delivery {
  std::shared_ptr<const Update> update;
  std::string tail;
};
using DeliveryPtr = std::shared_ptr<const Delivery>;

DeliveryPtr makeDelivery(std::shared_ptr<const Update> u) {
  std::string tail = dataFrameTail(u->seq, u->topic, payloadValue(u->payload));
  return std::make_shared<const Delivery>(Delivery{std::move(u), std::move(tail)});
}

class StreamState;
class ConnectionImpl;

// The streams following one topic on this node, and the topic's one feed.
struct TopicEntry {
  TopicEntry(std::string t, asio::io_context& io) : topic(std::move(t)), strand(asio::make_strand(io)) {}
  const std::string topic;
  // The fan-out of this topic's updates, in order, off the log's thread: a publish returns
  // once its update is stored, whatever the number of streams.
  asio::strand<asio::io_context::executor_type> strand;
  Mutex mu;
  std::vector<std::shared_ptr<StreamState>> streams TERN_GUARDED_BY(mu);
  std::unique_ptr<TopicLog::Feed> feed TERN_GUARDED_BY(mu);
  std::atomic<uint64_t> updates{0};
};

}  // namespace

struct Hub::Impl {
  Impl(HubDeps d, HubOptions o)
      : deps(d),
        options(o),
        feedUpdates(d.metrics.counter("tern_stream_feed_updates_total",
                                      "Updates that topic feeds brought to this node (once per "
                                      "update and node, whatever the number of streams)")),
        deliveries(d.metrics.counter("tern_stream_deliveries_total",
                                     "Data frames sent to devices")),
        filtered(d.metrics.counter("tern_stream_filtered_total",
                                   "Updates an app's processor chose not to deliver")) {}

  Counter& dropped(std::string_view why) {
    return deps.metrics.counter("tern_stream_dropped_total",
                                "Updates a best-effort stream did not deliver",
                                {{"reason", std::string(why)}});
  }
  Counter& terminated(std::string_view why) {
    return deps.metrics.counter("tern_stream_terminated_total", "Streams and connections ended by the node",
                                {{"reason", std::string(why)}});
  }

  Result<void> join(const std::shared_ptr<StreamState>& s);
  void leave(const std::shared_ptr<StreamState>& s);
  void onUpdate(const std::weak_ptr<TopicEntry>& weak, std::shared_ptr<const Update> u);

  HubDeps deps;
  HubOptions options;
  std::vector<std::thread> threads;
  Counter& feedUpdates;
  Counter& deliveries;
  Counter& filtered;

  mutable Mutex mu;  // feeds and connections; never held across a call out
  std::map<std::string, std::shared_ptr<TopicEntry>, std::less<>> feeds TERN_GUARDED_BY(mu);
  std::list<std::weak_ptr<ConnectionImpl>> connections TERN_GUARDED_BY(mu);
  std::atomic<size_t> streamCount{0};
  bool stopped TERN_GUARDED_BY(mu) = false;
  // Last, so that it goes first: handlers still queued hold streams, whose destructors use
  // the members above.
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{asio::make_work_guard(io)};
};

namespace {

// One device stream: everything below runs on its strand.
class StreamState : public std::enable_shared_from_this<StreamState> {
 public:
  StreamState(Hub::Impl& hub, std::weak_ptr<Hub::Impl> hubWeak, std::weak_ptr<ConnectionImpl> conn,
              std::shared_ptr<Outlet> outlet, SubscribeFrame f)
      : hub_(hub),
        hubWeak_(std::move(hubWeak)),
        conn_(std::move(conn)),
        outlet_(std::move(outlet)),
        strand_(asio::make_strand(hub.io)),
        timer_(strand_),
        frame_(std::move(f)) {
    hub_.streamCount.fetch_add(1);
  }
  ~StreamState() { hub_.streamCount.fetch_sub(1); }

  uint64_t id() const { return frame_.stream; }
  const std::string& topic() const { return frame_.topic; }

  void post(std::function<void(StreamState&)> fn) {
    asio::post(strand_, [self = shared_from_this(), fn = std::move(fn)] { fn(*self); });
  }

  void start();
  void offer(const DeliveryPtr& d);
  void addCredits(uint64_t n) {
    credits_ = credits_ ? std::min<uint64_t>(*credits_ + n, uint64_t{1} << 53) : n;
    pump();
  }
  void pump();
  // The topic's feed came up after this stream read the topic's bounds: updates published
  // in between reached no feed, so an at-least-once stream looks at the log again.
  void feedOpened() {
    if (ended_ || !started_ || !atLeastOnce()) return;
    auto b = hub_.deps.log.bounds(frame_.topic);
    if (b.ok()) knownLast_ = std::max(knownLast_, b->last);
    pump();
  }
  // Ends the stream; with `notify` the device gets a terminate frame.
  void end(std::string_view reason, std::string_view message, bool notify);

  std::shared_ptr<TopicEntry> entry;  // set by join, on the strand

 private:
  bool emit(uint64_t seq, const std::string& tail);
  bool readBack();
  void process(const DeliveryPtr& d);
  void onProcessed(const DeliveryPtr& d, exec::InvokeOutput out);
  void wakeIn(int64_t ns);
  bool atLeastOnce() const { return frame_.guarantee == Guarantee::kAtLeastOnce; }
  void drop(std::string_view why, size_t n = 1) { hub_.dropped(why).inc(n); }

  Hub::Impl& hub_;
  std::weak_ptr<Hub::Impl> hubWeak_;  // for completions that may come after the hub stopped
  std::weak_ptr<ConnectionImpl> conn_;
  std::shared_ptr<Outlet> outlet_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  const SubscribeFrame frame_;

  App app_;
  TokenBucket bucket_;
  bool started_ = false;
  bool ended_ = false;
  bool busy_ = false;        // a processor call is running
  bool timerArmed_ = false;
  uint64_t cursor_ = 0;      // the last sequence handled (delivered, filtered or dropped)
  uint64_t knownLast_ = 0;   // the newest sequence the feed or the log has shown
  std::optional<uint64_t> credits_;
  std::deque<DeliveryPtr> pending_;
  // An at-least-once frame that could not go yet (rate limit or a congested connection).
  std::optional<std::pair<uint64_t, std::string>> held_;
  json state_;               // the processor's per-subscriber state
};

class ConnectionImpl : public Connection, public std::enable_shared_from_this<ConnectionImpl> {
 public:
  ConnectionImpl(std::weak_ptr<Hub::Impl> hub, Hub::Impl& raw, std::shared_ptr<Outlet> outlet)
      : hub_(std::move(hub)),
        raw_(raw),
        outlet_(std::move(outlet)),
        subscribes_(raw.options.subscribesPerSecond, raw.options.subscribeBurst) {}

  void onFrame(std::string text) override;
  void onDrained() override {
    for (auto& s : snapshot()) s->post([](StreamState& st) { st.pump(); });
  }
  void onClosed() override {
    std::map<uint64_t, std::shared_ptr<StreamState>> streams;
    {
      MutexLock lock(mu_);
      closed_ = true;
      streams.swap(streams_);
    }
    for (auto& [id, s] : streams) s->post([](StreamState& st) { st.end("", "", false); });
  }

  // Ends the connection with a terminate frame.
  void closeWith(std::string_view reason, std::string_view message) {
    if (auto hub = hub_.lock()) hub->terminated(reason).inc();
    outlet_->close(terminateFrame(std::nullopt, reason, message), reason);
    onClosed();
  }

  // Takes a stream that ended off this connection (if it is still the one under its id).
  void forget(const StreamState* s) {
    MutexLock lock(mu_);
    auto it = streams_.find(s->id());
    if (it != streams_.end() && it->second.get() == s) streams_.erase(it);
  }

  size_t streamCount() const {
    MutexLock lock(mu_);
    return streams_.size();
  }

 private:
  std::vector<std::shared_ptr<StreamState>> snapshot() {
    std::vector<std::shared_ptr<StreamState>> out;
    MutexLock lock(mu_);
    for (auto& [id, s] : streams_) out.push_back(s);
    return out;
  }
  void refuse(uint64_t stream, std::string_view reason, std::string_view message) {
    raw_.terminated(reason).inc();
    outlet_->send(terminateFrame(stream, reason, message));
  }
  void subscribe(SubscribeFrame f);

  std::weak_ptr<Hub::Impl> hub_;
  Hub::Impl& raw_;
  std::shared_ptr<Outlet> outlet_;
  mutable Mutex mu_;
  std::map<uint64_t, std::shared_ptr<StreamState>> streams_ TERN_GUARDED_BY(mu_);
  TokenBucket subscribes_ TERN_GUARDED_BY(mu_);
  bool closed_ TERN_GUARDED_BY(mu_) = false;
};

void ConnectionImpl::onFrame(std::string text) {
  auto hub = hub_.lock();
  if (!hub) return;
  auto parsed = parseDeviceFrame(text);
  if (auto* err = std::get_if<FrameError>(&parsed)) {
    if (!err->stream) return closeWith(reason::kBadFrame, err->message);
    std::shared_ptr<StreamState> s;
    {
      MutexLock lock(mu_);
      if (auto it = streams_.find(*err->stream); it != streams_.end()) s = it->second;
    }
    if (s) {
      return s->post([m = err->message](StreamState& st) { st.end(reason::kBadFrame, m, true); });
    }
    return refuse(*err->stream, reason::kBadFrame, err->message);
  }
  auto& frame = std::get<DeviceFrame>(parsed);
  if (auto* sub = std::get_if<SubscribeFrame>(&frame)) return subscribe(std::move(*sub));
  uint64_t id = std::visit([](const auto& f) { return f.stream; }, frame);
  std::shared_ptr<StreamState> s;
  {
    MutexLock lock(mu_);
    if (auto it = streams_.find(id); it != streams_.end()) s = it->second;
  }
  if (!s) return;  // it ended already; the device has its terminate frame
  if (auto* c = std::get_if<CreditsFrame>(&frame)) {
    return s->post([n = c->credits](StreamState& st) { st.addCredits(n); });
  }
  s->post([](StreamState& st) { st.end(reason::kCancelled, "cancelled by the device", true); });
}

void ConnectionImpl::subscribe(SubscribeFrame f) {
  enum class Verdict { kOpen, kDuplicate, kFlood, kConnectionFull, kNodeFull } verdict;
  std::shared_ptr<StreamState> s;
  {
    MutexLock lock(mu_);
    if (closed_) return;
    if (!subscribes_.take(steadyNs())) {
      verdict = Verdict::kFlood;
    } else if (auto it = streams_.find(f.stream); it != streams_.end()) {
      verdict = Verdict::kDuplicate;
      s = std::move(it->second);
      streams_.erase(it);
    } else if (streams_.size() >= raw_.options.maxStreamsPerConnection) {
      verdict = Verdict::kConnectionFull;
    } else if (raw_.streamCount.load() >= raw_.options.maxStreams) {
      verdict = Verdict::kNodeFull;
    } else {
      verdict = Verdict::kOpen;
      s = std::make_shared<StreamState>(raw_, hub_, weak_from_this(), outlet_, f);
      streams_[f.stream] = s;
    }
  }
  switch (verdict) {
    case Verdict::kOpen:
      return s->post([](StreamState& st) { st.start(); });
    case Verdict::kDuplicate: {
      std::string m = fmt::format("stream {} was already open on this connection", f.stream);
      s->post([m](StreamState& st) { st.end(reason::kDuplicateStream, m, false); });
      return refuse(f.stream, reason::kDuplicateStream, m);
    }
    case Verdict::kFlood:
      return closeWith(reason::kSubscribeFlood,
                       fmt::format("more than {} subscribes per second", raw_.options.subscribesPerSecond));
    case Verdict::kConnectionFull:
      return refuse(f.stream, reason::kTooManyStreams,
                    fmt::format("a connection carries at most {} streams", raw_.options.maxStreamsPerConnection));
    case Verdict::kNodeFull:
      return refuse(f.stream, reason::kTooManyStreams,
                    fmt::format("this node carries at most {} streams", raw_.options.maxStreams));
  }
}

void StreamState::start() {
  if (ended_) return;
  if (!isTopicName(frame_.topic)) {
    return end(reason::kBadTopic,
               "a topic name is 1 to 64 of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit", true);
  }
  if (!frame_.app.empty()) {
    auto app = hub_.deps.apps.get(frame_.app);
    if (!app.ok()) return end(reason::kUnavailable, app.error().message(), true);
    if (!*app) return end(reason::kUnknownApp, fmt::format("no app named \"{}\"", frame_.app), true);
    app_ = std::move(**app);
  }
  double rate = app_.maxPerSecond;
  if (auto p = frame_.params.find("max_per_second"); p != frame_.params.end() && p->is_number()) {
    // A subscriber may only lower it, to one update in about 17 minutes at the least.
    double asked = p->get<double>();
    if (asked > 0) {
      asked = std::max(asked, 1e-3);
      if (rate <= 0 || asked < rate) rate = asked;
    }
  }
  if (rate > 0) bucket_ = TokenBucket(rate, rate);
  credits_ = frame_.credits;

  if (auto joined = hub_.join(shared_from_this()); !joined.ok()) {
    return end(reason::kUnavailable, joined.error().message(), true);
  }
  auto bounds = hub_.deps.log.bounds(frame_.topic);
  if (!bounds.ok()) return end(reason::kUnavailable, bounds.error().message(), true);
  cursor_ = bounds->last;
  if (atLeastOnce() && frame_.resumeAfter) {
    uint64_t after = *frame_.resumeAfter;
    if (after > bounds->last) {
      return end(reason::kBadFrame,
                 fmt::format("resume_after {} is beyond the last update of \"{}\" ({})", after,
                             frame_.topic, bounds->last),
                 true);
    }
    if (after + 1 < bounds->first) {
      return end(reason::kResumeExpired,
                 fmt::format("updates {} to {} of \"{}\" are no longer retained (the oldest "
                             "retained is {})",
                             after + 1, bounds->first - 1, frame_.topic, bounds->first),
                 true);
    }
    cursor_ = after;
  }
  knownLast_ = std::max(knownLast_, bounds->last);
  started_ = true;
  outlet_->send(subscribedFrame(frame_.stream, frame_.topic, bounds->first, bounds->last));
  pump();
}

void StreamState::offer(const DeliveryPtr& d) {
  if (ended_) return;
  uint64_t seq = d->update->seq;
  if (atLeastOnce()) {
    knownLast_ = std::max(knownLast_, seq);
    if (!started_) return;  // start() reads the bounds; the rest comes back from the log
    uint64_t expected = pending_.empty() ? cursor_ + 1 : pending_.back()->update->seq + 1;
    // Updates that do not follow on are read back from the log when their turn comes.
    if (seq == expected && pending_.size() < hub_.options.maxPending) pending_.push_back(d);
  } else {
    if (pending_.size() >= hub_.options.maxPending) return drop("queue_full");
    pending_.push_back(d);
  }
  pump();
}

void StreamState::pump() {
  while (!ended_ && started_ && !busy_) {
    if (held_) {
      auto [seq, tail] = std::move(*held_);
      held_.reset();
      if (!emit(seq, tail)) return;
      continue;
    }
    if (credits_ && *credits_ == 0) {
      if (!atLeastOnce() && !pending_.empty()) {
        drop("no_credits", pending_.size());
        cursor_ = pending_.back()->update->seq;
        pending_.clear();
      }
      return;
    }
    if (atLeastOnce()) {
      while (!pending_.empty() && pending_.front()->update->seq <= cursor_) pending_.pop_front();
      if (!pending_.empty() && pending_.front()->update->seq != cursor_ + 1) pending_.clear();
      if (pending_.empty()) {
        if (knownLast_ <= cursor_ || !readBack()) return;
        continue;
      }
    } else if (pending_.empty()) {
      return;
    }
    DeliveryPtr d = std::move(pending_.front());
    pending_.pop_front();
    if (!app_.processor.empty()) return process(d);
    if (!emit(d->update->seq, d->tail)) return;
  }
}

// Reads the updates after the cursor back from the log; false when there are none to go on
// with (the stream may have ended).
bool StreamState::readBack() {
  auto got = hub_.deps.log.read(frame_.topic, cursor_, hub_.options.catchUpBatch);
  if (!got.ok()) {
    end(reason::kUnavailable, got.error().message(), true);
    return false;
  }
  if (got->empty() || got->front().seq != cursor_ + 1) {
    uint64_t first = got->empty() ? knownLast_ + 1 : got->front().seq;
    if (first > cursor_ + 1) {
      end(reason::kResumeExpired,
          fmt::format("updates {} to {} of \"{}\" left the retention before this stream took them",
                      cursor_ + 1, first - 1, frame_.topic),
          true);
      return false;
    }
    return false;
  }
  for (auto& u : *got) {
    knownLast_ = std::max(knownLast_, u.seq);
    pending_.push_back(makeDelivery(std::make_shared<const Update>(std::move(u))));
  }
  return true;
}

// Sends one data frame, within the rate limit and the connection's budget. False when the
// stream must wait (at-least-once: the frame is held) or ended.
bool StreamState::emit(uint64_t seq, const std::string& tail) {
  if (!bucket_.take(steadyNs())) {
    if (!atLeastOnce()) {
      drop("rate_limited");
      cursor_ = seq;
      return true;
    }
    held_.emplace(seq, tail);
    wakeIn(bucket_.waitNs(steadyNs()));
    return false;
  }
  if (!outlet_->send(dataFrame(frame_.stream, tail))) {
    if (!atLeastOnce()) {
      drop("congested");
      cursor_ = seq;
      return true;
    }
    held_.emplace(seq, tail);  // sent again when the connection drains (onDrained)
    return false;
  }
  hub_.deliveries.inc();
  if (credits_) --*credits_;
  cursor_ = seq;
  return true;
}

void StreamState::process(const DeliveryPtr& d) {
  busy_ = true;
  const Update& u = *d->update;
  json input{{"update", {{"topic", u.topic}, {"seq", u.seq}, {"payload", payloadValue(u.payload)}}},
             {"params", frame_.params},
             {"state", state_}};
  exec::InvokeInput in;
  in.function = app_.processor;
  in.body = input.dump(-1, ' ', false, json::error_handler_t::replace);
  in.env.add("TERN_STREAM_APP", app_.name);
  in.env.add("TERN_STREAM_TOPIC", u.topic);
  auto done = [weak = weak_from_this(), hub = hubWeak_, d](exec::InvokeOutput out) {
    auto alive = hub.lock();
    auto self = weak.lock();
    if (!alive || !self) return;
    asio::post(self->strand_, [self, d, out = std::move(out)]() mutable {
      self->onProcessed(d, std::move(out));
    });
  };
  // Off the hub's threads: a processor that runs away holds a worker, not a stream thread.
  hub_.deps.runProcessor([&invoker = hub_.deps.invoker, in = std::move(in), done = std::move(done)]() mutable {
    invoker.invoke(std::move(in), std::move(done));
  });
}

void StreamState::onProcessed(const DeliveryPtr& d, exec::InvokeOutput out) {
  busy_ = false;
  if (ended_) return;
  uint64_t seq = d->update->seq;
  if (out.error) {
    if (out.error->code() == ErrorCode::kSaturated) {
      if (!atLeastOnce()) {
        drop("saturated");
        cursor_ = seq;
        return pump();
      }
      pending_.push_front(d);
      return wakeIn(std::chrono::nanoseconds(hub_.options.retryAfter).count());
    }
    return end(reason::kProcessorFailed,
               fmt::format("processor \"{}\" failed on update {}: {}", app_.processor, seq,
                           out.error->message()),
               true);
  }
  json result = parseJsonBounded(out.result.stdoutData);
  auto deliver = result.is_object() ? result.find("deliver") : result.end();
  if (!result.is_object() || deliver == result.end() || !deliver->is_boolean()) {
    return end(reason::kProcessorFailed,
               fmt::format("processor \"{}\" answered update {} without a JSON object with a "
                           "boolean \"deliver\"",
                           app_.processor, seq),
               true);
  }
  if (auto st = result.find("state"); st != result.end()) {
    if (st->dump().size() > kMaxParamsBytes * 4) {
      return end(reason::kProcessorFailed,
                 fmt::format("processor \"{}\" kept a state larger than {} bytes", app_.processor,
                             kMaxParamsBytes * 4),
                 true);
    }
    state_ = std::move(*st);
  }
  if (!deliver->get<bool>()) {
    hub_.filtered.inc();
    cursor_ = seq;
    return pump();
  }
  auto replaced = result.find("payload");
  std::string tail = replaced != result.end() ? dataFrameTail(seq, frame_.topic, *replaced) : d->tail;
  if (emit(seq, tail)) pump();
}

void StreamState::wakeIn(int64_t ns) {
  if (timerArmed_) return;
  timerArmed_ = true;
  timer_.expires_after(std::chrono::nanoseconds(std::max<int64_t>(ns, 1000000)));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->timerArmed_ = false;
    if (!ec) self->pump();
  });
}

void StreamState::end(std::string_view why, std::string_view message, bool notify) {
  if (ended_) return;
  ended_ = true;
  timer_.cancel();
  pending_.clear();
  held_.reset();
  auto self = shared_from_this();
  hub_.leave(self);
  if (auto conn = conn_.lock()) conn->forget(this);
  if (notify) {
    hub_.terminated(why).inc();
    outlet_->send(terminateFrame(frame_.stream, why, message));
  }
}

}  // namespace

Result<void> Hub::Impl::join(const std::shared_ptr<StreamState>& s) {
  std::shared_ptr<TopicEntry> e;
  bool open = false;
  {
    MutexLock lock(mu);
    if (stopped) return Error(ErrorCode::kUnavailable, "the node is stopping");
    auto& slot = feeds[s->topic()];
    if (!slot) {
      slot = std::make_shared<TopicEntry>(s->topic(), io);
      open = true;
    }
    e = slot;
    MutexLock entryLock(e->mu);
    e->streams.push_back(s);
  }
  s->entry = e;
  if (!open) return {};
  // The one feed of this topic on this node, opened outside the locks (a network call in a
  // cluster).
  std::weak_ptr<TopicEntry> weak = e;
  auto feed = deps.log.follow(e->topic, [this, weak](std::shared_ptr<const Update> u) {
    onUpdate(weak, std::move(u));
  });
  std::vector<std::shared_ptr<StreamState>> orphans, joined;
  std::unique_ptr<TopicLog::Feed> unused;
  {
    MutexLock lock(mu);
    MutexLock entryLock(e->mu);
    if (!feed.ok()) {
      if (auto it = feeds.find(e->topic); it != feeds.end() && it->second == e) feeds.erase(it);
      orphans.swap(e->streams);
    } else if (e->streams.empty()) {
      unused = std::move(*feed);  // every stream left while it opened
    } else {
      e->feed = std::move(*feed);
      joined = e->streams;
    }
  }
  unused.reset();
  for (auto& j : joined) {
    if (j != s) j->post([](StreamState& st) { st.feedOpened(); });
  }
  if (!feed.ok()) {
    for (auto& o : orphans) {
      if (o != s) o->post([m = feed.error().message()](StreamState& st) { st.end(reason::kUnavailable, m, true); });
    }
    return feed.error();
  }
  return {};
}

void Hub::Impl::leave(const std::shared_ptr<StreamState>& s) {
  auto e = std::move(s->entry);
  if (!e) return;
  std::unique_ptr<TopicLog::Feed> closing;
  {
    MutexLock lock(mu);
    MutexLock entryLock(e->mu);
    auto it = std::find(e->streams.begin(), e->streams.end(), s);
    if (it != e->streams.end()) {
      *it = std::move(e->streams.back());
      e->streams.pop_back();
    }
    if (e->streams.empty()) {
      if (auto f = feeds.find(e->topic); f != feeds.end() && f->second == e) feeds.erase(f);
      closing = std::move(e->feed);
    }
  }
  // Closed outside the locks: a feed's destructor waits for a delivery in progress.
}

void Hub::Impl::onUpdate(const std::weak_ptr<TopicEntry>& weak, std::shared_ptr<const Update> u) {
  auto e = weak.lock();
  if (!e) return;
  feedUpdates.inc();
  e->updates.fetch_add(1, std::memory_order_relaxed);
  asio::post(e->strand, [e, u = std::move(u)]() mutable {
    DeliveryPtr d = makeDelivery(std::move(u));
    MutexLock lock(e->mu);
    for (auto& s : e->streams) s->post([d](StreamState& st) { st.offer(d); });
  });
}

Hub::Hub(HubDeps deps, HubOptions options) : impl_(std::make_shared<Impl>(deps, options)) {
  for (unsigned i = 0; i < std::max(1u, options.threads); ++i) {
    impl_->threads.emplace_back([io = &impl_->io] { io->run(); });
  }
}

Hub::~Hub() { stop(); }

std::shared_ptr<Connection> Hub::connect(std::shared_ptr<Outlet> outlet) {
  auto conn = std::make_shared<ConnectionImpl>(impl_, *impl_, std::move(outlet));
  {
    MutexLock lock(impl_->mu);
    if (!impl_->stopped) {
      // Connections that are gone are swept as new ones come.
      if (impl_->connections.size() >= 64 && impl_->connections.size() % 64 == 0) {
        impl_->connections.remove_if([](const auto& w) { return w.expired(); });
      }
      impl_->connections.push_back(conn);
      return conn;
    }
  }
  conn->closeWith(reason::kShutdown, "the node is stopping");
  return conn;
}

void Hub::stop() {
  Impl& s = *impl_;
  std::vector<std::shared_ptr<ConnectionImpl>> live;
  {
    MutexLock lock(s.mu);
    if (s.stopped) return;
    s.stopped = true;
    for (auto& w : s.connections) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
    s.connections.clear();
  }
  for (auto& c : live) c->closeWith(reason::kShutdown, "the node is stopping");
  live.clear();
  s.work.reset();
  for (auto& t : s.threads) t.join();
  s.io.stop();
  s.threads.clear();
  std::map<std::string, std::shared_ptr<TopicEntry>, std::less<>> feeds;
  {
    MutexLock lock(s.mu);
    feeds.swap(s.feeds);
  }
  for (auto& [topic, e] : feeds) {
    std::unique_ptr<TopicLog::Feed> feed;
    {
      MutexLock lock(e->mu);
      feed = std::move(e->feed);
      e->streams.clear();
    }
  }
}

json Hub::statsJson() const {
  const Impl& s = *impl_;
  json topics = json::array();
  size_t connections = 0;
  MutexLock lock(s.mu);
  for (const auto& w : s.connections) connections += w.expired() ? 0 : 1;
  for (const auto& [topic, e] : s.feeds) {
    MutexLock entryLock(e->mu);
    topics.push_back({{"topic", topic}, {"streams", e->streams.size()}, {"feed_updates", e->updates.load()}});
  }
  return json{{"connections", connections},
              {"streams", s.streamCount.load()},
              {"feed_updates", s.feedUpdates.value()},
              {"deliveries", s.deliveries.value()},
              {"filtered", s.filtered.value()},
              {"topics", std::move(topics)}};
}

}  // namespace tern::stream
