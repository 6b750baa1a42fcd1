#pragma once
// The node's workflows: deployed AFCL workflows with their type mappings and placement
// options (kept in <data>/workflows.db), their runs (started over HTTP, resumed after a
// restart), and where each task runs: a tern function on this node, on a cluster node, or
// a Serverless endpoint, chosen per task by the workflow's placement policy (placement.h).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "exec/function_table.h"
#include "exec/invoker.h"
#include "util/error.h"
#include "util/metrics.h"
#include "util/work_queue.h"
#include "workflow/enactor.h"
#include "workflow/fusion.h"
#include "workflow/placement.h"
#include "util/thread_annotations.h"

namespace tern::workflow {

// A cluster node as placement sees it (from heartbeats).
struct PeerView {
  std::string id;
  std::string site;
  std::string tier;
  std::vector<std::string> labels;
  std::vector<std::string> functions;  // served there
  int64_t spare = 0;
};

struct ServiceDeps {
  exec::Invoker& invoker;
  exec::FunctionTable& table;
  MetricsRegistry& metrics;
  unsigned workerSlots = 1;
  // Ended runs and their tasks are kept this long, then removed.
  std::chrono::milliseconds retention{24 * 3600 * 1000};
  // This node in a cluster (empty id: standalone), the other nodes, and a call on one of
  // them (through the cluster's forwarding).
  PeerView self;
  std::function<std::vector<PeerView>()> peers;
  std::function<void(const std::string& node, exec::InvokeInput input,
                     std::function<void(exec::InvokeOutput)> done)>
      invokeOn;
  // A fused unit on one named cluster node (that node only); `done` is called once.
  std::function<void(const std::string& node, const Segment& segment,
                     std::function<void(SegmentResult)> done)>
      segmentOn;
};

// This node's tier for a plan: its cluster tier, "edge" when standalone.
inline const std::string& tierOf(const PeerView& self) {
  static const std::string edge = "edge";
  return self.tier.empty() ? edge : self.tier;
}

// Per workflow, set at deploy (JSON in the store: {"policy", "local_capacity",
// "size_threshold_bytes", "attempts", "max_tasks_in_flight", "serverless_timeout_ms",
// "plan"}).
struct WorkflowOptions {
  Policy policy = Policy::kLocalFirst;
  uint32_t localCapacity = 0;  // tasks of the workflow on this node at once; 0: its slots
  uint64_t sizeThresholdBytes = 10 * 1024;
  uint32_t attempts = 3;
  uint32_t maxTasksInFlight = 256;  // per run
  uint32_t serverlessTimeoutMs = 60000;
  // A Costless plan (fusion.h): edge functions on edge-tier resources, each cloud group
  // fused on one cloud-tier node. Null: none, each task placed by `policy`.
  nlohmann::json plan;
};
nlohmann::json optionsJson(const WorkflowOptions& o);
// Errors: kInvalidArgument naming the field.
Result<WorkflowOptions> parseOptions(const nlohmann::json& j);

class WorkflowService {
 public:
  static Result<std::unique_ptr<WorkflowService>> open(const std::filesystem::path& file,
                                                       ServiceDeps deps);
  ~WorkflowService();

  // Parses and checks the AFCL and the mapping, then stores and activates the workflow
  // (a new definition for new runs; runs in progress keep theirs). Errors:
  // kInvalidArgument (with the YAML line and column, or the mapping entry), kIo.
  Result<nlohmann::json> deploy(const std::string& name, const std::string& afcl,
                                const std::string& types, const WorkflowOptions& options);
  Result<void> remove(const std::string& name);
  Result<nlohmann::json> list() const;
  Result<nlohmann::json> runs(const std::string& name, size_t limit) const;
  // The run and every task: iteration, where it ran, start, queue wait, duration,
  // attempts, outcome. Errors: kNotFound.
  Result<nlohmann::json> trace(const std::string& runId) const;

  // A Costless profile of the workflow's chain (costless.h, docs/design/costless.md)
  // measured from its last `runs` succeeded runs: per function, the mean of its own run
  // time on edge-tier and on cloud-tier resources (this node's tier, the tier of the
  // cluster node that ran it; Serverless endpoints count as cloud), the mean time its calls
  // to the cloud spent beyond that (transfer_ms; the group delay is their overall mean),
  // and its memory limit; default cloud prices. Errors: kNotFound, kInvalidArgument (not
  // a chain, or functions never measured at the edge or in the cloud, named).
  Result<nlohmann::json> profile(const std::string& name, size_t runs) const;

  // Starts a run of `name` with `input` (a JSON object). `done` is called once the run
  // ended (or at once when it cannot start: kNotFound, a bad input). Returns the run id
  // ("" when it did not start). A run whose caller is answered at its start (kAtStart:
  // async runs) is on disk before start() returns; one answered at its end is
  // group-committed (run_store.h).
  enum class Answer { kAtEnd, kAtStart };
  std::string start(const std::string& name, const std::string& input, Answer answer,
                    std::function<void(const std::string& runId, RunOutcome)> done);

  // Resumes every run a previous process left unfinished.
  size_t resumeUnfinished();
  // Refuses new runs and waits (up to `drain`) for runs in progress. Runs still going at
  // the deadline stay unfinished on disk and resume at the next start.
  void stop(std::chrono::milliseconds drain);

  struct Deployed;
  // After stop()'s drain: no task starts any more.
  bool closed() const { return closed_.load(); }

 private:
  WorkflowService(std::unique_ptr<RunStore> store, ServiceDeps deps);
  Result<std::shared_ptr<Deployed>> build(const std::string& name, const std::string& afcl,
                                          const std::string& types, const WorkflowOptions& options);
  void launch(const std::shared_ptr<Deployed>& d, const std::string& runId, nlohmann::json input,
              std::map<std::string, std::string> finished,
              std::function<void(const std::string&, RunOutcome)> done, int64_t startedMs);

  std::unique_ptr<RunStore> store_;
  ServiceDeps deps_;
  WorkQueue serverless_;  // blocking HTTP calls to Serverless resources
  mutable Mutex mu_;
  std::condition_variable idle_;
  std::map<std::string, std::shared_ptr<Deployed>> deployed_ TERN_GUARDED_BY(mu_);
  std::map<std::string, std::pair<std::shared_ptr<Run>, std::shared_ptr<Deployed>>> active_
      TERN_GUARDED_BY(mu_);
  std::atomic<bool> stopping_{false};  // no new runs
  std::atomic<bool> closed_{false};    // no new tasks
  uint64_t runCounter_ = 0;
  int64_t lastPurgeMs_ = 0;  // when ended runs past the retention were last removed
  uint64_t idSalt_ = 0;
};

}  // namespace tern::workflow
