#include "cli/project_template.h"

#include <algorithm>
#include <set>

#include "util/names.h"

namespace tern::cli {

namespace {

struct LanguageInfo {
  TemplateLanguage language;
  std::string_view name;
  std::string_view sdkSource;   // the SDK file in the tree (sdk/guest/...)
  std::string_view sdkProject;  // where the project keeps its copy
};

constexpr LanguageInfo kLanguages[] = {
    {TemplateLanguage::kC, "c", "sdk/guest/c/tern.h", "sdk/tern.h"},
    {TemplateLanguage::kCpp, "cpp", "sdk/guest/c/tern.h", "sdk/tern.h"},
    {TemplateLanguage::kRust, "rust", "sdk/guest/rust/tern.rs", "src/tern.rs"},
    {TemplateLanguage::kAssemblyScript, "assemblyscript", "sdk/guest/assemblyscript/tern.ts",
     "assembly/tern.ts"},
};

struct TriggerInfo {
  TemplateTrigger trigger;
  std::string_view name;
};

constexpr TriggerInfo kTriggers[] = {
    {TemplateTrigger::kHttp, "http"},
    {TemplateTrigger::kMqtt, "mqtt"},
    {TemplateTrigger::kCron, "cron"},
};

constexpr std::string_view kAppRecordPrefix = "tern-app-";
constexpr size_t kMaxProjectName = 54;

const LanguageInfo& languageInfo(TemplateLanguage language) {
  for (const auto& l : kLanguages) {
    if (l.language == language) return l;
  }
  return kLanguages[0];
}

bool isIdentifierChar(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }

// A relative path of plain components: no "..", ".", empty component or leading '/'.
bool isPlainRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Result<TemplateLanguage> parseTemplateLanguage(std::string_view text) {
  for (const auto& l : kLanguages) {
    if (l.name == text) return l.language;
  }
  return Error(ErrorCode::kInvalidArgument,
               std::string("unknown language \"") + std::string(text) + "\" (known: c, cpp, rust, assemblyscript)");
}

Result<TemplateTrigger> parseTemplateTrigger(std::string_view text) {
  for (const auto& t : kTriggers) {
    if (t.name == text) return t.trigger;
  }
  return Error(ErrorCode::kInvalidArgument,
               std::string("unknown trigger \"") + std::string(text) + "\" (known: http, mqtt, cron)");
}

std::string_view templateLanguageName(TemplateLanguage language) { return languageInfo(language).name; }

std::string_view templateTriggerName(TemplateTrigger trigger) {
  for (const auto& t : kTriggers) {
    if (t.trigger == trigger) return t.name;
  }
  return "http";
}

Result<void> checkProjectName(std::string_view name) {
  std::string quoted = std::string("\"") + std::string(name) + "\"";
  if (!isFunctionName(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 "project name " + quoted +
                     " is not a function name: 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  if (name.size() > kMaxProjectName) {
    return Error(ErrorCode::kInvalidArgument,
                 "project name " + quoted + std::string(" is ") + std::to_string(name.size()) +
                     " characters long; an app's name is at most 54");
  }
  if (name.substr(0, kAppRecordPrefix.size()) == kAppRecordPrefix) {
    return Error(ErrorCode::kInvalidArgument,
                 "project name " + quoted + " starts with \"tern-app-\", which names apps' records");
  }
  return {};
}

std::map<std::string, std::string> templateValues(std::string_view name, TemplateTrigger trigger) {
  std::string n(name);
  std::string triggers;
  switch (trigger) {
    case TemplateTrigger::kHttp:
      triggers = std::string("    # HTTP serves every function at /fn/") + n +
                 "; other triggers: mqtt:FILTER, cron:EXPR, every:DURATION";
      break;
    case TemplateTrigger::kMqtt:
      triggers = std::string("    triggers: [\"mqtt:") + n + std::string("/in\"]\n    reply_topic: ") + n + "/out";
      break;
    case TemplateTrigger::kCron:
      triggers = "    triggers: [\"cron:* * * * *\"]";
      break;
  }
  return {{"name", n},
          {"trigger", std::string(templateTriggerName(trigger))},
          {"manifest_triggers", triggers}};
}

Result<std::string> renderTemplateText(std::string_view text,
                                       const std::map<std::string, std::string>& values,
                                       std::string_view where) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t idEnd = open + 2;
    while (idEnd < text.size() && isIdentifierChar(text[idEnd])) ++idEnd;
    if (idEnd == open + 2) {  // "{{" not followed by an identifier: text, not a placeholder
      out.append(text.substr(pos, open + 2 - pos));
      pos = open + 2;
      continue;
    }
    auto line = [&] { return std::to_string(1 + std::count(text.begin(), text.begin() + open, '\n')); };
    std::string id(text.substr(open + 2, idEnd - open - 2));
    if (text.substr(idEnd, 2) != "}}") {
      return Error(ErrorCode::kInvalidArgument, std::string(where) + ":" + line() +
                                                    ": placeholder {{" + id + " is not closed by }}");
    }
    auto it = values.find(id);
    if (it == values.end()) {
      return Error(ErrorCode::kInvalidArgument,
                   std::string(where) + ":" + line() + ": unknown placeholder {{" + id + "}}");
    }
    out.append(text.substr(pos, open - pos));
    out.append(it->second);
    pos = idEnd + 2;
  }
  out.append(text.substr(pos));
  return out;
}

Result<std::vector<ProjectFile>> renderProject(std::span<const EmbeddedFile> files,
                                               std::string_view name, TemplateLanguage language,
                                               TemplateTrigger trigger) {
  if (auto ok = checkProjectName(name); !ok.ok()) return ok.error();
  const LanguageInfo& info = languageInfo(language);
  std::string prefix = std::string("templates/") + std::string(info.name) + "/";
  std::string tryItPath = std::string("templates/triggers/") + std::string(templateTriggerName(trigger)) + ".md";

  auto values = templateValues(name, trigger);
  const EmbeddedFile* tryIt = nullptr;
  const EmbeddedFile* sdk = nullptr;
  for (const auto& f : files) {
    if (f.path == tryItPath) tryIt = &f;
    if (f.path == info.sdkSource) sdk = &f;
  }
  if (!tryIt) return Error(ErrorCode::kInternal, std::string("the template of trigger ") + std::string(templateTriggerName(trigger)) + " is missing: " + tryItPath);
  if (!sdk) return Error(ErrorCode::kInternal, std::string("the SDK file of ") + std::string(info.name) + std::string(" is missing: ") + std::string(info.sdkSource));
  auto section = renderTemplateText(tryIt->content, values, tryIt->path);
  if (!section.ok()) return section.error();
  values["try_it"] = *section;

  std::vector<ProjectFile> project;
  std::set<std::string> paths;
  auto add = [&](std::string path, std::string content, std::string_view from) -> Result<void> {
    if (!isPlainRelativePath(path)) {
      return Error(ErrorCode::kInternal, std::string(from) + ": not a plain relative path in a project");
    }
    if (!paths.insert(path).second) {
      return Error(ErrorCode::kInternal,
                   std::string("two files of the ") + std::string(info.name) + " template would be " + path + " (" +
                       std::string(from) + " collides with another)");
    }
    project.push_back(ProjectFile{std::move(path), std::move(content)});
    return {};
  };
  for (const auto& f : files) {
    if (f.path.substr(0, prefix.size()) != prefix) continue;
    auto rendered = renderTemplateText(f.content, values, f.path);
    if (!rendered.ok()) return rendered.error();
    if (auto ok = add(std::string(f.path.substr(prefix.size())), std::move(*rendered), f.path); !ok.ok()) {
      return ok.error();
    }
  }
  if (project.empty()) {
    return Error(ErrorCode::kInternal, std::string("the template of language ") + std::string(info.name) + " has no files");
  }
  // The SDK is copied as it is: it is the one in sdk/guest, not a template.
  if (auto ok = add(std::string(info.sdkProject), std::string(sdk->content), sdk->path); !ok.ok()) {
    return ok.error();
  }
  return project;
}

}  // namespace tern::cli
