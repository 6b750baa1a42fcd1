#include "exec/host_context.h"

#include <fmt/format.h>

#include "exec/invoker.h"
#include "util/quote.h"
#include "util/stream_topic.h"
#include "util/topic.h"

namespace tern::exec {

std::string deviceNamespace(std::string_view function, std::string_view device) {
  return fmt::format("{}@{}", function, device);
}

namespace {

using wasm::HostReply;
using wasm::HostStatus;

// Key-value errors as the guest sees them.
HostReply kvFailure(const Error& e) {
  HostStatus s = e.code() == ErrorCode::kInvalidArgument     ? HostStatus::kInvalidArgument
                 : e.code() == ErrorCode::kBodyTooLarge      ? HostStatus::kTooLarge
                 : e.code() == ErrorCode::kResourceExhausted ? HostStatus::kQuotaExceeded
                                                             : HostStatus::kIo;
  return HostReply::fail(s, e.message());
}

// Errors of the publish services (the MQTT client, the stream topics) as the guest sees
// them.
HostReply serviceFailure(const Error& e) {
  HostStatus s = e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kSaturated
                     ? HostStatus::kUnavailable
                 : e.code() == ErrorCode::kInvalidArgument ? HostStatus::kInvalidArgument
                 : e.code() == ErrorCode::kBodyTooLarge    ? HostStatus::kTooLarge
                 : e.code() == ErrorCode::kTimeout         ? HostStatus::kTimeout
                                                           : HostStatus::kIo;
  return HostReply::fail(s, e.message());
}

}  // namespace

std::optional<HostReply> HostContext::kvRefusal() const {
  if (!caller_.capabilities->allowsKv()) {
    return HostReply::fail(HostStatus::kDenied, caller_.capabilities->kvDenial());
  }
  if (!services_.kv) {
    return HostReply::fail(HostStatus::kUnavailable, "this node has no key-value store");
  }
  return std::nullopt;
}

std::string HostContext::kvNamespace() const {
  return caller_.device.empty() ? std::string(caller_.function)
                                : deviceNamespace(caller_.function, caller_.device);
}

HostReply HostContext::kvGet(std::string_view key, std::string& value) {
  if (auto refused = kvRefusal()) return *refused;
  auto r = services_.kv->get(kvNamespace(), key);
  if (!r.ok()) return kvFailure(r.error());
  if (!*r) return HostReply::fail(HostStatus::kNotFound, "no such key");
  value = std::move(**r);
  return HostReply::ok();
}

HostReply HostContext::kvSet(std::string_view key, std::string_view value) {
  if (auto refused = kvRefusal()) return *refused;
  auto r = services_.kv->set(kvNamespace(), key, value);
  if (!r.ok()) return kvFailure(r.error());
  return HostReply::ok();
}

HostReply HostContext::kvDelete(std::string_view key) {
  if (auto refused = kvRefusal()) return *refused;
  auto r = services_.kv->remove(kvNamespace(), key);
  if (!r.ok()) return kvFailure(r.error());
  if (!*r) return HostReply::fail(HostStatus::kNotFound, "no such key");
  return HostReply::ok();
}

HostReply HostContext::kvList(std::string_view prefix, std::string_view after, size_t limit,
                              wasm::KvListPage& page) {
  if (auto refused = kvRefusal()) return *refused;
  auto r = services_.kv->list(kvNamespace(), prefix, after, limit);
  if (!r.ok()) return kvFailure(r.error());
  page.keys = std::move(r->keys);
  page.more = r->more;
  return HostReply::ok();
}

HostReply HostContext::publish(std::string_view topic, std::string_view payload) {
  if (auto ok = checkTopicName(topic); !ok.ok()) {
    return HostReply::fail(HostStatus::kInvalidArgument, ok.error().message());
  }
  if (!caller_.capabilities->allowsPublish(topic)) {
    return HostReply::fail(HostStatus::kDenied, caller_.capabilities->publishDenial(topic));
  }
  if (payload.size() > services_.maxPublishBytes) {
    return HostReply::fail(HostStatus::kTooLarge,
                           fmt::format("the payload is {} bytes, the limit is {}", payload.size(),
                                       services_.maxPublishBytes));
  }
  if (!services_.publish) {
    return HostReply::fail(HostStatus::kUnavailable, "this node cannot publish messages");
  }
  auto r = services_.publish(topic, payload);
  if (r.ok()) return HostReply::ok();
  return serviceFailure(r.error());
}

HostReply HostContext::streamPublish(std::string_view topic, std::string_view payload,
                                     uint64_t& seq) {
  if (!isStreamTopicName(topic)) {
    return HostReply::fail(HostStatus::kInvalidArgument,
                           fmt::format("stream topic {} is not a topic name: 1 to 64 of A-Z, a-z, "
                                       "0-9, '_' and '-', starting with a letter or digit",
                                       quoteUntrusted(topic, 200)));
  }
  if (!caller_.capabilities->allowsStream(topic)) {
    return HostReply::fail(HostStatus::kDenied, caller_.capabilities->streamDenial(topic));
  }
  if (!services_.streamPublish) {
    return HostReply::fail(HostStatus::kUnavailable, "this node has no stream topics");
  }
  auto r = services_.streamPublish(topic, payload);
  if (r.ok()) {
    seq = *r;
    return HostReply::ok();
  }
  // The topic's own checks (UTF-8, the payload limit) and its backend's failures.
  return serviceFailure(r.error());
}

HostReply HostContext::invoke(std::string_view function, std::string_view input,
                              std::string& output) {
  if (!caller_.capabilities->allowsInvoke(function)) {
    return HostReply::fail(HostStatus::kDenied, caller_.capabilities->invokeDenial(function));
  }
  if (caller_.depth + 1 > services_.maxInvokeDepth) {
    return HostReply::fail(
        HostStatus::kDepthExceeded,
        fmt::format("invoking {} would nest {} invokes deep, the limit is {} (a cycle?)",
                    quoteUntrusted(function), caller_.depth + 1,
                    services_.maxInvokeDepth));
  }
  return invoker_.invokeNested(caller_, function, input, output);
}

}  // namespace tern::exec
