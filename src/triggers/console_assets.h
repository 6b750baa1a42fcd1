#pragma once
// The web console's files (console/), embedded in ternd by the build
// (cmake/embed_console.cmake writes the table) and served at /ui by the gateway
// (console_routes.cpp). See docs/console.md.

#include <span>
#include <string_view>

namespace tern::triggers {

struct ConsoleAsset {
  std::string_view path;         // under /ui/: "index.html", "app.js"
  std::string_view contentType;
  std::string_view body;
  std::string_view etag;         // the quoted SHA-256 of the body
};

std::span<const ConsoleAsset> consoleAssets();

}  // namespace tern::triggers
