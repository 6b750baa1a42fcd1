#pragma once
// Where a workflow task runs, decided at run time for each task (and again on each retry)
// by a pure function of a view of the candidate resources, so that it is tested from
// tables (tests/unit/workflow/placement_test.cpp). Policies follow Apollo's schedulers:
//   local-first  this node while it runs fewer than its local capacity of the workflow's
//                tasks; overflow to the other resources (the least busy first); with none
//                free the task waits, first come first served (LocalResources)
//   size         a task whose input exceeds the threshold (10 KB) stays on this node;
//                smaller ones go to the other resources (SizeConstraint)
//   latency      the resource with the lowest expected latency: measured history per
//                resource and function, scaled by how busy it is; untried resources first
//   random       any resource with room, uniformly

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::workflow {

enum class Policy : uint8_t { kLocalFirst, kSize, kLatency, kRandom };
const char* policyName(Policy p);
Result<Policy> parsePolicy(std::string_view name);

struct ResourceView {
  enum class Kind : uint8_t { kLocal, kNode, kServerless };
  Kind kind = Kind::kLocal;
  uint32_t inFlight = 0;   // the workflow's tasks running there now
  uint32_t capacity = 0;   // at most this many at once; 0: no limit
  double expectedMs = -1;  // mean latency measured for this function there; < 0: untried
  int64_t spare = 0;       // a cluster node's free worker slots (heartbeats)
};

struct PlacementParams {
  Policy policy = Policy::kLocalFirst;
  uint64_t sizeThresholdBytes = 10 * 1024;
};

// The index of the chosen resource, or nullopt: wait until a task finishes.
// `random01` is a uniform number in [0, 1) for the random policy.
std::optional<size_t> placeTask(uint64_t inputBytes, const std::vector<ResourceView>& resources,
                                const PlacementParams& params, double random01);

}  // namespace tern::workflow
