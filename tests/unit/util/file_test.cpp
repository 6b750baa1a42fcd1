#include "util/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace tern {
namespace {

namespace fs = std::filesystem;

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tern-file-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

TEST_F(ReadFileTest, ReadsEveryByteOfSmallEmptyAndLargeFiles) {
  std::string large(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 131 % 251);
  for (const std::string& bytes : {std::string(), std::string("a\0b\n", 4), large}) {
    auto got = readFile(write("f", bytes));
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(*got, bytes);
  }
}

TEST_F(ReadFileTest, ReadsFilesWhoseSizeIsNotKnownInAdvance) {
  // /proc files report size 0.
  auto got = readFile("/proc/self/status");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_NE(got->find("Name:"), std::string::npos);
}

TEST_F(ReadFileTest, MissingFilesAndDirectoriesAreClearErrors) {
  auto missing = readFile(dir_ / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kIo);
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
  EXPECT_NE(missing.error().message().find("No such file"), std::string::npos);
  auto directory = readFile(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().message().find("Is a directory"), std::string::npos);
}

}  // namespace
}  // namespace tern
