#pragma once
// The project templates of `tern new` as pure functions: which languages and triggers
// exist, which project names are allowed, and the rendering of a template's files into
// the files of a project (docs/templates.md). No file is written here (new_command.h).
//
// A template is the files under `templates/LANG/` plus the guest SDK file its language
// copies (`sdk/guest/...`, one copy in the tree) and the trigger's section of the README
// (`templates/triggers/TRIGGER.md`). Placeholders are `{{name}}`, `{{trigger}}`,
// `{{manifest_triggers}}` and `{{try_it}}`; text between double braces that is not an
// identifier (Rust's `{{}}`, say) is left alone, and an unknown identifier is an error.

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/embedded_templates.h"
#include "util/error.h"

namespace tern::cli {

enum class TemplateLanguage { kC, kCpp, kRust, kAssemblyScript };
enum class TemplateTrigger { kHttp, kMqtt, kCron };

// "c", "cpp", "rust", "assemblyscript". Errors: kInvalidArgument naming the known ones.
Result<TemplateLanguage> parseTemplateLanguage(std::string_view text);
// "http", "mqtt", "cron". Errors: kInvalidArgument naming the known ones.
Result<TemplateTrigger> parseTemplateTrigger(std::string_view text);
std::string_view templateLanguageName(TemplateLanguage language);
std::string_view templateTriggerName(TemplateTrigger trigger);

// A project's name is its directory, its function and its app: the function-name rule
// (util/names.h), at most 54 characters (an app's name), and not starting with "tern-app-"
// (the names of apps' records). Errors: kInvalidArgument saying which rule is broken.
Result<void> checkProjectName(std::string_view name);

// The values of the placeholders for a project (without {{try_it}}, which is itself
// rendered from the trigger's README section).
std::map<std::string, std::string> templateValues(std::string_view name, TemplateTrigger trigger);

// Replaces every {{identifier}} in `text` by its value. Errors: kInvalidArgument for an
// identifier without a value or an unterminated "{{identifier", naming `where` and the line.
Result<std::string> renderTemplateText(std::string_view text,
                                       const std::map<std::string, std::string>& values,
                                       std::string_view where);

// One file of a project: its path relative to the project directory and its bytes.
struct ProjectFile {
  std::string path;
  std::string content;
};

// The files of a new project NAME in `language` with `trigger`, from `files` (the embedded
// templates and SDKs, or a test's table). Errors: kInvalidArgument for a bad name or a
// template that does not render; kInternal when the language has no template files, its SDK
// file is missing, or two files would have the same path (a template file colliding with
// the SDK copy, say): nothing is rendered then.
Result<std::vector<ProjectFile>> renderProject(std::span<const EmbeddedFile> files,
                                               std::string_view name, TemplateLanguage language,
                                               TemplateTrigger trigger);

}  // namespace tern::cli
