#include "cluster/forwarding.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "cluster/nats_text.h"
#include "cluster/payload.h"
#include "util/names.h"

namespace tern::cluster {

using json = nlohmann::json;

namespace {

std::optional<wasm::Outcome> outcomeByName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(wasm::Outcome::kInvalid); ++i) {
    auto o = static_cast<wasm::Outcome>(i);
    if (name == wasm::outcomeName(o)) return o;
  }
  return std::nullopt;
}

}  // namespace

Forwarding::Forwarding(ClusterContext& c, const MemberView& view) : c_(c), view_(view) {
  auto& m = c.deps.metrics;
  forwardedOk_ = &m.counter("tern_cluster_forwarded_total", "Calls forwarded to other nodes, by result",
                            {{"result", "answered"}});
  forwardedFailed_ = &m.counter("tern_cluster_forwarded_total",
                                "Calls forwarded to other nodes, by result", {{"result", "failed"}});
  sentDirect_ = &m.counter("tern_cluster_forward_sends_total", "Forwarded calls sent to a peer, by path",
                           {{"path", "direct"}});
  sentNats_ = &m.counter("tern_cluster_forward_sends_total", "Forwarded calls sent to a peer, by path",
                         {{"path", "nats"}});
  servedForPeers_ = &m.counter("tern_cluster_served_total", "Calls this node ran for other nodes");
}

Forwarding::~Forwarding() {
  if (timeoutThread_.joinable()) timeoutThread_.join();
}

Result<void> Forwarding::listen() {
  if (c_.opt.directListen.empty()) return {};
  auto hp = splitHostPort(c_.opt.directListen);
  if (!hp.ok()) return hp.error();
  PeerLinkOptions po;
  po.maxEnvelopeBytes = c_.opt.maxMessageBytes;
  po.tls = c_.opt.directTls;
  links_ = std::make_unique<PeerLinks>(
      po,
      [this](std::span<const uint8_t> bytes, PeerLinks::Reply reply) {
        return serveCall(bytes, "direct call", [](const Envelope&) { return true; },
                         c_.opt.maxMessageBytes, std::move(reply));
      },
      [this](uint64_t id, std::span<const uint8_t> bytes) { acceptReply(id, bytes); },
      [this](uint64_t id, const std::string& why) {
        exec::InvokeOutput out;
        // Not retried elsewhere: the call may have run on that node.
        out.error = Error(ErrorCode::kUnavailable, why);
        complete(id, std::move(out));
      });
  std::string host = c_.opt.directAdvertiseHost.empty() ? hp->first : c_.opt.directAdvertiseHost;
  if (host == "0.0.0.0" || host == "::") {
    // Peers would connect to themselves: this node opens links to others but takes none.
    spdlog::warn("cluster: not accepting direct links: {} is every interface and no "
                 "--advertise host says which one peers should use",
                 host);
    return {};
  }
  if (auto ok = links_->listen(hp->first, hp->second); !ok.ok()) return ok;
  directAddress_ = host.find(':') != std::string::npos
                       ? fmt::format("[{}]:{}", host, links_->port())
                       : fmt::format("{}:{}", host, links_->port());
  spdlog::info("cluster: direct links ({}) from peers of site {} on {}",
               c_.opt.directTls ? "mutual TLS" : "plain", c_.opt.identity.site, directAddress_);
  return {};
}

Result<void> Forwarding::start() {
  auto requestCb = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    static_cast<Forwarding*>(self)->onRequest(m);
    natsMsg_Destroy(m);
  };
  auto replyCb = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    static_cast<Forwarding*>(self)->onReply(m);
    natsMsg_Destroy(m);
  };
  std::string invokeSubject = "tern.v1.invoke." + c_.opt.nodeId;
  std::string replySubject = "tern.v1.reply." + c_.opt.nodeId + ".*";
  natsStatus s = natsConnection_Subscribe(&invokeSub_, c_.conn, invokeSubject.c_str(), requestCb, this);
  if (s == NATS_OK) {
    s = natsConnection_Subscribe(&replySub_, c_.conn, replySubject.c_str(), replyCb, this);
  }
  if (s != NATS_OK) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS subscribe: {}", natsText(s)));
  }
  timeoutThread_ = std::thread([this] { timeoutLoop(); });
  return {};
}

