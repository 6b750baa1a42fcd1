#pragma once
// The frames of a device connection (docs/design/streams.md): JSON text, one frame per
// WebSocket message (or MQTT message). Pure: parsing and rendering only.
//
// Device to node:
//   {"type":"subscribe","stream":ID,"topic":T,"app"?:A,"params"?:{...},
//    "resume_after"?:SEQ,"guarantee"?:"best-effort"|"at-least-once","credits"?:N}
//   {"type":"credits","stream":ID,"credits":N}
//   {"type":"cancel","stream":ID}
// Node to device:
//   {"type":"subscribed","stream":ID,"topic":T,"first_seq":F,"last_seq":L}
//   {"type":"data","stream":ID,"seq":S,"topic":T,"payload":P}
//   {"type":"terminate","stream":ID,"reason":R,"message":M}   one stream ends
//   {"type":"terminate","reason":R,"message":M}               the connection ends
// ID is an integer 1..2^53 chosen by the device, unique among its open streams. Without
// "credits" a stream is not flow-controlled; with it, the node sends at most that many
// data frames until the device grants more. P is the published bytes as a JSON value when
// they are JSON, as a string otherwise (or what the app's processor replaced them with).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tern::stream {

enum class Guarantee { kBestEffort, kAtLeastOnce };
std::string_view guaranteeName(Guarantee g);

struct SubscribeFrame {
  uint64_t stream = 0;
  std::string topic;
  std::string app;                      // empty: none
  nlohmann::json params = nlohmann::json::object();
  std::optional<uint64_t> resumeAfter;  // unset: from the next update on
  Guarantee guarantee = Guarantee::kBestEffort;
  std::optional<uint64_t> credits;      // unset: no flow control
};
struct CreditsFrame {
  uint64_t stream = 0;
  uint64_t credits = 0;
};
struct CancelFrame {
  uint64_t stream = 0;
};
using DeviceFrame = std::variant<SubscribeFrame, CreditsFrame, CancelFrame>;

// Why a frame was refused; `stream` is set when the frame named a stream, so that only
// that stream need end.
struct FrameError {
  std::optional<uint64_t> stream;
  std::string message;
};

// Limits a frame must keep; larger frames are refused by the transport before parsing.
inline constexpr size_t kMaxFrameBytes = 64u << 10;
inline constexpr size_t kMaxParamsBytes = 16u << 10;

// Parses JSON text whose nesting is at most kMaxJsonDepth; deeper (or malformed) text gives
// a discarded value. Never throws. Every JSON that devices, publishers and processors send is
// read through it, so nothing recursive ever meets a value nested without bound.
inline constexpr int kMaxJsonDepth = 64;
nlohmann::json parseJsonBounded(std::string_view text);

// Parses a device's frame. Never throws.
std::variant<DeviceFrame, FrameError> parseDeviceFrame(std::string_view text);

// The reasons a stream or connection is terminated (the "reason" field).
namespace reason {
inline constexpr std::string_view kBadFrame = "bad_frame";
inline constexpr std::string_view kUnknownApp = "unknown_app";
inline constexpr std::string_view kBadTopic = "bad_topic";
inline constexpr std::string_view kDuplicateStream = "duplicate_stream";
inline constexpr std::string_view kTooManyStreams = "too_many_streams";
inline constexpr std::string_view kSubscribeFlood = "subscribe_flood";
inline constexpr std::string_view kResumeExpired = "resume_point_expired";
inline constexpr std::string_view kProcessorFailed = "processor_failed";
inline constexpr std::string_view kSlowConsumer = "slow_consumer";
inline constexpr std::string_view kCancelled = "cancelled";
inline constexpr std::string_view kUnavailable = "unavailable";
inline constexpr std::string_view kShutdown = "shutdown";
inline constexpr std::string_view kIdle = "idle";  // MQTT: no frame from the device for a while
}  // namespace reason

// The payload of an update as a frame carries it: the JSON value of `bytes` when they are
// JSON, otherwise a string.
nlohmann::json payloadValue(std::string_view bytes);

std::string subscribeFrameText(const SubscribeFrame& f);  // for clients and tests
std::string subscribedFrame(uint64_t stream, std::string_view topic, uint64_t first, uint64_t last);
// A data frame: `tail` is dataFrameTail(...) of the update, shared by all its subscribers.
std::string dataFrame(uint64_t stream, std::string_view tail);
std::string dataFrameTail(uint64_t seq, std::string_view topic, const nlohmann::json& payload);
std::string terminateFrame(std::optional<uint64_t> stream, std::string_view reason,
                           std::string_view message);

}  // namespace tern::stream
