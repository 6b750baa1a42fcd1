#pragma once
// What the harness does not run, each with the reason (skipped.txt): whole spec-test files,
// or single commands of a file, named by the line they start on in the .wast.
//
// Format: one entry per line, `FILE.wast` or `FILE.wast:LINE`, then whitespace and the
// reason; blank lines and lines starting with '#' are ignored. Every entry needs a reason.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "util/error.h"

namespace tern::conformance {

class SkipList {
 public:
  static Result<SkipList> read(const std::filesystem::path& file);

  // Why the whole file (e.g. "simd_lane.wast") is skipped, or nullptr.
  const std::string* fileReason(const std::string& fileName) const;

  // The commands of a file that are skipped: reason by line.
  const std::map<int, std::string>& commandReasons(const std::string& fileName) const;

  // Every file with an entry (for whole files or single commands).
  std::vector<std::string> fileNames() const;

 private:
  std::map<std::string, std::string> files_;                    // file name -> reason
  std::map<std::string, std::map<int, std::string>> commands_;  // file name -> line -> reason
};

}  // namespace tern::conformance
