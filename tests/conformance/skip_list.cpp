#include "skip_list.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <set>

namespace tern::conformance {

Result<SkipList> SkipList::read(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Error(ErrorCode::kIo, "cannot read the skip list " + file.string());
  SkipList list;
  std::string line;
  for (int lineNo = 1; std::getline(in, line); ++lineNo) {
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    const size_t nameEnd = line.find_first_of(" \t", start);
    const size_t reasonStart =
        nameEnd == std::string::npos ? std::string::npos : line.find_first_not_of(" \t", nameEnd);
    const std::string where = fmt::format("{}:{}", file.string(), lineNo);
    if (reasonStart == std::string::npos) {
      return Error(ErrorCode::kInvalidArgument, where + ": an entry needs a reason");
    }
    const std::string entry = line.substr(start, nameEnd - start);
    std::string reason = line.substr(reasonStart);
    reason.erase(reason.find_last_not_of(" \t\r") + 1);

    bool added;
    if (const size_t colon = entry.find(':'); colon == std::string::npos) {
      added = list.files_.emplace(entry, std::move(reason)).second;
    } else {
      int commandLine = 0;
      const char* first = entry.data() + colon + 1;
      const char* last = entry.data() + entry.size();
      auto [end, ec] = std::from_chars(first, last, commandLine);
      if (ec != std::errc() || end != last || commandLine <= 0) {
        return Error(ErrorCode::kInvalidArgument, where + ": bad line number in " + entry);
      }
      added = list.commands_[entry.substr(0, colon)].emplace(commandLine, std::move(reason)).second;
    }
    if (!added) {
      return Error(ErrorCode::kInvalidArgument, where + ": " + entry + " is listed twice");
    }
  }
  return list;
}

const std::string* SkipList::fileReason(const std::string& fileName) const {
  auto it = files_.find(fileName);
  return it == files_.end() ? nullptr : &it->second;
}

const std::map<int, std::string>& SkipList::commandReasons(const std::string& fileName) const {
  static const std::map<int, std::string> kNone;
  auto it = commands_.find(fileName);
  return it == commands_.end() ? kNone : it->second;
}

std::vector<std::string> SkipList::fileNames() const {
  std::set<std::string> names;
  for (const auto& [name, reason] : files_) names.insert(name);
  for (const auto& [name, lines] : commands_) names.insert(name);
  return {names.begin(), names.end()};
}

}  // namespace tern::conformance
