// The tern command-line tool. main() only parses arguments and dispatches; every command
// lives in src/cli where tests reach it.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cli/async_commands.h"
#include "cli/cluster_commands.h"
#include "cli/device_command.h"
#include "cli/invoke_command.h"
#include "cli/manage_commands.h"
#include "cli/new_command.h"
#include "cli/node_client.h"
#include "cli/plan_command.h"
#include "cli/provider_commands.h"
#include "cli/run_command.h"
#include "cli/stream_commands.h"
#include "cli/token_commands.h"
#include "cli/up_command.h"
#include "cli/workflow_commands.h"
#include "util/error.h"

namespace {

// Adds the positional NAME of a function to a subcommand.
void addName(CLI::App* cmd, std::string& name) {
  cmd->add_option("name", name, "the function's name")->required();
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = tern::cli;
  CLI::App app{"tern: a serverless platform for the edge, running WebAssembly functions"};
  app.set_version_flag("--version", std::string("tern ") + TERN_VERSION);
  app.require_subcommand(1);
  // Global options may also follow the subcommand: `tern ls --json`.
  app.fallthrough();

  cli::NodeOptions node;
  bool json = false;
  app.add_option("--node", node.node,
                 "the node's URL (default $TERN_NODE, else http://127.0.0.1:8080)");
  app.add_option("--token", node.token,
                 "bearer token: the node's admin token or one made by tern token create "
                 "(default $TERN_TOKEN, else the local node's admin.token)");
  app.add_option("--ca-file", node.caFile,
                 "CA certificates (PEM) to verify https:// nodes against (default "
                 "$TERN_CA_FILE, else the system's trusted CAs)");
  app.add_flag("--json", json, "print the node's raw JSON answer instead of the human format");

  cli::RunOptions run;
  auto* runCmd = app.add_subcommand("run", "Run a WebAssembly module as one invocation");
  runCmd->add_option("file", run.modulePath, "the .wasm module (a WASI command)")->required();
  runCmd->add_option("--input", run.inputPath,
                     "file to use as the function's stdin "
                     "(default: tern's own stdin)");
  runCmd->add_option("--env", run.env, "environment variable KEY=VALUE (repeatable)");
  runCmd->add_option("--arg", run.args, "argument for the function (repeatable)");
  runCmd->add_option("--timeout-ms", run.timeoutMs, "stop the invocation after this long")
      ->check(CLI::Range(1u, 86400000u));
  runCmd->add_option("--memory-mb", run.memoryMb, "linear memory limit")
      ->check(CLI::Range(1u, 4096u));
  runCmd->add_option("--repeat", run.repeat, "run N fresh sandboxes one after another")
      ->check(CLI::Range(1u, 100000000u));
  auto* runCompileTier =
      runCmd->add_option("--compile-tier", run.compileTier,
                         "auto (default: the optimized object when cached, else baseline for one "
                         "run and optimized with --repeat), baseline or optimized")
          ->check(CLI::IsMember({"auto", "baseline", "optimized"}));
  runCmd->add_option("--tier", run.compileTier, "the same as --compile-tier")
      ->check(CLI::IsMember({"auto", "baseline", "optimized"}))
      ->excludes(runCompileTier);
  runCmd->add_option("--cache-dir", run.cacheDir,
                     "compiled-module cache "
                     "(default $TERN_CACHE_DIR or ~/.cache/tern)");

  cli::DeployOptions deploy;
  uint32_t memoryMb = 0, timeoutMs = 0, concurrency = 0;
  auto* deployCmd = app.add_subcommand("deploy", "Deploy a module as a function's new version");
  addName(deployCmd, deploy.name);
  deployCmd->add_option("file", deploy.modulePath, "the .wasm module (a WASI command)")->required();
  auto* memoryOpt = deployCmd->add_option("--memory-mb", memoryMb,
                                          "linear memory limit, 1..4096 (node default 128)");
  auto* timeoutOpt = deployCmd->add_option("--timeout-ms", timeoutMs,
                                           "per-invocation timeout, 1..900000 (default 10000)");
  auto* concurrencyOpt = deployCmd->add_option(
      "--concurrency", concurrency, "invocations at once, 0..65536 (0: the node's slots)");
  deployCmd->add_option("--env", deploy.env, "environment variable KEY=VALUE (repeatable)");
  deployCmd->add_option("--trigger", deploy.triggers,
                        "event source (repeatable): mqtt:TOPIC_FILTER, cron:\"M H DOM MON DOW\", "
                        "every:DURATION (10s, 5m, 1h)");
  deployCmd->add_option("--reply-topic", deploy.replyTopic,
                        "MQTT triggers: publish the function's stdout to this topic");
  deployCmd->add_option("--allow", deploy.allow,
                        "grant a host API capability (repeatable): kv, publish:TOPIC_FILTER, "
                        "invoke:NAME");

  deployCmd->add_option("--sites", deploy.sites, "in a cluster: run only at these sites")
      ->delimiter(',');
  deployCmd->add_option("--tier", deploy.tierWords,
                        "edge or cloud: in a cluster, run only on this tier; auto, baseline or "
                        "optimized: the same as --compile-tier (may be given twice, once each)");
  deployCmd->add_option("--compile-tier", deploy.compileTier,
                        "which compiler builds the function: auto (baseline at once, optimized "
                        "swapped in when ready; default), baseline or optimized")
      ->check(CLI::IsMember({"auto", "baseline", "optimized"}));
  deployCmd->add_option("--labels", deploy.labels,
                        "in a cluster: run only on nodes with these labels, k=v,k=v")
      ->delimiter(',');

  double sloMs = 0, sloPercentile = 0, weight = 1;
  auto* sloOpt = deployCmd->add_option(
      "--slo-ms", sloMs, "response-time objective in ms (default: none, best effort)");
  auto* sloPercentileOpt = deployCmd->add_option(
      "--slo-percentile", sloPercentile,
      "the objective holds at this percentile, e.g. 95 (default: the mean)");
  auto* weightOpt = deployCmd->add_option(
      "--weight", weight, "share of the node's worker slots when oversubscribed (default 1)");

  cli::InvokeOptions invoke;
  std::string data, dataFile;
  auto* invokeCmd = app.add_subcommand("invoke", "Invoke a function through the node");
  addName(invokeCmd, invoke.name);
  auto* dataOpt = invokeCmd->add_option("--data", data, "the request body");
  auto* dataFileOpt = invokeCmd->add_option("--data-file", dataFile,
                                            "read the request body from a file (- is stdin)");
  dataOpt->excludes(dataFileOpt);
  invokeCmd->add_option("--path", invoke.path, "/REST after /fn/NAME, may end with ?QUERY");
  invokeCmd->add_option("--method", invoke.method,
                        "HTTP method (default POST with a body, else GET)");
  invokeCmd->add_option("--header", invoke.headers, "request header NAME:VALUE (repeatable)");
  cli::AsyncInvokeOptions asyncInvoke;
  bool async = false;
  invokeCmd->add_flag("--async", async,
                      "enqueue a durable async invocation and print its id (see tern invocation)");
  auto* keyOpt = invokeCmd->add_option("--idempotency-key", asyncInvoke.idempotencyKey,
                                       "with --async: the same key returns the same invocation");
  auto* callbackOpt = invokeCmd->add_option(
      "--callback-url", asyncInvoke.callbackUrl,
      "with --async: http:// URL that receives the outcome as a JSON POST");

  std::string invocationId;
  auto* invocationCmd =
      app.add_subcommand("invocation", "Show an async invocation's status and output");
  invocationCmd->add_option("id", invocationId, "the id printed by tern invoke --async")
      ->required();

  auto* lsCmd = app.add_subcommand("ls", "List the node's functions");

  std::string name;
  auto* infoCmd = app.add_subcommand("info", "Show a function's settings and invocations");
  addName(infoCmd, name);

  cli::LogsOptions logs;
  auto* logsCmd = app.add_subcommand("logs", "Print a function's stderr lines");
  addName(logsCmd, logs.name);
  logsCmd->add_flag("--follow,-f", logs.follow, "keep printing new lines until interrupted");

  auto* versionsCmd = app.add_subcommand("versions", "List a function's versions");
  addName(versionsCmd, name);
  auto* rollbackCmd =
      app.add_subcommand("rollback", "Make the version before the active one active");
  addName(rollbackCmd, name);
  auto* rmCmd = app.add_subcommand("rm", "Remove a function and all its versions");
  addName(rmCmd, name);
  auto* statusCmd = app.add_subcommand("status", "Show the node's status");
  auto* nodesCmd = app.add_subcommand("nodes", "List the cluster's nodes with their load");

  cli::PlanCapacityOptions plan;
  double percentile = 0;
  auto* planCmd = app.add_subcommand("plan", "Plan capacity locally from the queueing model");
  planCmd->require_subcommand(1);
  auto* capacityCmd = planCmd->add_subcommand(
      "capacity", "Worker slots needed to meet a response-time objective (M/M/c)");
  capacityCmd->add_option("--rate", plan.ratePerSecond, "arrivals per second")->required();
  capacityCmd->add_option("--service-ms", plan.serviceMs, "mean service time in ms")->required();
  capacityCmd->add_option("--slo-ms", plan.sloMs, "response-time objective in ms")->required();
  auto* percentileOpt = capacityCmd->add_option(
      "--percentile", percentile, "the objective holds at this percentile, e.g. 95");
  capacityCmd->add_flag("--mean", plan.mean, "the objective bounds the mean response time");
  cli::PlanWorkflowOptions planWorkflow;
  auto* planWorkflowCmd = planCmd->add_subcommand(
      "workflow", "The cheapest edge/cloud split and fusion of a chain within a latency bound");
  planWorkflowCmd->add_option("file", planWorkflow.file, "the AFCL YAML file (a chain)")->required();
  planWorkflowCmd->add_option("--profile", planWorkflow.profile, "the profile JSON")->required();
  planWorkflowCmd->add_option("--latency-ms", planWorkflow.latencyMs, "the latency bound in ms")
      ->required()
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            bool ok = !v.empty() && end == v.c_str() + v.size() && std::isfinite(d) && d >= 0;
            return ok ? "" : "must be a non-negative number of milliseconds, got \"" + v + "\"";
          },
          "MS"));
  planWorkflowCmd->add_flag("--all", planWorkflow.all, "list every configuration with its price and latency");

  auto* workflowCmd = app.add_subcommand("workflow", "Deploy, run and trace AFCL workflows");
  workflowCmd->require_subcommand(1);
  cli::WorkflowDeployOptions wfDeploy;
  uint32_t wfLocalCapacity = 0, wfAttempts = 0;
  auto* wfDeployCmd = workflowCmd->add_subcommand("deploy", "Deploy an AFCL workflow");
  wfDeployCmd->add_option("name", wfDeploy.name, "the workflow's name")->required();
  wfDeployCmd->add_option("file", wfDeploy.file, "the AFCL YAML file")->required();
  wfDeployCmd->add_option("--types", wfDeploy.types, "type mapping JSON (Apollo's format)");
  wfDeployCmd->add_option("--policy", wfDeploy.policy,
                          "task placement: local-first (default), size, latency, random")
      ->check(CLI::IsMember({"local-first", "size", "latency", "random"}));
  auto* wfCapacityOpt = wfDeployCmd->add_option(
      "--local-capacity", wfLocalCapacity, "tasks on this node at once (default: its slots)");
  auto* wfAttemptsOpt =
      wfDeployCmd->add_option("--attempts", wfAttempts, "attempts per task (default 3)");
  wfDeployCmd->add_option("--plan", wfDeploy.plan,
                          "a Costless plan (tern plan workflow --json): edge functions at the "
                          "edge tier, each cloud group fused on one cloud-tier node");
  cli::WorkflowRunOptions wfRun;
  std::string wfInput, wfData;
  auto* wfRunCmd = workflowCmd->add_subcommand("run", "Run a workflow and print its output");
  wfRunCmd->add_option("name", wfRun.name, "the workflow")->required();
  auto* wfInputOpt = wfRunCmd->add_option("--input", wfInput, "the input JSON file (- is stdin)");
  auto* wfDataOpt = wfRunCmd->add_option("--data", wfData, "the input JSON");
  wfInputOpt->excludes(wfDataOpt);
  auto* wfLsCmd = workflowCmd->add_subcommand("ls", "List the node's workflows");
  std::string wfName;
  auto* wfRmCmd = workflowCmd->add_subcommand("rm", "Remove a workflow");
  wfRmCmd->add_option("name", wfName, "the workflow")->required();
  auto* wfRunsCmd = workflowCmd->add_subcommand("runs", "List a workflow's recent runs");
  wfRunsCmd->add_option("name", wfName, "the workflow")->required();
  std::string wfRunId;
  auto* wfTraceCmd = workflowCmd->add_subcommand("trace", "Show a run's tasks: where, when, how long");
  wfTraceCmd->add_option("run_id", wfRunId, "the run id (X-Tern-Run-Id)")->required();

  cli::ProfileOptions profileOptions;
  auto* profileCmd = app.add_subcommand("profile", "Measured profiles for planning");
  profileCmd->require_subcommand(1);
  auto* profileWorkflowCmd = profileCmd->add_subcommand(
      "workflow", "A workflow chain's profile for tern plan workflow, from its recent runs");
  profileWorkflowCmd->add_option("name", profileOptions.name, "the workflow")->required();
  profileWorkflowCmd->add_option("--runs", profileOptions.runs, "recent runs to measure (1..1000, default 20)")
      ->check(CLI::Range(1, 1000));
  profileWorkflowCmd->add_option("--prices", profileOptions.prices,
                                 "JSON of gb_second, request, transition, edge_fixed (default: the node's)");

  auto* streamCmd = app.add_subcommand("stream", "Publish to topics and follow them as a device does");
  streamCmd->require_subcommand(1);
  cli::PublishOptions publish;
  std::string publishData;
  auto* publishCmd = streamCmd->add_subcommand("publish", "Publish an update to a topic, print its sequence number");
  publishCmd->add_option("topic", publish.topic, "the topic")->required();
  auto* publishDataOpt = publishCmd->add_option("--data", publishData, "the update (default: read from stdin)");
  cli::SubscribeOptions subscribe;
  std::string subscribeParams;
  uint64_t resumeAfter = 0, subscribeCount = 0, subscribeCredits = 0;
  auto* subscribeCmd = streamCmd->add_subcommand(
      "subscribe", "Follow a topic over the node's stream endpoint, one line per update");
  subscribeCmd->add_option("topic", subscribe.topic, "the topic")->required();
  subscribeCmd->add_option("--app", subscribe.app, "receive the updates through this app (its processor and rate)");
  auto* paramsOpt = subscribeCmd->add_option("--params", subscribeParams,
                                             "a JSON object passed to the app's processor");
  auto* resumeOpt = subscribeCmd->add_option("--resume-after", resumeAfter,
                                             "start after this sequence number (0: every retained update)");
  subscribeCmd->add_option("--guarantee", subscribe.guarantee, "best-effort (default) or at-least-once")
      ->check(CLI::IsMember({"best-effort", "at-least-once"}));
  auto* countOpt = subscribeCmd->add_option("--count", subscribeCount, "stop after N updates")
      ->check(CLI::PositiveNumber);
  auto* creditsOpt = subscribeCmd->add_option(
      "--credits", subscribeCredits, "flow control: at most N updates in flight (default: no flow control)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 53));

  auto* appCmd = app.add_subcommand("app", "Deploy, list and remove stream apps");
  appCmd->require_subcommand(1);
  cli::AppDeployOptions appDeploy;
  double maxPerSecond = 0;
  auto* appDeployCmd = appCmd->add_subcommand("deploy", "Create or replace a stream app");
  appDeployCmd->add_option("name", appDeploy.name, "the app's name")->required();
  appDeployCmd->add_option("--processor", appDeploy.processor,
                           "a deployed function called per update and subscriber (default: none)");
  auto* maxPerSecondOpt = appDeployCmd->add_option(
      "--max-per-second", maxPerSecond, "updates per second per subscriber at most (default: no limit)");
  auto* appLsCmd = appCmd->add_subcommand("ls", "List the stream apps");
  std::string appName;
  auto* appRmCmd = appCmd->add_subcommand("rm", "Remove a stream app");
  appRmCmd->add_option("name", appName, "the app's name")->required();

  cli::NewOptions newProject;
  auto* newCmd = app.add_subcommand("new", "Make a function project from a template: source, SDK, build, test, tern.yaml");
  newCmd->add_option("name", newProject.name, "the project's directory, function and app name")->required();
  newCmd->add_option("--lang", newProject.language, "c, cpp, rust or assemblyscript")->required();
  newCmd->add_option("--trigger", newProject.trigger, "http, mqtt or cron")->capture_default_str();

  cli::UpOptions up;
  auto* upCmd = app.add_subcommand(
      "up", "Build what changed and deploy an app's manifest, printing the plan first");
  upCmd->add_option("-f,--file", up.file, "the manifest (default tern.yaml)");
  upCmd->add_flag("--dry-run", up.dryRun, "print the plan and change nothing");
  auto* downCmd = app.add_subcommand("down", "Remove what an app's manifest declares and the app owns");
  downCmd->add_option("-f,--file", up.file, "the manifest (default tern.yaml)");
  downCmd->add_flag("--dry-run", up.dryRun, "print the plan and change nothing");

  auto* providerCmd = app.add_subcommand("provider", "Add, list and remove the providers that may serve functions");
  providerCmd->require_subcommand(1);
  cli::ProviderAddOptions providerAdd;
  double pricePerCall = 0;
  auto* providerAddCmd = providerCmd->add_subcommand("add", "Create or replace a provider");
  providerAddCmd->add_option("name", providerAdd.name, "the provider's name")->required();
  providerAddCmd->add_option("--kind", providerAdd.kind, "tern (another tern node) or http (an HTTP function endpoint)")
      ->required()
      ->check(CLI::IsMember({"tern", "http"}));
  providerAddCmd->add_option("--url", providerAdd.url,
                             "tern: http://HOST[:PORT][/PREFIX]; http: the endpoint, {function} standing for the "
                             "function's name")
      ->required();
  providerAddCmd->add_option("--token-file", providerAdd.tokenFile,
                             "a file on the node's machine holding the provider's bearer token (absolute path)");
  providerAddCmd->add_option("--tier", providerAdd.tier, "edge (default) or cloud")
      ->check(CLI::IsMember({"edge", "cloud"}));
  auto* pricePerCallOpt =
      providerAddCmd->add_option("--price-per-call", pricePerCall, "what one call costs, in your unit (default 0)");
  auto* providerLsCmd = providerCmd->add_subcommand("ls", "List the providers with their statistics per function");
  std::string providerName;
  auto* providerRmCmd = providerCmd->add_subcommand("rm", "Remove a provider no route names");
  providerRmCmd->add_option("name", providerName, "the provider's name")->required();

  auto* routeCmd = app.add_subcommand("route", "Set, list and remove which providers serve a function");
  routeCmd->require_subcommand(1);
  cli::RouteSetOptions routeSet;
  auto* routeSetCmd = routeCmd->add_subcommand("set", "Create or replace a function's route");
  routeSetCmd->add_option("function", routeSet.function, "the function's name")->required();
  routeSetCmd->add_option("--providers", routeSet.providers, "the providers in order, e.g. local,edge2,cloud")
      ->required()
      ->delimiter(',')
      ->allow_extra_args(false);
  routeSetCmd->add_option("--policy", routeSet.policy,
                          "round-robin, lowest-latency, weighted, cheapest-within:MS, single or wasm:FUNCTION")
      ->required();
  auto* routeLsCmd = routeCmd->add_subcommand("ls", "List the routes");
  std::string routeFunction;
  auto* routeRmCmd = routeCmd->add_subcommand("rm", "Remove a function's route");
  routeRmCmd->add_option("function", routeFunction, "the function's name")->required();

  auto* tokenCmd = app.add_subcommand("token", "Create, list and revoke scoped API tokens");
  tokenCmd->require_subcommand(1);
  cli::TokenCreateOptions tokenCreate;
  double tokenRate = 0, tokenBurst = 0;
  auto* tokenCreateCmd = tokenCmd->add_subcommand("create", "Make a token and print it (only this once)");
  tokenCreateCmd->add_option("name", tokenCreate.name, "the token's name")->required();
  tokenCreateCmd->add_option("--scope", tokenCreate.scopes,
                             "what the token may do: admin, deploy, read, invoke:FUNCTION, "
                             "invoke:wf/WORKFLOW, invoke:* (comma-separated or repeated)")
      ->required()
      ->delimiter(',');
  tokenCreateCmd->add_option("--expires-in", tokenCreate.expiresIn, "lifetime: 90s, 15m, 12h, 30d (default: never)");
  auto* tokenRateOpt = tokenCreateCmd->add_option("--rate", tokenRate, "requests per second on each node (default: no limit)");
  auto* tokenBurstOpt =
      tokenCreateCmd->add_option("--burst", tokenBurst, "requests at once above the rate (default: the rate, at least 1)");
  auto* tokenLsCmd = tokenCmd->add_subcommand("ls", "List the tokens not revoked (never the tokens themselves)");
  std::string tokenName;
  auto* tokenRevokeCmd = tokenCmd->add_subcommand("revoke", "Revoke a token: it is refused from now on");
  tokenRevokeCmd->add_option("name", tokenName, "the token's name")->required();

  cli::DeviceCallOptions deviceCall;
  auto* deviceCmd = app.add_subcommand("device", "Act as a device: run calls here or offload them");
  deviceCmd->require_subcommand(1);
  auto* deviceCallCmd = deviceCmd->add_subcommand(
      "call", "Call a function N times, each here, at an edge node or in the cloud as the policy decides");
  deviceCallCmd->add_option("function", deviceCall.function, "the function's name")->required();
  deviceCallCmd->add_option("--edge", deviceCall.edges, "an edge node's URL (repeatable)");
  deviceCallCmd->add_option("--cloud", deviceCall.cloud, "a cloud-tier node's URL");
  deviceCallCmd->add_option("--discover", deviceCall.discover,
                            "a cluster node's URL: its edge and cloud nodes (as `tern nodes` lists them) "
                            "are added to --edge and --cloud");
  deviceCallCmd->add_option("--policy", deviceCall.policy, "local, edge, cloud or adaptive")
      ->check(CLI::IsMember({"local", "edge", "cloud", "adaptive"}))
      ->capture_default_str();
  deviceCallCmd->add_option("--algorithm", deviceCall.algorithm, "the adaptive policy's bandit: ucb1 or bayes-ucb")
      ->check(CLI::IsMember({"ucb1", "bayes-ucb"}))
      ->capture_default_str();
  deviceCallCmd->add_option("--count", deviceCall.count, "calls to make")->check(CLI::Range(1u, 10000000u));
  deviceCallCmd->add_option("--interval-ms", deviceCall.intervalMs, "pause between calls")
      ->check(CLI::Range(0u, 3600000u));
  auto* deviceDataOpt = deviceCallCmd->add_option("--data", deviceCall.data, "the calls' input");
  deviceCallCmd->add_option("--input-file", deviceCall.inputFile, "a file holding the calls' input");
  deviceCallCmd->add_option("--state-dir", deviceCall.stateDir,
                            "what the device keeps between runs: functions, objects, learned latencies "
                            "(default: the cache directory's device/)");
  deviceCallCmd->add_option("--timeout-ms", deviceCall.timeoutMs, "a remote call's deadline before falling back")
      ->check(CLI::Range(1u, 3600000u))
      ->capture_default_str();
  deviceCallCmd->add_option("--cc", deviceCall.cc,
                            "a C compiler to build a function here when no node serves its object for "
                            "this machine (default: none; the function then runs remotely)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    tern::Error error(tern::ErrorCode::kInvalidArgument, e.what());
    std::cerr << "tern: " << error.describe() << " (see tern --help)\n";
    return tern::errorKind(error.code()).exitStatus;
  }

  node.format = json ? cli::OutputFormat::kJson : cli::OutputFormat::kHuman;
  if (memoryOpt->count()) deploy.memoryMb = memoryMb;
  if (timeoutOpt->count()) deploy.timeoutMs = timeoutMs;
  if (concurrencyOpt->count()) deploy.concurrency = concurrency;
  if (sloOpt->count()) deploy.sloMs = sloMs;
  if (sloPercentileOpt->count()) deploy.sloPercentile = sloPercentile;
  if (weightOpt->count()) deploy.weight = weight;
  if (dataOpt->count()) invoke.data = data;
  if (percentileOpt->count()) plan.percentile = percentile;
  if (dataFileOpt->count()) invoke.dataFile = dataFile;

  auto& out = std::cout;
  auto& err = std::cerr;
  if (runCmd->parsed()) return cli::runCommand(run, std::cin, out, err);
  if (deployCmd->parsed()) return cli::deployCommand(node, deploy, out, err);
  if (invokeCmd->parsed() && async) {
    if (!invoke.path.empty() || !invoke.method.empty() || !invoke.headers.empty()) {
      std::cerr << "tern: invalid argument: --path, --method and --header do not apply to "
                   "--async invocations\n";
      return tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
    }
    asyncInvoke.name = invoke.name;
    asyncInvoke.data = invoke.data;
    asyncInvoke.dataFile = invoke.dataFile;
    return cli::asyncInvokeCommand(node, asyncInvoke, std::cin, out, err);
  }
  if (invokeCmd->parsed() && (keyOpt->count() || callbackOpt->count())) {
    std::cerr << "tern: invalid argument: --idempotency-key and --callback-url need --async\n";
    return tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
  }
  if (invokeCmd->parsed()) return cli::invokeCommand(node, invoke, std::cin, out, err);
  if (invocationCmd->parsed()) return cli::invocationCommand(node, invocationId, out, err);
  if (lsCmd->parsed()) return cli::listCommand(node, out, err);
  if (infoCmd->parsed()) return cli::infoCommand(node, name, out, err);
  if (logsCmd->parsed()) return cli::logsCommand(node, logs, out, err);
  if (versionsCmd->parsed()) return cli::versionsCommand(node, name, out, err);
  if (rollbackCmd->parsed()) return cli::rollbackCommand(node, name, out, err);
  if (rmCmd->parsed()) return cli::removeCommand(node, name, out, err);
  if (statusCmd->parsed()) return cli::statusCommand(node, out, err);
  if (nodesCmd->parsed()) return cli::nodesCommand(node, out, err);
  if (wfCapacityOpt->count()) wfDeploy.localCapacity = wfLocalCapacity;
  if (wfAttemptsOpt->count()) wfDeploy.attempts = wfAttempts;
  if (wfInputOpt->count()) wfRun.input = wfInput;
  if (wfDataOpt->count()) wfRun.data = wfData;
  if (wfDeployCmd->parsed()) return cli::workflowDeployCommand(node, wfDeploy, out, err);
  if (wfRunCmd->parsed()) return cli::workflowRunCommand(node, wfRun, std::cin, out, err);
  if (wfLsCmd->parsed()) return cli::workflowListCommand(node, out, err);
  if (wfRmCmd->parsed()) return cli::workflowRemoveCommand(node, wfName, out, err);
  if (wfRunsCmd->parsed()) return cli::workflowRunsCommand(node, wfName, out, err);
  if (profileWorkflowCmd->parsed()) return cli::profileWorkflowCommand(node, profileOptions, out, err);
  if (wfTraceCmd->parsed()) return cli::workflowTraceCommand(node, wfRunId, out, err);
  if (capacityCmd->parsed()) return cli::planCapacityCommand(plan, node.format, out, err);
  if (planWorkflowCmd->parsed()) return cli::planWorkflowCommand(planWorkflow, node.format, out, err);
  if (publishCmd->parsed()) {
    if (publishDataOpt->count()) publish.data = publishData;
    return cli::streamPublishCommand(node, publish, std::cin, out, err);
  }
  if (subscribeCmd->parsed()) {
    if (paramsOpt->count()) subscribe.params = subscribeParams;
    if (resumeOpt->count()) subscribe.resumeAfter = resumeAfter;
    if (countOpt->count()) subscribe.count = subscribeCount;
    if (creditsOpt->count()) subscribe.credits = subscribeCredits;
    return cli::streamSubscribeCommand(node, subscribe, out, err);
  }
  if (appDeployCmd->parsed()) {
    if (maxPerSecondOpt->count()) appDeploy.maxPerSecond = maxPerSecond;
    return cli::appDeployCommand(node, appDeploy, out, err);
  }
  if (appLsCmd->parsed()) return cli::appListCommand(node, out, err);
  if (appRmCmd->parsed()) return cli::appRemoveCommand(node, appName, out, err);
  if (providerAddCmd->parsed()) {
    if (pricePerCallOpt->count()) providerAdd.pricePerCall = pricePerCall;
    return cli::providerAddCommand(node, providerAdd, out, err);
  }
  if (providerLsCmd->parsed()) return cli::providerListCommand(node, out, err);
  if (providerRmCmd->parsed()) return cli::providerRemoveCommand(node, providerName, out, err);
  if (tokenCreateCmd->parsed()) {
    if (tokenRateOpt->count()) tokenCreate.rate = tokenRate;
    if (tokenBurstOpt->count()) tokenCreate.burst = tokenBurst;
    return cli::tokenCreateCommand(node, tokenCreate, out, err);
  }
  if (tokenLsCmd->parsed()) return cli::tokenListCommand(node, out, err);
  if (tokenRevokeCmd->parsed()) return cli::tokenRevokeCommand(node, tokenName, out, err);
  if (routeSetCmd->parsed()) return cli::routeSetCommand(node, routeSet, out, err);
  if (routeLsCmd->parsed()) return cli::routeListCommand(node, out, err);
  if (routeRmCmd->parsed()) return cli::routeRemoveCommand(node, routeFunction, out, err);
  if (newCmd->parsed()) return cli::newCommand(newProject, out, err);
  if (upCmd->parsed()) return cli::upCommand(node, up, out, err);
  if (downCmd->parsed()) return cli::downCommand(node, up, out, err);
  if (deviceCallCmd->parsed()) {
    deviceCall.hasData = deviceDataOpt->count() > 0;
    deviceCall.json = json;
    deviceCall.token = node.token;
    deviceCall.caFile = node.caFile;
    return cli::deviceCallCommand(deviceCall, out, err);
  }
  return 0;
}
