#include "cli/cluster_commands.h"

#include <fmt/format.h>

#include <ostream>

#include "cli/output_format.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? terminalSafe(it->get<std::string>()) : std::string();
}

int64_t integer(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

}  // namespace

std::string formatNodes(const json& doc) {
  std::vector<std::vector<std::string>> rows{
      {"NODE", "SITE", "TIER", "STATE", "SLOTS", "QUEUED", "FUNCTIONS", "LABELS", "HTTP"}};
  auto nodes = doc.find("nodes");
  if (nodes != doc.end() && nodes->is_array()) {
    for (const auto& n : *nodes) {
      if (!n.is_object()) continue;
      std::string labels;
      if (auto l = n.find("labels"); l != n.end() && l->is_array()) {
        for (const auto& x : *l) {
          if (!x.is_string()) continue;
          if (!labels.empty()) labels += ",";
          labels += terminalSafe(x.get<std::string>());
        }
      }
      size_t functions = 0;
      if (auto f = n.find("functions"); f != n.end() && f->is_object()) functions = f->size();
      rows.push_back({text(n, "id"), text(n, "site"), text(n, "tier"), text(n, "state"),
                      fmt::format("{}/{}", integer(n, "running"), integer(n, "slots")),
                      std::to_string(integer(n, "queued")), std::to_string(functions),
                      labels.empty() ? "-" : labels, text(n, "http")});
    }
  }
  std::string out = renderTable(rows);
  auto connected = doc.find("connected");
  if (connected != doc.end() && connected->is_boolean() && !connected->get<bool>()) {
    out += "(this node is not connected to NATS: the list is what it knew last)\n";
  }
  return out;
}

int nodesCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) {
    err << "tern: " << client.error().describe() << "\n";
    return errorKind(client.error().code()).exitStatus;
  }
  auto reply = client->call("GET", "/v1/cluster/nodes");
  if (!reply.ok()) {
    err << "tern: " << reply.error().describe() << "\n";
    return errorKind(reply.error().code()).exitStatus;
  }
  if (node.format == OutputFormat::kJson) {
    out << reply->raw;
  } else {
    out << formatNodes(reply->doc);
  }
  out.flush();
  return 0;
}

}  // namespace tern::cli