void Forwarding::stopTaking() {
  if (invokeSub_) natsSubscription_Unsubscribe(invokeSub_);
  if (links_) links_->stop();
}

bool Forwarding::stop() {
  c_.wakeAll();
  if (timeoutThread_.joinable()) timeoutThread_.join();
  bool drained;
  {
    MutexLock lock(servingMu_);
    drained = lock.waitFor(servedAll_, std::chrono::seconds(30),
                           [this]() TERN_REQUIRES(servingMu_) { return serving_ == 0; });
  }
  std::vector<std::function<void(exec::InvokeOutput)>> waiting;
  {
    MutexLock lock(pendingMu_);
    for (auto& [id, p] : pending_) waiting.push_back(std::move(p.done));
    pending_.clear();
  }
  for (auto& done : waiting) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable, "the node is shutting down");
    done(std::move(out));
  }
  return drained;
}

void Forwarding::release() {
  natsSubscription_Destroy(invokeSub_);
  natsSubscription_Destroy(replySub_);
  invokeSub_ = replySub_ = nullptr;
}

void Forwarding::timeoutLoop() {
  while (!c_.stopping) {
    reapTimeouts();
    c_.pause(std::chrono::milliseconds(50));
  }
}

void Forwarding::segmentOn(const std::string& node, const std::string& first, std::string segment,
                           std::function<void(exec::InvokeOutput)> done) {
  if (c_.stopping || !c_.connected) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} cannot be reached: not connected to the cluster", node));
    return done(std::move(out));
  }
  exec::InvokeInput input;
  input.function = first;
  input.body = std::move(segment);
  forward(input, done, CapacityNeed::kAny, node, Oversize::kAnswer, MessageKind::kSegmentRequest);
}

bool Forwarding::offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                          exec::Elsewhere why) {
  if (c_.stopping || !c_.connected || input.hops >= c_.opt.hopLimit) return false;
  CapacityNeed need = why == exec::Elsewhere::kSaturated ? CapacityNeed::kSpare : CapacityNeed::kAny;
  auto members = view_.members(c_.deps.clock());
  auto ranked = rankPeers(members, RouteQuery{input.function, c_.opt.nodeId, c_.opt.identity.site, need, {}});
  if (ranked.empty()) return false;
  // The first choice is the ranking just made (nothing tried yet); retries rank again.
  return forward(input, done, need, std::move(ranked.front()),
                 why == exec::Elsewhere::kSaturated ? Oversize::kDecline : Oversize::kAnswer);
}

void Forwarding::invokeOn(const std::string& node, exec::InvokeInput input,
                             std::function<void(exec::InvokeOutput)> done) {
  if (c_.stopping || !c_.connected) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} cannot be reached: not c_.connected to the cluster", node));
    return done(std::move(out));
  }
  forward(input, done, CapacityNeed::kAny, node, Oversize::kAnswer);
}

bool Forwarding::forward(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                            CapacityNeed need, std::string target, Oversize oversize,
                            MessageKind kind) {
  json header{{"fn", input.function}, {"env", input.env.list()}, {"hops", input.hops + 1}};
  std::string msg = encodeEnvelope(c_.key, Envelope{kind, c_.opt.nodeId, c_.deps.clock(), framePayload(header, input.body)});
  if (msg.size() > static_cast<size_t>(natsConnection_GetMaxPayload(c_.conn)) ||
      msg.size() > c_.opt.maxMessageBytes) {
    if (oversize == Oversize::kDecline) return false;
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kBodyTooLarge,
                      fmt::format("function \"{}\" runs on another node, and the request ({} "
                                  "bytes) is larger than a cluster message may be",
                                  input.function, msg.size()));
    done(std::move(out));
    return true;
  }
  uint64_t id;
  {
    MutexLock lock(pendingMu_);
    id = nextRequest_++;
    Pending& p = pending_[id];
    p.function = input.function;
    p.request = std::make_shared<const std::string>(std::move(msg));
    p.need = need;
    p.done = std::move(done);
    p.pinned = kind == MessageKind::kSegmentRequest;
  }
  sendNext(id, std::move(target));
  return true;
}

