#pragma once
// `tern new NAME --lang c|cpp|rust|assemblyscript [--trigger http|mqtt|cron]`: a function
// project in the directory NAME (docs/templates.md), from the templates embedded in tern
// (project_template.h). Everything is checked and rendered before anything is written; the
// files are written into a temporary directory beside NAME that is renamed to NAME at the
// end, so a failure leaves nothing behind and an existing NAME is never touched.

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "cli/project_template.h"
#include "util/error.h"

namespace tern::cli {

struct NewOptions {
  std::string name;
  std::string language;          // required: c, cpp, rust or assemblyscript
  std::string trigger = "http";  // http, mqtt or cron
  std::filesystem::path parent = ".";  // where the directory NAME is made
};

int newCommand(const NewOptions& options, std::ostream& out, std::ostream& err);

// Writes `files` as the new directory `target` (which must not exist; its parent must):
// into a temporary sibling first, renamed to `target` without replacing anything. Errors:
// kConflict when `target` exists (nothing written), kIo for a write that failed (the
// temporary directory removed).
Result<void> writeProject(const std::filesystem::path& target, const std::vector<ProjectFile>& files);

}  // namespace tern::cli
