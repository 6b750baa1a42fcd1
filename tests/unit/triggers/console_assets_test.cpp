// The web console's embedded files (triggers/console_assets.h): each has a content type,
// its SHA-256 matches its bytes, and the page's entry point is there.

#include <gtest/gtest.h>

#include "triggers/console_assets.h"
#include "util/sha256.h"

namespace tern::triggers {
namespace {

TEST(ConsoleAssetsTest, EveryFileHasATypeAndItsOwnDigest) {
  bool index = false;
  for (const auto& f : consoleAssets()) {
    EXPECT_FALSE(consoleContentType(f.path).empty()) << f.path;
    EXPECT_FALSE(f.content.empty()) << f.path;
    EXPECT_EQ(f.sha256, sha256Hex(f.content)) << f.path;
    index = index || f.path == "index.html";
  }
  EXPECT_TRUE(index);
}

TEST(ConsoleAssetsTest, ContentTypesFromTheExtension) {
  struct Case {
    const char* path;
    const char* type;
  } cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"logo.svg", "image/svg+xml"},
      {"shot.png", "image/png"},
      {"favicon.ico", "image/x-icon"},
      {"notes.txt", ""},
      {"html", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(consoleContentType(c.path), c.type) << c.path;
}

}  // namespace
}  // namespace tern::triggers
