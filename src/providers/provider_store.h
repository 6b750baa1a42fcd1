#pragma once
// Providers and routes of a node in <data>/providers.db (SQLite). Each node keeps its own:
// latency is what this node's callers see, so the choice is per node.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "providers/provider.h"
#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern {
class Database;
}

namespace tern::providers {

class ProviderStore {
 public:
  static Result<std::unique_ptr<ProviderStore>> open(const std::filesystem::path& file);
  ~ProviderStore();

  Result<void> putProvider(const Provider& p);
  Result<std::optional<Provider>> provider(std::string_view name);
  Result<std::vector<Provider>> providers();
  // Errors: kConflict when a route still names it (the message names the routes).
  Result<bool> removeProvider(std::string_view name);

  Result<void> putRoute(const Route& r);
  Result<std::optional<Route>> route(std::string_view function);
  Result<std::vector<Route>> routes();
  Result<bool> removeRoute(std::string_view function);

 private:
  explicit ProviderStore(std::unique_ptr<Database> db);
  Mutex mu_;
  std::unique_ptr<Database> db_ TERN_PT_GUARDED_BY(mu_);
};

}  // namespace tern::providers
