#pragma once
// The web console's files (console/), embedded in ternd by the build
// (cmake/embed_files.cmake writes the table) and served at /ui by the gateway
// (console_routes.cpp). See docs/console.md.

#include <span>
#include <string_view>

#include "util/embedded_file.h"

namespace tern::triggers {

// Paths relative to console/: "index.html", "app.js".
std::span<const EmbeddedFile> consoleAssets();

// The Content-Type a console file is served with, from its extension; empty for an
// extension the console does not use (a unit test holds every embedded file to a type).
std::string_view consoleContentType(std::string_view path);

}  // namespace tern::triggers
