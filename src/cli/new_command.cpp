#include "cli/new_command.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <ostream>
#include <random>

namespace tern::cli {

namespace fs = std::filesystem;

namespace {

struct NextSteps {
  TemplateLanguage language;
  std::string_view title;
  std::string_view steps;  // shell lines, one per step
};

constexpr NextSteps kNextSteps[] = {
    {TemplateLanguage::kC, "C", "make           # build\nmake test      # run the tests\ntern up        # deploy"},
    {TemplateLanguage::kCpp, "C++", "make           # build\nmake test      # run the tests\ntern up        # deploy"},
    {TemplateLanguage::kRust, "Rust", "make           # build\nmake test      # run the tests\ntern up        # deploy"},
    {TemplateLanguage::kAssemblyScript, "AssemblyScript",
     "npm ci         # install the compiler\nnpm run build  # build\nnpm test       # run the tests\n"
     "tern up        # deploy"},
};

int fail(std::ostream& err, const Error& e) {
  err << "tern: " << e.describe() << "\n";
  return errorKind(e.code()).exitStatus;
}

Error ioError(const std::string& what, int errnum) {
  return Error(ErrorCode::kIo, what + ": " + std::strerror(errnum));
}

// Makes a fresh directory beside `target` (mode 0777 less the umask), named after it.
Result<fs::path> makeTemporarySibling(const fs::path& target) {
  std::random_device random;
  for (int attempt = 0; attempt < 16; ++attempt) {
    fs::path tmp = target.parent_path() /
                   (std::string(".") + target.filename().string() + std::string(".tern-new-") + std::to_string(random() % 1000000));
    if (::mkdir(tmp.c_str(), 0777) == 0) return tmp;
    if (errno != EEXIST) return ioError(std::string("cannot make a directory in ") + target.parent_path().string(), errno);
  }
  return Error(ErrorCode::kIo, std::string("cannot make a temporary directory in ") + target.parent_path().string());
}

Result<void> writeFile(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Error(ErrorCode::kIo, std::string("cannot make ") + path.parent_path().string() + ": " + ec.message());
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(content.data(), static_cast<std::streamsize>(content.size()));
  file.close();
  if (!file) return Error(ErrorCode::kIo, std::string("cannot write ") + path.string());
  return {};
}

Error alreadyExists(const fs::path& target) {
  return Error(ErrorCode::kConflict, target.string() +
                                         " already exists: choose another name or remove it "
                                         "(nothing was written)");
}

}  // namespace

Result<void> writeProject(const fs::path& target, const std::vector<ProjectFile>& files) {
  std::error_code ec;
  if (fs::symlink_status(target, ec).type() != fs::file_type::not_found) return alreadyExists(target);
  fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  if (!fs::is_directory(parent, ec)) {
    return Error(ErrorCode::kIo, std::string("cannot make ") + target.string() + ": " + parent.string() +
                                     " is not a directory");
  }
  auto tmp = makeTemporarySibling(parent / target.filename());
  if (!tmp.ok()) return tmp.error();
  for (const auto& f : files) {
    if (auto ok = writeFile(*tmp / f.path, f.content); !ok.ok()) {
      fs::remove_all(*tmp, ec);
      return ok.error();
    }
  }
  // RENAME_NOREPLACE: a directory made at `target` meanwhile (even an empty one, which a
  // plain rename would replace) is left alone.
  if (::renameat2(AT_FDCWD, tmp->c_str(), AT_FDCWD, (parent / target.filename()).c_str(),
                  RENAME_NOREPLACE) != 0) {
    int errnum = errno;
    fs::remove_all(*tmp, ec);
    if (errnum == EEXIST) return alreadyExists(target);
    return ioError(std::string("cannot rename ") + tmp->string() + std::string(" to ") + target.string(), errnum);
  }
  return {};
}

int newCommand(const NewOptions& options, std::ostream& out, std::ostream& err) {
  if (auto ok = checkProjectName(options.name); !ok.ok()) return fail(err, ok.error());
  auto language = parseTemplateLanguage(options.language);
  if (!language.ok()) return fail(err, language.error());
  auto trigger = parseTemplateTrigger(options.trigger);
  if (!trigger.ok()) return fail(err, trigger.error());
  auto files = renderProject(embeddedTemplateFiles(), options.name, *language, *trigger);
  if (!files.ok()) return fail(err, files.error());
  fs::path target = options.parent == "." ? fs::path(options.name) : options.parent / options.name;
  if (auto ok = writeProject(target, *files); !ok.ok()) return fail(err, ok.error());

  const NextSteps* next = &kNextSteps[0];
  for (const auto& n : kNextSteps) {
    if (n.language == *language) next = &n;
  }
  out << "created " << options.name << "/: a " << next->title << " function triggered by "
      << templateTriggerName(*trigger) << " (" << files->size() << " files, see "
      << options.name << "/README.md)\n";
  out << "next:\n  cd " << options.name << "\n";
  std::string_view steps = next->steps;
  size_t start = 0;
  while (start < steps.size()) {
    size_t end = steps.find('\n', start);
    if (end == std::string_view::npos) end = steps.size();
    out << "  " << steps.substr(start, end - start) << "\n";
    start = end + 1;
  }
  return 0;
}

}  // namespace tern::cli
