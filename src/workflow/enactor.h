#pragma once
// Event-driven enactment of one workflow run (docs/design/workflows.md): every element is
// activated as soon as its inputs exist, with no step barrier: a function becomes a task
// when all of its dataIns are there; a parallelFor expands to the actual collection size
// at run time; a while runs its body, then its condition; if and switch take one branch.
// Values live in scopes (the run, and one per loop iteration) under their reference text.
//
// Threading: a Run's state is guarded by its mutex, and one thread at a time drives it
// (a trampoline): task completions that arrive while it is being driven, also from inside
// a TaskRunner call that completes at once, are queued and handled by the driving thread,
// so nothing recurses and no lock is held while tasks are handed to the runner.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "workflow/afcl.h"
#include "workflow/run_store.h"
#include "util/thread_annotations.h"

namespace tern::workflow {

struct Unit;
struct Fusion;

struct TaskCall {
  std::string runId;
  std::string key;        // unique in the run: "parShift[3]/Shift"; a fused unit: its first member's
  const Element* task = nullptr;  // a fused unit: its first member
  // The JSON object of its dataIns; a fused unit: {"MEMBER": {its dataIns from outside
  // the unit}} (the rest come from earlier members, fusion.h).
  std::string input;
  uint32_t attempt = 1;
  const Unit* unit = nullptr;  // in a planned workflow: the unit (tier, fused members)
};

struct TaskResult {
  std::optional<std::string> error;  // why the attempt failed
  std::string output;                // stdout: a JSON object of its dataOuts
  std::string resource;              // where it ran
  int64_t startUs = 0;               // Unix time, microseconds
  int64_t durationUs = 0;
  int64_t execUs = -1;               // the function's own run time where it ran; -1: unknown
  // A fused unit: one result per member that was started, in order (their own error,
  // output and timings; the unit's `error` says why it stopped).
  std::vector<TaskResult> members;
};

// Runs task attempts somewhere (the workflow service: placement, then a function on this
// node, on a cluster node, or a Serverless endpoint). Calls `done` exactly once, possibly
// before returning.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual void runTask(const TaskCall& call, std::function<void(TaskResult)> done) = 0;
};

struct RunLimits {
  uint32_t attempts = 3;            // per task, the first included
  uint32_t maxTasksInFlight = 256;  // per run
  uint64_t maxIterations = 100000;  // per parallelFor expansion and per while
  uint64_t maxScopes = 1000000;     // loop iterations of the whole run
};

struct RunOutcome {
  std::optional<Error> error;  // the failed task (name, iteration) and why
  nlohmann::json output;       // the workflow's dataOuts by name
};

class Run : public std::enable_shared_from_this<Run> {
 public:
  // `finished` holds the outputs of tasks a previous attempt at this run completed (after
  // a restart): those are not run again. `onTask` sees every task record to keep;
  // `onDone` is called once. `fusion` (a planned workflow, fusion.h; it outlives the run)
  // makes each cloud group one task of the runner.
  Run(std::string id, std::shared_ptr<const Workflow> workflow, nlohmann::json input,
      RunLimits limits, TaskRunner& runner, std::map<std::string, std::string> finished,
      std::function<void(TaskRecord)> onTask, std::function<void(RunOutcome)> onDone,
      const Fusion* fusion = nullptr);

  void start() TERN_EXCLUDES(mu_);
  const std::string& id() const { return id_; }

 private:
  struct Scope {
    Scope* parent = nullptr;
    const Element* loop = nullptr;  // the loop this scope is one iteration of; null: the run
    std::string path;               // "parShift[3]", nested "a[1]/b[2]"
    std::unordered_map<std::string, nlohmann::json> values;
    std::unordered_map<std::string, std::vector<size_t>> waiters;  // key -> waiter ids
  };
  struct Waiter {
    size_t missing = 0;
    std::function<void()> fire;
  };
  struct Pending {
    TaskCall call;
    Scope* scope = nullptr;
    int64_t readyUs = 0;
  };

