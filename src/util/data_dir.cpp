#include "util/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tern {

namespace fs = std::filesystem;

namespace {

constexpr mode_t kGroupAndOthers = S_IRWXG | S_IRWXO;

Error ioError(std::string_view what, const fs::path& path, int err) {
  return Error(ErrorCode::kIo,
               std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

// Removes group and other bits from one entry (directories keep rwx for the owner, so
// tern can still use them). Returns whether the mode changed.
Result<bool> tighten(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;  // removed meanwhile
    return ioError("cannot stat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) return false;
  mode_t mode = st.st_mode & 07777;
  mode_t wanted = mode & ~kGroupAndOthers;
  if (S_ISDIR(st.st_mode)) wanted |= S_IRWXU;
  if (wanted == mode) return false;
  if (::chmod(path.c_str(), wanted) != 0) return ioError("cannot restrict the mode of", path, errno);
  return true;
}

// `dir` with symbolic links resolved: a data directory given as a link is tightened at its
// target (the link's own mode means nothing).
fs::path resolved(const fs::path& dir) {
  std::error_code ec;
  fs::path real = fs::canonical(dir, ec);
  return ec ? dir : real;
}

}  // namespace

fs::path defaultDataDir() {
  if (const char* d = std::getenv("TERN_DATA"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "tern";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local/share/tern";
  return "/var/lib/tern";
}

Result<bool> createPrivateDirectory(const fs::path& dir) {
  std::error_code ec;
  bool fresh = fs::create_directories(dir, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  auto tightened = tighten(resolved(dir));
  if (!tightened) return tightened.error();
  return *tightened && !fresh;
}

Result<void> createPrivateFile(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ioError("cannot create", file, errno);
  struct stat st {};
  int rc = ::fstat(fd, &st);
  if (rc == 0 && (st.st_mode & kGroupAndOthers) != 0) {
    rc = ::fchmod(fd, st.st_mode & 07777 & ~kGroupAndOthers);
  }
  int err = errno;
  ::close(fd);
  if (rc != 0) return ioError("cannot restrict the mode of", file, err);
  return {};
}

Result<void> writePrivateFile(const fs::path& file, std::string_view bytes) {
  fs::path tmp = file;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ioError("cannot write", tmp, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ioError("cannot write", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 || ::rename(tmp.c_str(), file.c_str()) != 0) {
    if (rc == 0) err = errno;
    ::unlink(tmp.c_str());
    return ioError("cannot write", file, err);
  }
  return {};
}

Result<size_t> makePrivate(const fs::path& path) {
  size_t changed = 0;
  auto top = tighten(resolved(path));
  if (!top) return top.error();
  changed += *top ? 1 : 0;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return changed;
  const fs::path& dir = path;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto one = tighten(it->path());
    if (!one) return one.error();
    changed += *one ? 1 : 0;
  }
  if (ec) return Error(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  return changed;
}

uint64_t availableBytes(const fs::path& path) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

bool isDiskFull(int err) { return err == ENOSPC || err == EDQUOT; }

Error diskFullError(std::string_view what) {
  return Error(ErrorCode::kResourceExhausted,
               "disk full: " + std::string(what) +
                   ": no space left in the data directory; remove functions (tern rm) or free "
                   "space on its file system");
}

}  // namespace tern
