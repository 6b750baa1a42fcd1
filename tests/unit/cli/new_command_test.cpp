// `tern new` (src/cli/project_template.h, new_command.h): languages, triggers and project
// names from tables; the rendering of placeholders; every embedded template rendered for
// every trigger into a project whose tern.yaml the manifest parser accepts; collisions
// between a template's files; and writing a project, which never touches an existing
// directory and leaves nothing behind when it fails.

#include "cli/new_command.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "manifest/manifest.h"
#include "test_support.h"

namespace tern::cli {
namespace {

namespace fs = std::filesystem;

TEST(ProjectTemplateTest, LanguagesAndTriggersAreTheDocumentedOnes) {
  struct Case {
    std::string text;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{"c", true}, {"cpp", true}, {"rust", true},
                                         {"assemblyscript", true}, {"C", false}, {"go", false},
                                         {"", false}, {"c++", false}}) {
    auto l = parseTemplateLanguage(c.text);
    EXPECT_EQ(l.ok(), c.ok) << c.text;
    if (l.ok()) {
      EXPECT_EQ(templateLanguageName(*l), c.text);
    } else {
      EXPECT_NE(l.error().message().find("known: c, cpp, rust, assemblyscript"), std::string::npos);
    }
  }
  for (const Case& c : std::vector<Case>{{"http", true}, {"mqtt", true}, {"cron", true},
                                         {"coap", false}, {"HTTP", false}, {"", false}}) {
    auto t = parseTemplateTrigger(c.text);
    EXPECT_EQ(t.ok(), c.ok) << c.text;
    if (t.ok()) {
      EXPECT_EQ(templateTriggerName(*t), c.text);
    } else {
      EXPECT_NE(t.error().message().find("known: http, mqtt, cron"), std::string::npos);
    }
  }
}

TEST(ProjectTemplateTest, ProjectNamesFollowTheFunctionAndAppRules) {
  struct Case {
    std::string name;
    std::string error;  // empty: accepted
  };
  const std::vector<Case> cases = {
      {"hello", ""},
      {"a", ""},
      {"sensor-2", ""},
      {std::string(54, 'a'), ""},
      {std::string(55, 'a'), "at most 54"},
      {"", "not a function name"},
      {"Hello", "not a function name"},
      {"-x", "not a function name"},
      {"a_b", "not a function name"},
      {"../x", "not a function name"},
      {"x/y", "not a function name"},
      {".", "not a function name"},
      {"tern-app-x", "tern-app-"},
  };
  for (const auto& c : cases) {
    auto ok = checkProjectName(c.name);
    EXPECT_EQ(ok.ok(), c.error.empty()) << c.name;
    if (!ok.ok()) {
      EXPECT_EQ(ok.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(ok.error().message().find(c.error), std::string::npos) << ok.error().message();
    }
  }
}

TEST(ProjectTemplateTest, PlaceholdersAreReplacedAndOtherBracesLeftAlone) {
  const std::map<std::string, std::string> values = {{"name", "hello"}, {"trigger", "mqtt"}};
  struct Case {
    std::string text;
    std::string want;   // when error is empty
    std::string error;  // part of the message
  };
  const std::vector<Case> cases = {
      {"", "", ""},
      {"no placeholders", "no placeholders", ""},
      {"{{name}}", "hello", ""},
      {"a {{name}} b {{trigger}} {{name}}", "a hello b mqtt hello", ""},
      {"format!(\"{{}}\", x)", "format!(\"{{}}\", x)", ""},
      {"{{{name}}}", "{{{name}}}", ""},
      {"{ {name} }", "{ {name} }", ""},
      {"{{Name}}", "{{Name}}", ""},
      {"x\n{{unknown}}", "", "t.txt:2: unknown placeholder {{unknown}}"},
      {"a\nb\n{{name", "", "t.txt:3: placeholder {{name is not closed"},
      {"{{name}", "", "not closed"},
  };
  for (const auto& c : cases) {
    auto r = renderTemplateText(c.text, values, "t.txt");
    EXPECT_EQ(r.ok(), c.error.empty()) << c.text;
    if (r.ok()) {
      EXPECT_EQ(*r, c.want);
    } else {
      EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
    }
  }
}

const ProjectFile* findFile(const std::vector<ProjectFile>& files, const std::string& path) {
  for (const auto& f : files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

std::string embedded(std::string_view path) {
  for (const auto& f : embeddedTemplateFiles()) {
    if (f.path == path) return std::string(f.content);
  }
  return "";
}

TEST(ProjectTemplateTest, EveryTemplateRendersForEveryTriggerIntoAValidManifest) {
  struct Lang {
    TemplateLanguage language;
    std::string sdkCopy;
    std::string sdkSource;
    std::vector<std::string> files;  // some of what the project must have
  };
  const std::vector<Lang> langs = {
      {TemplateLanguage::kC, "sdk/tern.h", "sdk/guest/c/tern.h",
       {"Makefile", "src/main.c", "src/greeting.c", "tests/greeting_test.c"}},
      {TemplateLanguage::kCpp, "sdk/tern.h", "sdk/guest/c/tern.h",
       {"Makefile", "src/main.cpp", "src/greeting.cpp", "tests/greeting_test.cpp"}},
      {TemplateLanguage::kRust, "src/tern.rs", "sdk/guest/rust/tern.rs",
       {"Makefile", "src/main.rs", "src/greeting.rs"}},
      {TemplateLanguage::kAssemblyScript, "assembly/tern.ts", "sdk/guest/assemblyscript/tern.ts",
       {"package.json", "package-lock.json", "asconfig.json", "assembly/index.ts",
        "assembly/greeting.ts", "tests/greeting.test.ts"}},
  };
  struct Trig {
    TemplateTrigger trigger;
    std::vector<std::string> triggers;  // as the manifest declares them
    std::string replyTopic;
    std::string readme;                 // a line of the README's trigger section
  };
  const std::vector<Trig> trigs = {
      {TemplateTrigger::kHttp, {}, "", "tern invoke sensor-1 --data Ada"},
      {TemplateTrigger::kMqtt, {"mqtt:sensor-1/in"}, "sensor-1/out",
       "mosquitto_rr -t sensor-1/in -e sensor-1/out -m Ada"},
      {TemplateTrigger::kCron, {"cron:* * * * *"}, "", "tern logs sensor-1"},
  };
  for (const auto& l : langs) {
    for (const auto& t : trigs) {
      SCOPED_TRACE(std::string(templateLanguageName(l.language)) + " " +
                   std::string(templateTriggerName(t.trigger)));
      auto files = renderProject(embeddedTemplateFiles(), "sensor-1", l.language, t.trigger);
      ASSERT_TRUE(files.ok()) << files.error().describe();
      for (const auto& want : l.files) EXPECT_NE(findFile(*files, want), nullptr) << want;
      for (const auto& f : *files) {
        EXPECT_EQ(f.content.find("{{name}}"), std::string::npos) << f.path;
        EXPECT_EQ(f.content.find("{{try_it}}"), std::string::npos) << f.path;
      }
      // The SDK is the one of sdk/guest, byte for byte.
      const ProjectFile* sdk = findFile(*files, l.sdkCopy);
      ASSERT_NE(sdk, nullptr);
      EXPECT_EQ(sdk->content, embedded(l.sdkSource));
      EXPECT_FALSE(sdk->content.empty());

      const ProjectFile* readme = findFile(*files, "README.md");
      ASSERT_NE(readme, nullptr);
      EXPECT_NE(readme->content.find("# sensor-1"), std::string::npos);
      EXPECT_NE(readme->content.find(t.readme), std::string::npos) << readme->content;

      const ProjectFile* yaml = findFile(*files, "tern.yaml");
      ASSERT_NE(yaml, nullptr);
      auto m = manifest::parseManifest(yaml->content, "tern.yaml");
      ASSERT_TRUE(m.ok()) << m.error().describe() << "\n" << yaml->content;
      EXPECT_EQ(m->app, "sensor-1");
      ASSERT_EQ(m->functions.size(), 1u);
      const auto& fn = m->functions[0];
      EXPECT_EQ(fn.name, "sensor-1");
      EXPECT_EQ(fn.module.value, "build/sensor-1.wasm");
      EXPECT_FALSE(fn.build.empty());
      std::vector<std::string> triggers;
      for (const auto& tr : fn.triggers) triggers.push_back(tr.value);
      EXPECT_EQ(triggers, t.triggers);
      EXPECT_EQ(fn.replyTopic, t.replyTopic);
      ASSERT_EQ(fn.allow.size(), 1u);
      EXPECT_EQ(fn.allow[0].value, "kv");
    }
  }
}

TEST(ProjectTemplateTest, ABadTemplateOrACollisionRendersNothing) {
  const std::string sdk = "sdk/guest/c/tern.h";
  struct Case {
    std::string what;
    std::vector<EmbeddedFile> files;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"a template file where the SDK copy goes",
       {{"templates/c/sdk/tern.h", "x"}, {"templates/c/Makefile", "m"}, {sdk, "h"},
        {"templates/triggers/http.md", "t"}},
       "sdk/tern.h"},
      {"an unknown placeholder",
       {{"templates/c/Makefile", "a\n{{nmae}}"}, {sdk, "h"}, {"templates/triggers/http.md", "t"}},
       "templates/c/Makefile:2: unknown placeholder {{nmae}}"},
      {"an unknown placeholder in the trigger's section",
       {{"templates/c/Makefile", "m"}, {sdk, "h"}, {"templates/triggers/http.md", "{{topic}}"}},
       "templates/triggers/http.md:1: unknown placeholder {{topic}}"},
      {"no SDK", {{"templates/c/Makefile", "m"}, {"templates/triggers/http.md", "t"}}, sdk},
      {"no trigger section", {{"templates/c/Makefile", "m"}, {sdk, "h"}}, "templates/triggers/http.md"},
      {"no files of the language", {{"templates/rust/Makefile", "m"}, {sdk, "h"}, {"templates/triggers/http.md", "t"}},
       "has no files"},
      {"a path that leaves the project",
       {{"templates/c/../x", "m"}, {sdk, "h"}, {"templates/triggers/http.md", "t"}},
       "not a plain relative path"},
  };
  for (const auto& c : cases) {
    auto r = renderProject(c.files, "hello", TemplateLanguage::kC, TemplateTrigger::kHttp);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_NE(r.error().message().find(c.error), std::string::npos) << c.what << ": " << r.error().message();
  }
  // The same files without the collision render.
  std::vector<EmbeddedFile> good = {{"templates/c/Makefile", "build {{name}}"}, {sdk, "h"},
                                    {"templates/triggers/http.md", "t"}};
  auto r = renderProject(good, "hello", TemplateLanguage::kC, TemplateTrigger::kHttp);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].content, "build hello");
  EXPECT_EQ((*r)[1].path, "sdk/tern.h");
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(NewCommandTest, WritesTheProjectAndNeverTouchesAnExistingDirectory) {
  test::TempDir dir;
  std::vector<ProjectFile> files = {{"a.txt", "A"}, {"sub/dir/b.txt", "B"}};
  ASSERT_TRUE(writeProject(dir.path() / "p", files).ok());
  EXPECT_EQ(test::readText(dir.path() / "p/a.txt"), "A");
  EXPECT_EQ(test::readText(dir.path() / "p/sub/dir/b.txt"), "B");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"p"});

