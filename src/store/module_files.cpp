#include "store/module_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "util/quote.h"
#include "util/data_dir.h"
#include "util/sha256.h"

namespace fs = std::filesystem;

namespace tern::store {

namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

Error errnoError(std::string_view what, const fs::path& path, int err) {
  if (isDiskFull(err)) return diskFullError(std::string(what) + " " + path.string());
  return Error(ErrorCode::kIo, std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close() can carry for a file just written.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string hashOf(std::span<const uint8_t> bytes) {
  return sha256Hex(std::span<const unsigned char>(bytes.data(), bytes.size()));
}

// The whole content of an open regular file.
Result<std::vector<uint8_t>> readAll(int fd, const fs::path& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errnoError("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Error(ErrorCode::kIo, path.string() + " is not a regular file");
  }
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoError("cannot read", path, errno);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

Result<void> writeAll(int fd, std::span<const uint8_t> bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoError("cannot write", path, errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return {};
}

// Opens a stored module for reading; nullopt if there is no such file. Never follows a
// symlink: everything under the modules directory is written by this class.
Result<std::optional<int>> openStored(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) return std::optional<int>(fd);
  if (errno == ENOENT) return std::optional<int>();
  return errnoError("cannot open", path, errno);
}

}  // namespace

bool isValidModuleHash(std::string_view hash) {
  if (hash.size() != 64) return false;
  for (char c : hash) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (!hex) return false;
  }
  return true;
}

Result<void> syncDirectory(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errnoError("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return errnoError("cannot fsync directory", dir, errno);
  return {};
}

namespace {

Error badHash(std::string_view hash) {
  return Error(ErrorCode::kInvalidArgument,
               "module hash " + quoteUntrusted(hash) + " is not 64 lower-case hex characters");
}

}  // namespace

fs::path ModuleFiles::pathFor(std::string_view hash) const {
  return dir_ / (std::string(hash) + ".wasm");
}

Result<std::string> ModuleFiles::put(std::span<const uint8_t> bytes) const {
  std::string hash = hashOf(bytes);
  fs::path path = pathFor(hash);

  // Already stored: keep the file if it is intact, and make sure it is durable (another
  // thread may have renamed it into place and not yet synced the directory).
  auto existing = openStored(path);
  if (!existing) return existing.error();
  if (existing->has_value()) {
    Fd fd(**existing);
    auto content = readAll(fd.get(), path);
    if (content && hashOf(*content) == hash) {
      if (::fsync(fd.get()) != 0) return errnoError("cannot fsync", path, errno);
      auto synced = syncDirectory(dir_);
      if (!synced) return synced.error();
      return hash;
    }
    // Corrupt or unreadable: fall through and replace it with the right bytes.
  }

  std::string tempName = (dir_ / (std::string(kTempPrefix) + hash + "-XXXXXX")).string();
  Fd fd(::mkostemp(tempName.data(), O_CLOEXEC));
  fs::path temp(tempName);
  if (fd.get() < 0) return errnoError("cannot create", temp, errno);
  auto fail = [&](Error e) -> Result<std::string> {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return e;
  };
  auto written = writeAll(fd.get(), bytes, temp);
  if (!written) return fail(written.error());
  if (::fsync(fd.get()) != 0) return fail(errnoError("cannot fsync", temp, errno));
  if (fd.close() != 0) return fail(errnoError("cannot close", temp, errno));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(errnoError("cannot rename into", path, errno));
  }
  auto synced = syncDirectory(dir_);
  if (!synced) return synced.error();
  return hash;
}

Result<std::vector<uint8_t>> ModuleFiles::read(std::string_view hash) const {
  if (!isValidModuleHash(hash)) return badHash(hash);
  fs::path path = pathFor(hash);
  auto opened = openStored(path);
  if (!opened) return opened.error();
  if (!opened->has_value()) {
    return Error(ErrorCode::kIo, "module " + std::string(hash) + " is not stored");
  }
  Fd fd(**opened);
  auto content = readAll(fd.get(), path);
  if (!content) return content.error();
  if (hashOf(*content) != hash) {
    return Error(ErrorCode::kIo, "module " + std::string(hash) + " is corrupt");
  }
  return std::move(*content);
}

Result<uint64_t> ModuleFiles::size(std::string_view hash) const {
  if (!isValidModuleHash(hash)) return badHash(hash);
  fs::path path = pathFor(hash);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Error(ErrorCode::kNotFound, "module " + std::string(hash) + " is not stored");
    }
    return errnoError("cannot stat", path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(ErrorCode::kIo, path.string() + " is not a regular file");
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<std::string>> ModuleFiles::list() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".wasm") continue;
    std::string hash = p.stem().string();
    if (isValidModuleHash(hash)) out.push_back(std::move(hash));
  }
  if (ec) return Error(ErrorCode::kIo, "cannot list " + dir_.string() + ": " + ec.message());
  return out;
}

Result<uint64_t> ModuleFiles::remove(std::string_view hash) const {
  if (!isValidModuleHash(hash)) return badHash(hash);
  fs::path path = pathFor(hash);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return errnoError("cannot stat", path, errno);
  }
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return errnoError("cannot remove", path, errno);
  }
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

void ModuleFiles::removeStaleTempFiles(fs::file_time_type::duration minAge) const {
  std::error_code ec;
  auto cutoff = fs::file_time_type::clock::now() - minAge;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->path().filename().string().starts_with(kTempPrefix)) continue;
    std::error_code entryEc;
    auto mtime = fs::last_write_time(it->path(), entryEc);
    if (!entryEc && mtime < cutoff) fs::remove(it->path(), entryEc);
  }
}

}  // namespace tern::store
