#pragma once
// The exec side of the "tern" host API (wasm/host_api.h): the node's services behind the
// calls (HostServices, one per node) and one invocation's view of them (HostContext), which
// applies the function's capabilities, scopes key-value state to the function's namespace
// and runs nested invokes through the Invoker. See docs/design/host-api.md.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "exec/capabilities.h"
#include "exec/function_state.h"
#include "util/error.h"
#include "wasm/host_api.h"

namespace tern::exec {

class Invoker;

// Publishes an MQTT message on behalf of a function (the node's broker connection).
using PublishFunction = std::function<Result<void>(std::string_view topic,
                                                   std::string_view payload)>;

// Appends an update to a stream topic on behalf of a function (the node's TopicLog) and
// returns its sequence number.
using StreamPublishFunction = std::function<Result<uint64_t>(std::string_view topic,
                                                             std::string_view payload)>;

struct HostServices {
  FunctionState* kv = nullptr;   // null: kv calls answer "unavailable"
  PublishFunction publish;       // empty: publish answers "unavailable"
  StreamPublishFunction streamPublish;  // empty: stream_publish answers "unavailable"
  uint32_t maxInvokeDepth = 8;   // nested invokes below a top-level invocation
  size_t maxPublishBytes = 256u << 10;
};

// What a running invocation is, for the host calls it makes and the invokes it nests.
// Its strings are views: of the active version's name, of the invocation's id and of the
// calling device, each of which outlives the invocation (and so the HostContext).
struct HostCaller {
  std::string_view function;
  const Capabilities* capabilities = nullptr;  // the active version's; outlives the call
  std::string_view invocationId;
  int64_t deadlineNs = 0;  // CLOCK_MONOTONIC; 0: none
  uint32_t depth = 0;      // 0 for an invocation from a trigger, +1 per nested invoke
  // The device the call came from (X-Tern-Device, docs/design/devices.md); its key-value
  // state is the function's namespace for that device. Empty: the function's own.
  std::string_view device;
};

class HostContext final : public wasm::HostHandler {
 public:
  HostContext(Invoker& invoker, const HostServices& services, HostCaller caller)
      : invoker_(invoker), services_(services), caller_(std::move(caller)) {}

  const HostCaller& caller() const { return caller_; }

  wasm::HostReply kvGet(std::string_view key, std::string& value) override;
  wasm::HostReply kvSet(std::string_view key, std::string_view value) override;
  wasm::HostReply kvDelete(std::string_view key) override;
  wasm::HostReply kvList(std::string_view prefix, std::string_view after, size_t limit,
                         wasm::KvListPage& page) override;
  wasm::HostReply publish(std::string_view topic, std::string_view payload) override;
  wasm::HostReply streamPublish(std::string_view topic, std::string_view payload,
                                uint64_t& seq) override;
  wasm::HostReply invoke(std::string_view function, std::string_view input,
                         std::string& output) override;

 private:
  // The reply for a kv call the function may not make or the node cannot serve; nullopt
  // when the call may proceed.
  std::optional<wasm::HostReply> kvRefusal() const;
  // The namespace this invocation's kv calls use.
  std::string kvNamespace() const;

  Invoker& invoker_;
  const HostServices& services_;
  const HostCaller caller_;
};

}  // namespace tern::exec
