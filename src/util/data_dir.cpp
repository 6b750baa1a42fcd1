#include "util/data_dir.h"

#include <cstdlib>

namespace tern {

std::filesystem::path defaultDataDir() {
  namespace fs = std::filesystem;
  if (const char* d = std::getenv("TERN_DATA"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "tern";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local/share/tern";
  return "/var/lib/tern";
}

}  // namespace tern
