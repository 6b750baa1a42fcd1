#include "cluster/membership.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "cluster/envelope.h"
#include "util/names.h"

namespace tern::cluster {

using json = nlohmann::json;

const char* tierName(Tier t) { return t == Tier::kCloud ? "cloud" : "edge"; }

Result<Tier> parseTier(std::string_view s) {
  if (s == "edge") return Tier::kEdge;
  if (s == "cloud") return Tier::kCloud;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("tier must be edge or cloud, got \"{}\"", s));
}

Result<std::pair<std::string, uint16_t>> splitHostPort(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("address must be HOST:PORT, got \"{}\": {}", s, why));
  };
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("no port");
  std::string_view host = s.substr(0, colon), p = s.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || port > 65535) {
    return bad("the port must be 0..65535");
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad("unbalanced brackets");
    host = host.substr(1, host.size() - 2);
  }
  return std::pair<std::string, uint16_t>(std::string(host), static_cast<uint16_t>(port));
}

const char* memberStateName(MemberState s) {
  switch (s) {
    case MemberState::kSelf: return "self";
    case MemberState::kAlive: return "alive";
    case MemberState::kSuspect: return "suspect";
  }
  return "unknown";
}

std::string encodeNodeInfo(const NodeInfo& n) {
  json fns = json::object();
  for (const auto& [name, rate] : n.functions) fns[name] = rate;
  // A TLS link's address goes in a field of its own: a node that knows only "direct"
  // (plain links) then sees none and never sends a TLS node plain frames.
  bool tls = n.directSecurity == LinkSecurity::kTls;
  return json{{"id", n.id},
              {"site", n.identity.site},
              {"tier", tierName(n.identity.tier)},
              {"labels", n.identity.labels},
              {"http", n.httpAddress},
              {tls ? "direct_tls" : "direct", n.directAddress},
              {"slots", n.load.slots},
              {"running", n.load.running},
              {"queued", n.load.queued},
              {"rejected", n.load.rejected},
              {"functions", fns},
              {"started_at_ms", n.startedAtMs},
              {"seq", n.sequence}}
      .dump();
}

Result<NodeInfo> decodeNodeInfo(std::string_view payload) {
  auto j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  auto bad = [](std::string_view what) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("heartbeat: {}", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  NodeInfo n;
  auto str = [&](const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto uns = [&](const char* key, auto& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) return false;
    uint64_t v = it->get<uint64_t>();
    using T = std::remove_reference_t<decltype(out)>;
    if (v > std::numeric_limits<T>::max()) return false;
    out = static_cast<T>(v);
    return true;
  };
  std::string tier;
  if (!str("id", n.id) || !isNodeName(n.id)) return bad("missing or invalid id");
  if (!str("site", n.identity.site) || !isNodeName(n.identity.site)) {
    return bad("missing or invalid site");
  }
  if (!str("tier", tier)) return bad("missing tier");
  auto t = parseTier(tier);
  if (!t.ok()) return bad(t.error().message());
  n.identity.tier = *t;
  if (!str("http", n.httpAddress) || n.httpAddress.size() > 255) return bad("missing http address");
  // Optional: nodes without direct links (and earlier versions) leave them out or empty;
  // a node announces plain links ("direct") or TLS ones ("direct_tls"), not both.
  for (const char* key : {"direct", "direct_tls"}) {
    std::string address;
    if (!j.contains(key)) continue;
    if (!str(key, address) || address.size() > 255 ||
        (!address.empty() &&
         (!splitHostPort(address).ok() || splitHostPort(address)->second == 0))) {
      return bad(fmt::format("bad {} address", key));
    }
    if (address.empty()) continue;
    if (!n.directAddress.empty()) return bad("both a direct and a direct_tls address");
    n.directAddress = std::move(address);
    n.directSecurity = std::string_view(key) == "direct" ? LinkSecurity::kPlain : LinkSecurity::kTls;
  }
  if (!uns("slots", n.load.slots) || !uns("running", n.load.running) ||
      !uns("queued", n.load.queued) || !uns("rejected", n.load.rejected) ||
      !uns("seq", n.sequence)) {
    return bad("load fields must be unsigned integers");
  }
  auto labels = j.find("labels");
  if (labels == j.end() || !labels->is_array() || labels->size() > 64) return bad("bad labels");
  for (const auto& l : *labels) {
    if (!l.is_string()) return bad("bad labels");
    n.identity.labels.push_back(l.get<std::string>());
  }
  auto fns = j.find("functions");
  if (fns == j.end() || !fns->is_object()) return bad("bad functions");
  for (const auto& [name, rate] : fns->items()) {
    if (!rate.is_number() || !(rate.get<double>() >= 0)) return bad("bad function rate");
    n.functions[name] = rate.get<double>();
  }
  auto started = j.find("started_at_ms");
  if (started == j.end() || !started->is_number_integer()) return bad("bad started_at_ms");
  n.startedAtMs = started->get<int64_t>();
  return n;
}

void MemberView::observe(NodeInfo info, int64_t nowMs) {
  MutexLock lock(mu_);
  auto it = members_.find(info.id);
  if (it != members_.end() && it->second.info.startedAtMs == info.startedAtMs &&
      it->second.info.sequence > info.sequence) {
    return;  // an older heartbeat of the same run (delivered late, or by both paths)
  }
  Member& m = members_[info.id];
  m.state = info.id == selfId_ ? MemberState::kSelf : MemberState::kAlive;
  m.lastSeenMs = nowMs;
  m.info = std::move(info);
}

void MemberView::setSelf(NodeInfo info, int64_t nowMs) {
  MutexLock lock(mu_);
  Member& m = members_[selfId_];
  m.info = std::move(info);
  m.lastSeenMs = nowMs;
  m.state = MemberState::kSelf;
}

std::vector<std::string> MemberView::expire(int64_t nowMs) {
  MutexLock lock(mu_);
  std::vector<std::string> gone;
  for (auto it = members_.begin(); it != members_.end();) {
    if (it->first != selfId_ && nowMs - it->second.lastSeenMs > ttlMs_) {
      gone.push_back(it->first);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<Member> MemberView::members(int64_t nowMs) const {
  MutexLock lock(mu_);
  std::vector<Member> out;
  if (auto self = members_.find(selfId_); self != members_.end()) out.push_back(self->second);
  for (const auto& [id, m] : members_) {
    if (id == selfId_) continue;
    if (nowMs - m.lastSeenMs > ttlMs_) continue;
    out.push_back(asOf(m, nowMs));
  }
  return out;
}

std::optional<Member> MemberView::find(const std::string& id, int64_t nowMs) const {
  MutexLock lock(mu_);
  auto it = members_.find(id);
  if (it == members_.end() || (id != selfId_ && nowMs - it->second.lastSeenMs > ttlMs_)) {
    return std::nullopt;
  }
  return id == selfId_ ? it->second : asOf(it->second, nowMs);
}

Member MemberView::asOf(const Member& m, int64_t nowMs) const {
  Member copy = m;
  copy.state = nowMs - m.lastSeenMs > 2 * heartbeatMs_ ? MemberState::kSuspect : MemberState::kAlive;
  return copy;
}

size_t MemberView::size() const {
  MutexLock lock(mu_);
  return members_.size();
}

}  // namespace tern::cluster
