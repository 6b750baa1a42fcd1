#include "stream/stream_routes.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "stream/frames.h"
#include "triggers/http_gateway.h"

namespace tern::stream {

using json = nlohmann::json;

namespace {

using triggers::methodNotAllowed;

http::Response answer(int status, const json& body) { return triggers::jsonResponse(status, body); }
http::Response failure(const Error& e) { return triggers::errorResponse(e); }

http::Response notFound(std::string message) {
  return failure(Error(ErrorCode::kNotFound, std::move(message)));
}

std::optional<uint64_t> queryNumber(std::string_view query, std::string_view key, bool& bad) {
  auto values = http::queryValues(query, key);
  if (values.empty()) return std::nullopt;
  uint64_t v = 0;
  const std::string& s = values.front();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    bad = true;
    return std::nullopt;
  }
  return v;
}

json boundsJson(std::string_view topic, const TopicBounds& b) {
  return json{{"topic", topic}, {"first_seq", b.first}, {"last_seq", b.last}};
}

http::Response topicsRoute(const StreamRoutes& r, const http::Request& req) {
  if (req.path == "/v1/topics") {
    if (req.method != "GET") return methodNotAllowed("GET");
    auto topics = r.log.topics();
    if (!topics.ok()) return failure(topics.error());
    json list = json::array();
    for (const auto& t : *topics) list.push_back(boundsJson(t.topic, t.bounds));
    return answer(200, json{{"topics", std::move(list)}});
  }
  std::string_view topic = std::string_view(req.path).substr(std::string_view("/v1/topics/").size());
  if (!isTopicName(topic)) {
    return failure(Error(ErrorCode::kInvalidArgument,
                         "a topic name is 1 to 64 of A-Z, a-z, 0-9, '_' and '-', starting with "
                         "a letter or digit"));
  }
  if (req.method == "POST") {
    auto seq = r.log.publish(topic, req.body);
    if (!seq.ok()) return failure(seq.error());
    return answer(200, json{{"topic", topic}, {"seq", *seq}});
  }
  if (req.method != "GET") return methodNotAllowed("GET, POST");
  bool bad = false;
  uint64_t after = queryNumber(req.query, "after", bad).value_or(0);
  uint64_t limit = std::min<uint64_t>(queryNumber(req.query, "limit", bad).value_or(100), 1000);
  if (bad) return failure(Error(ErrorCode::kInvalidArgument, "after and limit are non-negative integers"));
  auto bounds = r.log.bounds(topic);
  if (!bounds.ok()) return failure(bounds.error());
  auto updates = r.log.read(topic, after, limit);
  if (!updates.ok()) return failure(updates.error());
  json body = boundsJson(topic, *bounds);
  json list = json::array();
  for (const auto& u : *updates) {
    list.push_back({{"seq", u.seq}, {"published_ms", u.publishedMs}, {"payload", payloadValue(u.payload)}});
  }
  body["updates"] = std::move(list);
  return answer(200, body);
}

http::Response appsRoute(const StreamRoutes& r, const http::Request& req) {
  if (req.path == "/v1/apps") {
    if (req.method != "GET") return methodNotAllowed("GET");
    auto apps = r.apps.list();
    if (!apps.ok()) return failure(apps.error());
    json list = json::array();
    for (const auto& a : *apps) list.push_back(json::parse(appJson(a)));
    return answer(200, json{{"apps", std::move(list)}});
  }
  std::string_view name = std::string_view(req.path).substr(std::string_view("/v1/apps/").size());
  if (req.method == "PUT") {
    auto app = parseAppSpec(name, req.body);
    if (!app.ok()) return failure(app.error());
    if (auto ok = r.apps.put(*app); !ok.ok()) return failure(ok.error());
    return answer(200, json::parse(appJson(*app)));
  }
  if (req.method == "GET") {
    auto app = r.apps.get(name);
    if (!app.ok()) return failure(app.error());
    if (!*app) return notFound(fmt::format("no app named \"{}\"", name));
    return answer(200, json::parse(appJson(**app)));
  }
  if (req.method == "DELETE") {
    auto removed = r.apps.remove(name);
    if (!removed.ok()) return failure(removed.error());
    if (!*removed) return notFound(fmt::format("no app named \"{}\"", name));
    return answer(200, json{{"removed", name}});
  }
  return methodNotAllowed("GET, PUT, DELETE");
}

// A device connection over WebSocket: the hub's outlet is the socket, and the socket's
// listener passes frames to the hub's connection.
// The outlet does not own the socket (the socket owns its listener, which owns the hub's
// connection, which owns the outlet): a socket the server dropped is simply gone.
class WebSocketOutlet : public Outlet {
 public:
  explicit WebSocketOutlet(std::weak_ptr<http::WebSocket> ws) : ws_(std::move(ws)) {}
  bool send(std::string frame) override {
    auto ws = ws_.lock();
    return ws && ws->send(std::move(frame));
  }
  void close(std::string lastFrame, std::string_view reason) override {
    if (auto ws = ws_.lock()) ws->close(std::move(lastFrame), std::string(reason));
  }

 private:
  std::weak_ptr<http::WebSocket> ws_;
};

class WebSocketDevice : public http::WebSocketListener {
 public:
  explicit WebSocketDevice(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
  void onMessage(std::string text) override { conn_->onFrame(std::move(text)); }
  void onDrained() override { conn_->onDrained(); }
  void onClosed() override { conn_->onClosed(); }

 private:
  std::shared_ptr<Connection> conn_;
};

}  // namespace

void handleStreamRequest(const StreamRoutes& routes, http::Request&& req, http::Respond respond) {
  if (req.path == "/v1/streams") {
    if (req.method != "GET") return respond(methodNotAllowed("GET"));
    return respond(answer(200, routes.hub.statsJson()));
  }
  if (req.path.starts_with("/v1/apps")) return respond(appsRoute(routes, req));
  respond(topicsRoute(routes, req));
}

http::UpgradeDecision streamsUpgrade(Hub& hub, const http::Request& req) {
  http::UpgradeDecision d;
  if (req.path != "/v1/streams") return d;
  d.accept = [&hub](std::shared_ptr<http::WebSocket> ws) -> std::shared_ptr<http::WebSocketListener> {
    auto conn = hub.connect(std::make_shared<WebSocketOutlet>(ws));
    return std::make_shared<WebSocketDevice>(std::move(conn));
  };
  return d;
}

}  // namespace tern::stream
