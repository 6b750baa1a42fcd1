#pragma once
// A file compiled into a binary: its path, its bytes and their SHA-256. The tables are
// generated at build time by cmake/embed_files.cmake: the templates and guest SDKs of
// `tern new` (cli/embedded_templates.h) and the web console's files that ternd serves at
// /ui (triggers/console_assets.h), so that neither needs a source tree at run time.

#include <string_view>

namespace tern {

struct EmbeddedFile {
  std::string_view path;     // relative to the tree it was taken from
  std::string_view content;  // the file's bytes
  std::string_view sha256 = {};  // of the bytes, 64 lower-case hex digits
};

}  // namespace tern