  // Queues `event`; the thread that finds nobody driving the run runs the events (and
  // hands ready tasks to the runner) until none are left.
  void post(std::function<void()> event) TERN_EXCLUDES(mu_);
  // All below run on the driving thread with mu_ held; so do the events and the waiters'
  // callbacks (lambdas marked TERN_REQUIRES(mu_)).
  Scope* newScope(Scope* parent, const Element* loop, std::string path) TERN_REQUIRES(mu_);
  Scope* home(Scope* s, const Ref& r) const TERN_REQUIRES(mu_);
  const nlohmann::json* lookup(Scope* s, const Ref& r) const TERN_REQUIRES(mu_);
  void set(Scope* s, const std::string& key, nlohmann::json value) TERN_REQUIRES(mu_);
  void when(Scope* s, std::vector<const Ref*> refs, std::function<void()> then)
      TERN_REQUIRES(mu_);
  void fail(Error e) TERN_REQUIRES(mu_);
  Result<nlohmann::json> inputValue(Scope* s, const DataIn& d) TERN_REQUIRES(mu_);
  Result<nlohmann::json> operandValue(Scope* s, const Operand& o) TERN_REQUIRES(mu_);
  void activateAll(const std::vector<Element>& list, Scope* s) TERN_REQUIRES(mu_);
  void activate(const Element& e, Scope* s) TERN_REQUIRES(mu_);
  void withInputs(const Element& e, Scope* s, Scope* target, std::function<void()> then)
      TERN_REQUIRES(mu_);
  void activateFunction(const Element& e, Scope* s) TERN_REQUIRES(mu_);
  void activateUnit(const Unit& u, Scope* s) TERN_REQUIRES(mu_);
  // The output of a task that ran without error, checked against its dataOuts (else
  // `error` is set).
  nlohmann::json checkedOutput(const Element& e, const std::string& output,
                               std::optional<std::string>& error);
  void record(const Pending& p, const Element& e, const TaskResult& r, const std::string& key)
      TERN_REQUIRES(mu_);
  void unitDone(Pending p, TaskResult r) TERN_REQUIRES(mu_);
  void activateBranching(const Element& e, Scope* s) TERN_REQUIRES(mu_);
  void activateParallelFor(const Element& e, Scope* s) TERN_REQUIRES(mu_);
  void iterateWhile(const Element& e, Scope* outer, uint64_t k,
                    std::map<std::string, nlohmann::json> carried) TERN_REQUIRES(mu_);
  void publishOutputs(const Element& e, Scope* from, Scope* to,
                      const std::vector<Element>* taken) TERN_REQUIRES(mu_);
  void taskDone(Pending p, TaskResult r) TERN_REQUIRES(mu_);
  void dispatchReady() TERN_REQUIRES(mu_);
  void checkFinished() TERN_REQUIRES(mu_);

  const std::string id_;
  const std::shared_ptr<const Workflow> wf_;
  const Fusion* fusion_;
  const nlohmann::json input_;
  const RunLimits limits_;
  TaskRunner& runner_;
  const std::map<std::string, std::string> finished_;
  const std::function<void(TaskRecord)> onTask_;
  const std::function<void(RunOutcome)> onDone_;

  // mu_ orders the events: post() queues them and the thread that finds nobody driving
  // runs them, with mu_ held. The scopes' contents are reached through scopes_ and the
  // events' captured pointers, only by functions that require mu_.
  Mutex mu_;
  bool driving_ TERN_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> events_ TERN_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Scope>> scopes_ TERN_GUARDED_BY(mu_);
  std::vector<Waiter> waiters_ TERN_GUARDED_BY(mu_);
  // Tasks waiting for the run's in-flight cap.
  std::deque<Pending> ready_ TERN_GUARDED_BY(mu_);
  // Handed to the runner once mu_ is released.
  std::vector<Pending> toDispatch_ TERN_GUARDED_BY(mu_);
  uint32_t inFlight_ TERN_GUARDED_BY(mu_) = 0;
  bool outputsReady_ TERN_GUARDED_BY(mu_) = false;
  bool ended_ TERN_GUARDED_BY(mu_) = false;
  std::optional<RunOutcome> outcome_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern::workflow