std::string Forwarding::directAddressOf(const std::string& target) {
  if (!links_) return {};
  auto m = view_.find(target, c_.deps.clock());
  if (!m || m->info.identity.site != c_.opt.identity.site || m->info.directAddress.empty()) {
    return {};
  }
  auto mine = c_.opt.directTls ? LinkSecurity::kTls : LinkSecurity::kPlain;
  if (m->info.directSecurity != mine) {
    bool first;
    {
      MutexLock lock(mismatchMu_);
      first = mismatched_.insert(target).second;
    }
    if (first) {
      spdlog::warn("cluster: no direct link to node {} ({}): its direct links {} and this "
                   "node's {}; calls to it go through NATS",
                   target, m->info.directAddress,
                   m->info.directSecurity == LinkSecurity::kTls ? "use TLS" : "are plain",
                   mine == LinkSecurity::kTls ? "use TLS" : "are plain");
    }
    return {};
  }
  return m->info.directAddress;
}

void Forwarding::sendNext(uint64_t id, std::string target) {
  std::function<void(exec::InvokeOutput)> failed;
  exec::InvokeOutput out;
  std::shared_ptr<const std::string> request;
  {
    MutexLock lock(pendingMu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    std::vector<std::string> ranked;
    if (target.empty() && !p.pinned) {
      ranked = rankPeers(view_.members(c_.deps.clock()),
                         RouteQuery{p.function, c_.opt.nodeId, c_.opt.identity.site, p.need, p.tried});
    } else if (!target.empty()) {
      ranked.push_back(std::move(target));
    }
    if (ranked.empty() || c_.stopping) {
      out.error = p.lastError ? *p.lastError
                              : Error(ErrorCode::kUnavailable,
                                      fmt::format("no node can run function \"{}\" now", p.function));
      failed = std::move(p.done);
      pending_.erase(it);
    } else {
      p.target = ranked.front();
      p.tried.push_back(p.target);
      p.deadline = std::chrono::steady_clock::now() + c_.opt.forwardTimeout;
      target = p.target;
      request = p.request;
    }
  }
  if (!failed) {
    // A peer of this site with a direct link takes the call on it (one round trip, no
    // nats-server in between); otherwise, or when the link cannot be opened, NATS.
    std::string direct = directAddressOf(target);
    if (!direct.empty() && links_->send(direct, id, *request)) {
      sentDirect_->inc();
      return;
    }
    // `request` is this call's own reference to the envelope: it is published with no
    // lock held, and a reply, a timeout or stop() may settle the call meanwhile.
    std::string subject = "tern.v1.invoke." + target;
    std::string reply = fmt::format("tern.v1.reply.{}.{}", c_.opt.nodeId, id);
    natsStatus s = natsConnection_PublishRequest(c_.conn, subject.c_str(), reply.c_str(),
                                                 request->data(),
                                                 static_cast<int>(request->size()));
    if (s == NATS_OK) {
      sentNats_->inc();
      return;
    }
    MutexLock lock(pendingMu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    out.error = natsError("cannot forward the call", s);
    failed = std::move(it->second.done);
    pending_.erase(it);
  }
  forwardedFailed_->inc();
  failed(std::move(out));
}

void Forwarding::complete(uint64_t id, exec::InvokeOutput out) {
  std::function<void(exec::InvokeOutput)> done;
  {
    MutexLock lock(pendingMu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  (out.error && !out.ran ? forwardedFailed_ : forwardedOk_)->inc();
  done(std::move(out));
}

void Forwarding::onReply(natsMsg* msg) {
  std::string_view subject = natsMsg_GetSubject(msg);
  uint64_t id = 0;
  std::string_view idText = lastToken(subject);
  auto [p, ec] = std::from_chars(idText.data(), idText.data() + idText.size(), id);
  if (ec != std::errc() || p != idText.data() + idText.size()) return;
  if (natsMsg_IsNoResponders(msg)) {
    // The peer is gone (its subscription with it): try the next one.
    {
      MutexLock lock(pendingMu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      it->second.lastError = Error(ErrorCode::kUnavailable,
                                   fmt::format("node {} does not answer", it->second.target));
    }
    sendNext(id);
    return;
  }
  acceptReply(id, std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                            static_cast<size_t>(natsMsg_GetDataLength(msg))));
}

void Forwarding::acceptReply(uint64_t id, std::span<const uint8_t> bytes) {
  {
    auto e = c_.open(bytes, MessageKind::kInvokeReply, "invocation reply", true);
    if (!e) return;
    std::string target;
    {
      MutexLock lock(pendingMu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;  // timed out already
      target = it->second.target;
    }
    if (e->sender != target) {
      c_.reject(Rejection::kForgedIdentity, "invocation reply",
             fmt::format("reply from \"{}\" to a call sent to \"{}\"", e->sender, target));
      return;
    }
    std::string_view raw;
    auto framed = unframePayload(e->payload, raw);
    if (!framed.ok()) {
      c_.reject(Rejection::kMalformed, "invocation reply", framed.error().message());
      return;
    }
    const json& h = *framed;
    exec::InvokeOutput out;
    auto str = [&](const char* k) {
      auto it = h.find(k);
      return it != h.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto num = [&](const char* k) -> int64_t {
      auto it = h.find(k);
      return it != h.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
    };
    out.invocationId = str("id");
    out.node = str("node");
    if (!isNodeName(out.node)) out.node = target;
    out.version = static_cast<uint32_t>(std::clamp<int64_t>(num("version"), 0, UINT32_MAX));
    auto ran = h.find("ran");
    out.ran = ran != h.end() && ran->is_boolean() && ran->get<bool>();
    out.result.exitCode = static_cast<int>(num("exit_code"));
    out.result.durationNs = num("duration_ns");
    out.result.detail = str("detail");
    if (auto o = outcomeByName(str("outcome"))) out.result.outcome = *o;
    out.result.stdoutData.assign(raw.data(), raw.size());
    std::string code = str("code");
    if (!code.empty()) {
      auto c = errorCodeByName(code);
      out.error = Error(c ? *c : ErrorCode::kInternal, str("message"));
    }
    bool retry = !out.ran && out.error &&
                 (out.error->code() == ErrorCode::kSaturated ||
                  out.error->code() == ErrorCode::kNotFound ||
                  out.error->code() == ErrorCode::kUnavailable);
    if (!retry) return complete(id, std::move(out));
    MutexLock lock(pendingMu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    it->second.lastError = *out.error;
  }
  sendNext(id);
}

void Forwarding::onRequest(natsMsg* msg) {
  std::string replyTo = natsMsg_GetReply(msg) ? natsMsg_GetReply(msg) : "";
  // The reply subject names the caller: a call must ask for its reply on its own subjects.
  auto checkSender = [&](const Envelope& e) {
    if (std::string_view(replyTo).starts_with("tern.v1.reply." + e.sender + ".")) return true;
    c_.reject(Rejection::kForgedIdentity, "forwarded call",
           fmt::format("call from \"{}\" asks for its reply on \"{}\"", e.sender, replyTo));
    return false;
  };
  serveCall(std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                      static_cast<size_t>(natsMsg_GetDataLength(msg))),
            "forwarded call", checkSender,
            std::min(c_.opt.maxMessageBytes, static_cast<size_t>(natsConnection_GetMaxPayload(c_.conn))),
            [this, replyTo](std::string m) {
              natsConnection_Publish(c_.conn, replyTo.c_str(), m.data(), static_cast<int>(m.size()));
            });
}

bool Forwarding::serveCall(std::span<const uint8_t> bytes, std::string_view where,
                              const std::function<bool(const Envelope&)>& checkSender,
                              size_t replyLimit, std::function<void(std::string)> send) {
  auto e = c_.open(bytes, MessageKind::kInvokeRequest, where, true, MessageKind::kSegmentRequest);
  if (!e) return false;
  const bool segment = e->kind == MessageKind::kSegmentRequest;
  if (e->sender == c_.opt.nodeId) {
    c_.reject(Rejection::kForgedIdentity, where, "a call that claims to come from this node");
    return false;
  }
  if (!checkSender(*e)) return false;
  std::string_view raw;
  exec::InvokeInput input;
  auto framed = unframePayload(e->payload, raw);
  bool ok = framed.ok();
  if (ok) {
    const json& h = *framed;
    auto fn = h.find("fn");
    auto env = h.find("env");
    auto hops = h.find("hops");
    ok = fn != h.end() && fn->is_string() && env != h.end() && env->is_array() &&
         hops != h.end() && hops->is_number_unsigned() && hops->get<uint64_t>() <= 64;
    if (ok) {
      input.function = fn->get<std::string>();
      input.hops = static_cast<uint32_t>(hops->get<uint64_t>());
      for (const auto& v : *env) {
        if (!v.is_string()) {
          ok = false;
          break;
        }
        input.env.add(v.get_ref<const std::string&>());
      }
    }
  }
  if (!ok) {
    c_.reject(Rejection::kMalformed, where, "bad framing or header");
    return false;
  }
  input.body.assign(raw.data(), raw.size());
  servedForPeers_->inc();
  {
    MutexLock lock(servingMu_);
    ++serving_;
  }
  auto answer = [this, replyLimit, send = std::move(send)](exec::InvokeOutput out) {
    json h{{"id", out.invocationId},
           {"node", out.node.empty() ? c_.opt.nodeId : out.node},
           {"version", out.version},
           {"ran", out.ran},
           {"outcome", wasm::outcomeName(out.result.outcome)},
           {"exit_code", out.result.exitCode},
           {"duration_ns", out.result.durationNs},
           {"detail", out.result.detail}};
    if (out.error) {
      h["code"] = errorKind(out.error->code()).name;
      h["message"] = out.error->message();
    }
    std::string msg = encodeEnvelope(c_.key, Envelope{MessageKind::kInvokeReply, c_.opt.nodeId,
                                                   c_.deps.clock(),
                                                   framePayload(h, out.result.stdoutData)});
    if (msg.size() > replyLimit) {
      h["code"] = errorKind(ErrorCode::kOutputLimit).name;
      h["message"] = "the function's output is larger than a cluster message may be";
      msg = encodeEnvelope(c_.key, Envelope{MessageKind::kInvokeReply, c_.opt.nodeId, c_.deps.clock(),
                                         framePayload(h, "")});
    }
    send(std::move(msg));
    MutexLock lock(servingMu_);
    if (--serving_ == 0) servedAll_.notify_all();
  };
  if (!segment) {
    c_.deps.invoker.invoke(std::move(input), std::move(answer));
  } else if (c_.deps.segments) {
    c_.deps.segments(std::move(input.body), std::move(answer));
  } else {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable, "this node does not run fused units");
    answer(std::move(out));
  }
  return true;
}

void Forwarding::reapTimeouts() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::function<void(exec::InvokeOutput)>, std::string>> expired;
  {
    MutexLock lock(pendingMu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline != std::chrono::steady_clock::time_point{} &&
          it->second.deadline < now) {
        expired.emplace_back(std::move(it->second.done), it->second.target);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [done, target] : expired) {
    forwardedFailed_->inc();
    exec::InvokeOutput out;
    // Not retried elsewhere: the call may have run on that node.
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} did not answer a forwarded call within {} ms", target,
                                  c_.opt.forwardTimeout.count()));
    done(std::move(out));
  }
}

}  // namespace tern::cluster
