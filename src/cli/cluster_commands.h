#pragma once
// `tern nodes`: the cluster as the node sees it (GET /v1/cluster/nodes): every node with
// its site, tier, labels, load and state.

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/node_client.h"

namespace tern::cli {

// The table of `tern nodes` from the node's answer.
std::string formatNodes(const nlohmann::json& nodes);

int nodesCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);

}  // namespace tern::cli