  // Again: refused, the first project untouched, nothing else written.
  auto again = writeProject(dir.path() / "p", {{"a.txt", "changed"}, {"c.txt", "C"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kConflict);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
  EXPECT_EQ(test::readText(dir.path() / "p/a.txt"), "A");
  EXPECT_FALSE(fs::exists(dir.path() / "p/c.txt"));
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"p"});

  // An empty directory or a file of that name counts as existing too.
  fs::create_directory(dir.path() / "empty");
  std::ofstream(dir.path() / "file") << "x";
  EXPECT_EQ(writeProject(dir.path() / "empty", files).error().code(), ErrorCode::kConflict);
  EXPECT_EQ(writeProject(dir.path() / "file", files).error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(fs::is_empty(dir.path() / "empty"));
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"empty", "file", "p"}));
}

TEST(NewCommandTest, AWriteThatFailsLeavesNothingBehind) {
  test::TempDir dir;
  // "a" is written as a file, so "a/b" cannot be.
  auto r = writeProject(dir.path() / "p", {{"a", "A"}, {"a/b", "B"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_TRUE(fs::is_empty(dir.path()));
  // A parent that does not exist.
  auto missing = writeProject(dir.path() / "no/such/p", {{"a", "A"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kIo);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(NewCommandTest, BadInputIsRefusedWithItsReasonAndNothingWritten) {
  test::TempDir dir;
  struct Case {
    NewOptions options;
    int status;
    std::string error;
  };
  auto options = [&](std::string name, std::string lang, std::string trigger) {
    NewOptions o;
    o.name = std::move(name);
    o.language = std::move(lang);
    o.trigger = std::move(trigger);
    o.parent = dir.path();
    return o;
  };
  const std::vector<Case> cases = {
      {options("Hello", "c", "http"), 64, "project name \"Hello\" is not a function name"},
      {options("hello", "go", "http"), 64, "unknown language \"go\""},
      {options("hello", "c", "sms"), 64, "unknown trigger \"sms\""},
      {options("tern-app-hello", "rust", "http"), 64, "tern-app-"},
  };
  for (const auto& c : cases) {
    std::ostringstream out, err;
    EXPECT_EQ(newCommand(c.options, out, err), c.status) << c.error;
    EXPECT_NE(err.str().find(c.error), std::string::npos) << err.str();
    EXPECT_TRUE(fs::is_empty(dir.path())) << c.error;
  }

  std::ostringstream out, err;
  ASSERT_EQ(newCommand(options("hello", "rust", "cron"), out, err), 0) << err.str();
  EXPECT_NE(out.str().find("created hello/: a Rust function triggered by cron"), std::string::npos)
      << out.str();
  EXPECT_TRUE(fs::exists(dir.path() / "hello/src/tern.rs"));
  EXPECT_NE(test::readText(dir.path() / "hello/tern.yaml").find("cron:* * * * *"), std::string::npos);

  std::ostringstream out2, err2;
  EXPECT_EQ(newCommand(options("hello", "c", "http"), out2, err2), 77);
  EXPECT_NE(err2.str().find("already exists"), std::string::npos) << err2.str();
  EXPECT_TRUE(fs::exists(dir.path() / "hello/src/tern.rs"));
  EXPECT_FALSE(fs::exists(dir.path() / "hello/src/main.c"));
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"hello"});
}

}  // namespace
}  // namespace tern::cli
