#pragma once
// Where a local node keeps its data by default. ternd uses it for --data and tern uses it
// to find the local node's admin token, so both agree on one rule.

#include <filesystem>

namespace tern {

// $TERN_DATA, else $XDG_DATA_HOME/tern, else $HOME/.local/share/tern, else /var/lib/tern.
std::filesystem::path defaultDataDir();

}  // namespace tern
