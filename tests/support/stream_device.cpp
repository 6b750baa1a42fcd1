#include "stream_device.h"

#include <gtest/gtest.h>

namespace tern::test {

using json = nlohmann::json;

StreamDevice::StreamDevice(uint16_t port) {
  http::NodeUrl url;
  url.host = "127.0.0.1";
  url.port = port;
  auto ok = ws_.connect(url, "/v1/streams", {}, std::chrono::seconds(30));
  EXPECT_TRUE(ok.ok()) << ok.error().message();
}

void StreamDevice::sendText(const std::string& text) {
  auto ok = ws_.send(text);
  EXPECT_TRUE(ok.ok()) << ok.error().message();
}

bool StreamDevice::trySendText(const std::string& text) { return ws_.send(text).ok(); }

void StreamDevice::send(const json& frame) { sendText(frame.dump()); }

json StreamDevice::subscribe(json frame) {
  frame["type"] = "subscribe";
  send(frame);
  uint64_t id = frame["stream"].get<uint64_t>();
  auto answers = [id](const json& f) {
    return (f.value("stream", uint64_t{0}) == id && (f["type"] == "subscribed" || f["type"] == "terminate")) ||
           (f["type"] == "terminate" && !f.contains("stream"));
  };
  // Frames of other streams read meanwhile stay for later next() calls, in order.
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (answers(*it)) {
      json f = std::move(*it);
      kept_.erase(it);
      return f;
    }
  }
  std::vector<json> others;
  for (;;) {
    if (closed_) break;
    auto r = ws_.receive(std::chrono::steady_clock::now() + std::chrono::seconds(60));
    if (r.kind != http::WebSocketReceive::Kind::kMessage) {
      closed_ = r.kind != http::WebSocketReceive::Kind::kTimedOut;
      closeCode_ = r.closeCode;
      break;
    }
    json f = json::parse(r.text, nullptr, false);
    if (answers(f)) {
      kept_.insert(kept_.end(), others.begin(), others.end());
      return f;
    }
    others.push_back(std::move(f));
  }
  kept_.insert(kept_.end(), others.begin(), others.end());
  ADD_FAILURE() << "no answer to " << frame.dump();
  return json();
}

std::optional<json> StreamDevice::next(std::chrono::milliseconds patience) {
  if (!kept_.empty()) {
    json f = std::move(kept_.front());
    kept_.erase(kept_.begin());
    return f;
  }
  if (closed_) return std::nullopt;
  auto r = ws_.receive(std::chrono::steady_clock::now() + patience);
  using Kind = http::WebSocketReceive::Kind;
  if (r.kind == Kind::kMessage) {
    json f = json::parse(r.text, nullptr, false);
    EXPECT_FALSE(f.is_discarded()) << r.text;
    return f;
  }
  if (r.kind == Kind::kClosed || r.kind == Kind::kFailed) {
    closed_ = true;
    closeCode_ = r.closeCode;
  }
  return std::nullopt;
}

std::vector<json> StreamDevice::data(uint64_t stream, size_t n, std::chrono::milliseconds patience) {
  std::vector<json> out;
  std::vector<json> others;
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto f = next(left);
    if (!f) break;
    if ((*f)["type"] == "data" && (*f)["stream"] == stream) {
      out.push_back(std::move(*f));
    } else {
      others.push_back(std::move(*f));
    }
  }
  kept_.insert(kept_.end(), others.begin(), others.end());
  return out;
}

std::vector<uint64_t> StreamDevice::seqs(const std::vector<json>& frames) {
  std::vector<uint64_t> out;
  for (const auto& f : frames) out.push_back(f["seq"].get<uint64_t>());
  return out;
}

}  // namespace tern::test
