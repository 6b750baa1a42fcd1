// GET /v1/events?function=NAME: a live feed of one function's invocations over a WebSocket
// (docs/http-api.md, "Live events"; docs/design/console.md). Each invocation recorded by the
// function's FunctionLog becomes one message {"type": "invocation", "invocation": {...},
// "stderr": [...]}, queued on the connection from the invoking thread without waiting. A
// client that does not keep up (more than kMaxFeedUnsentBytes queued) is cut: it gets a
// last {"type": "cut"} message and the connection closes; invocations never wait for it.
//
// Browsers cannot put headers on a WebSocket, so a feed opened without an Authorization
// header must send {"token": "..."} as its first message; until then it receives nothing,
// and a wrong token or one without the read scope gets {"type": "error", ...} and the
// connection closes.

#include <fmt/format.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "triggers/http_gateway.h"
#include "util/names.h"

namespace tern::triggers {

using json = nlohmann::json;

namespace {

// Unsent bytes past which a feed's client counts as not keeping up.
constexpr size_t kMaxFeedUnsentBytes = 256u << 10;
// Records and stderr lines sent when a feed starts, so the page is not empty.
constexpr size_t kBacklogRecords = 50;
constexpr size_t kBacklogLines = 200;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string errorMessage(const Error& e, std::string_view reason) {
  return dump(json{{"type", "error"},
                   {"code", errorKind(e.code()).name},
                   {"reason", reason},
                   {"message", e.message()}});
}

class EventFeed final : public http::WebSocketListener {
 public:
  EventFeed(std::shared_ptr<http::WebSocket> ws, std::string name, exec::FunctionTable& table,
            TokenAuth& auth, Counter& cut)
      : ws_(std::move(ws)), name_(std::move(name)), table_(table), auth_(auth), cutCounter_(cut) {}

  // Sends the backlog and follows the function from now on.
  void start() {
    fn_ = table_.find(name_);
    if (!fn_) {
      return refuse(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name_)),
                    "not_found");
    }
    auto ws = ws_;
    auto cut = cut_;
    Counter* counter = &cutCounter_;
    sub_ = fn_->log.subscribe(
        [ws, cut, counter](const exec::InvocationRecord& r, const std::vector<exec::LogLine>& lines) {
          if (cut->load()) return;
          json stderrLines = json::array();
          for (const auto& l : lines) stderrLines.push_back(logLineJson(l));
          std::string msg = dump(json{{"type", "invocation"},
                                      {"invocation", recordJson(r)},
                                      {"stderr", stderrLines}});
          if (ws->unsentBytes() + msg.size() > kMaxFeedUnsentBytes || !ws->send(std::move(msg))) {
            if (!cut->exchange(true)) {
              counter->inc();
              ws->close(dump(json{{"type", "cut"},
                                  {"message", "this client did not keep up with the feed; "
                                              "reconnect to follow it again"}}),
                        "slow consumer");
            }
          }
        });
    json records = json::array();
    auto all = fn_->log.records();
    size_t from = all.size() > kBacklogRecords ? all.size() - kBacklogRecords : 0;
    for (size_t i = from; i < all.size(); ++i) records.push_back(recordJson(all[i]));
    json lines = json::array();
    auto recent = fn_->log.lines(0, 1u << 20, std::chrono::milliseconds(0));
    from = recent.size() > kBacklogLines ? recent.size() - kBacklogLines : 0;
    for (size_t i = from; i < recent.size(); ++i) lines.push_back(logLineJson(recent[i]));
    ws_->send(dump(json{{"type", "ready"},
                        {"function", fn_->name},
                        {"invocations", records},
                        {"stderr", lines}}));
  }

  void onMessage(std::string text) override {
    if (sub_ || closed_) return;  // messages after the token are ignored
    auto parsed = json::parse(text, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("token") ||
        !parsed["token"].is_string()) {
      return refuse(Error(ErrorCode::kUnauthorized,
                          "the first message of /v1/events must be {\"token\": \"...\"}"),
                    "missing");
    }
    std::string token = parsed["token"].get<std::string>();
    auto who = auth_.authorizeToken(std::string_view(token), Access{Need::kRead, ""});
    if (auto* refusal = std::get_if<Refusal>(&who)) {
      return refuse(refusal->error, refusal->reason.empty() ? "store" : refusal->reason);
    }
    start();
  }

  void onDrained() override {}
  void onClosed() override {
    closed_ = true;
    sub_.reset();
  }

 private:
  void refuse(const Error& e, std::string_view reason) {
    closed_ = true;
    ws_->close(errorMessage(e, reason), "refused");
  }

  std::shared_ptr<http::WebSocket> ws_;
  std::string name_;
  exec::FunctionTable& table_;
  std::shared_ptr<exec::FunctionEntry> fn_;
  TokenAuth& auth_;
  Counter& cutCounter_;
  std::shared_ptr<std::atomic<bool>> cut_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<exec::FunctionLog::Subscription> sub_;
  bool closed_ = false;
};

}  // namespace

http::UpgradeDecision HttpGateway::eventsUpgrade(const http::Request& req) {
  http::UpgradeDecision d;
  if (req.path != "/v1/events") return d;
  if (req.method != "GET") {
    d.refusal = methodNotAllowed("GET");
    return d;
  }
  // With a header the token is checked now; without one, by the first message.
  const std::string* authorization = req.header("Authorization");
  if (authorization) {
    auto who = deps_.auth.authorize(authorization, Access{Need::kRead, ""});
    if (auto* refusal = std::get_if<Refusal>(&who)) {
      d.refusal = refusal->reason.empty() ? errorResponse(refusal->error) : refusalResponse(*refusal);
      return d;
    }
  }
  auto names = http::queryValues(req.query, "function");
  if (names.size() != 1 || !isFunctionName(names[0])) {
    d.refusal = errorResponse(Error(
        ErrorCode::kInvalidArgument,
        "GET /v1/events needs function=NAME once, NAME being 1-63 characters a-z, 0-9 and '-'"));
    return d;
  }
  // A caller with a token learns at once whether the function exists; one without, only
  // after its token is accepted.
  if (authorization && !deps_.table.find(names[0])) {
    d.refusal = errorResponse(
        Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", names[0])));
    return d;
  }
  bool authenticated = authorization != nullptr;
  d.accept = [this, name = names[0], authenticated](std::shared_ptr<http::WebSocket> ws)
      -> std::shared_ptr<http::WebSocketListener> {
    auto feed = std::make_shared<EventFeed>(std::move(ws), name, deps_.table, deps_.auth, feedsCut_);
    if (authenticated) feed->start();
    return feed;
  };
  return d;
}

}  // namespace tern::triggers
