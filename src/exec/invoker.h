#pragma once
// The transport-neutral invocation path shared by every trigger: find the function, get a
// worker slot (or wait in the bounded queue, or be refused), run it in a fresh sandbox,
// record the outcome (metrics, invocation record, stderr lines), and report.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/host_context.h"
#include "util/error.h"
#include "util/metrics.h"
#include "wasm/engine.h"

namespace tern::exec {

struct InvokeInput {
  std::string function;
  std::string body;              // stdin
  Environment env;  // added to the function's own environment, before it
  uint32_t hops = 0;             // cluster nodes this call was forwarded through
  // The calling device (HostCaller::device); such a call runs where the device's state is,
  // on this node, and is never forwarded.
  std::string device;
  // Set by a provider router (setRouter) when it has chosen this node: the call runs here
  // and is not routed again.
  bool routed = false;
};

struct InvokeOutput {
  std::string invocationId;
  uint32_t version = 0;
  std::optional<Error> error;    // not found, saturated, stopping, or the outcome's error
  wasm::InvocationResult result; // when the function ran
  bool ran = false;
  std::string node;              // the cluster node that ran it; empty: this node
  // The provider a router chose ("local" or a provider's name); empty when not routed.
  std::string provider;
  // Set when a provider answered over HTTP: its status and content type, with the body in
  // result.stdoutData (no CGI header block to parse).
  int httpStatus = 0;
  std::string contentType;
};

// A fused unit (a workflow's fused group, docs/design/costless.md): functions run one
// after the other in one worker slot on one thread, each in a fresh sandbox, each input
// made from the outputs before it in memory.
struct FusedInput {
  std::vector<std::string> functions;
  Environment env;  // added to every member's environment
  // Member i's stdin, from the outputs of members 0..i-1; an error stops the unit there.
  std::function<Result<std::string>(size_t i, const std::vector<InvokeOutput>& before)> input;
};

struct FusedOutput {
  // One per member that was started (the last one holds the error when one stopped the
  // unit); empty when the unit never got a slot.
  std::vector<InvokeOutput> members;
  std::optional<Error> error;
};

// Why a call may run on another node of a cluster (cluster/README.md).
enum class Elsewhere {
  kNotHere,    // the function is not served by this node
  kSaturated,  // admission refused it here (the node or the function is at capacity)
};

class Invoker {
 public:
  // `post` hands work to the worker pool: invocations of functions that do not run inline
  // (see FunctionEntry::runsInline) and queued invocations once a slot frees up.
  using Post = std::function<void(std::function<void()>)>;
  // `services` back the host API of every invocation (none: kv and publish calls answer
  // "unavailable"; invoke still works).
  Invoker(wasm::Engine& engine, Executor& executor, FunctionTable& table, Post post,
          HostServices services = {});

  // Calls `done` exactly once, possibly before returning (when the invocation runs now or
  // is refused) or later from another thread (when it waited in the queue).
  void invoke(InvokeInput&& input, std::function<void(InvokeOutput)> done);

  std::string nextInvocationId();

  // Runs a fused unit: one slot, taken through the first member's admission (its queue
  // and limits; the other members run inside that slot, like nested calls, without their
  // own admission; the slot is released without feeding the first member's estimates).
  // Never offered to the cluster. Calls `done` exactly once, possibly
  // before returning. Errors: kNotFound (a member not deployed here, before anything
  // ran), kSaturated, kUnavailable, or the first failing member's error.
  void invokeFused(FusedInput input, std::function<void(FusedOutput)> done);

  // A cluster's forwarding path: offered calls this node cannot run (`why`). It returns
  // true when it takes the call (and then calls `done` exactly once), false to let the
  // local answer (404, 429) stand. Set once, before the node serves.
  using Remote = std::function<bool(InvokeInput& input, std::function<void(InvokeOutput)>& done,
                                    Elsewhere why)>;
  void setRemote(Remote remote) { remote_ = std::move(remote); }

  // A provider router (docs/design/providers.md): offered every call that is not already
  // routed, forwarded by a peer or a device's; it returns true when it takes the call (and
  // then calls `done` exactly once). Set once, before the node serves.
  using Router = std::function<bool(InvokeInput& input, std::function<void(InvokeOutput)>& done)>;
  void setRouter(Router router) { router_ = std::move(router); }

  // The host API's invoke: runs `function` now on the calling thread, inside the caller's
  // invocation and its worker slot (no slot is taken, so nesting cannot deadlock on a full
  // node), until the earlier of its own timeout and the caller's deadline. Recorded in the
  // callee's log and metrics like any invocation, with TERN_CALLER=<caller> in its
  // environment. `output` is the callee's stdout.
  wasm::HostReply invokeNested(const HostCaller& caller, std::string_view function,
                               std::string_view input, std::string& output);

 private:
  void run(const std::shared_ptr<FunctionEntry>& fn, InvokeInput& input, const std::string& id,
           int64_t queuedAtNs, std::function<void(InvokeOutput)>& done);
  // One invocation of `active` on the calling thread, which holds a slot: the sandbox,
  // its metrics and record, and the error of its outcome. The slot is released (when
  // `queuedAtNs` >= 0, with the invocation's times) before it is recorded.
  // `startNs`: CLOCK_MONOTONIC read a moment ago (the arrival of a call that runs at once);
  // 0: read here.
  InvokeOutput runVersion(FunctionEntry& fn, const ActiveVersion& active, Environment env,
                          std::string_view body, std::string id, int64_t queuedAtNs,
                          const std::string& device = "", int64_t startNs = 0);
  void runFused(const std::vector<std::shared_ptr<FunctionEntry>>& fns, FusedInput& input,
                std::function<void(FusedOutput)>& done);
  // The request for an invocation of `active` (argv, environment, limits); `extraEnv` first.
  static wasm::InvocationRequest makeRequest(const ActiveVersion& active, Environment extraEnv,
                                             const std::string& id);
  // Metrics and the invocation record (with its stderr lines) of a finished invocation.
  static void record(FunctionEntry& fn, const FunctionVersionConfig& cfg, const std::string& id,
                     const wasm::InvocationResult& r, int64_t startMs, int64_t queueWaitNs);

  wasm::Engine& engine_;
  Executor& executor_;
  FunctionTable& table_;
  Post post_;
  const HostServices services_;
  Remote remote_;
  Router router_;
  const uint32_t idPrefix_;
  std::atomic<uint64_t> idCounter_{0};
};

}  // namespace tern::exec
