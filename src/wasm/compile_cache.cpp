#include "wasm/compile_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "util/data_dir.h"

namespace tern::wasm {

namespace fs = std::filesystem;

namespace {

enum class LockWait : uint8_t { kWait, kTry };

// Opens and flocks `path` exclusively, waiting for the lock or not. Retries when the file
// was unlinked or replaced between open and flock. Returns the fd, or -1 (not opened, or
// held elsewhere with LockWait::kTry).
int lockFile(const fs::path& path, LockWait wait) {
  for (;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    int how = LOCK_EX | (wait == LockWait::kTry ? LOCK_NB : 0);
    int rc;
    while ((rc = ::flock(fd, how)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      ::close(fd);
      return -1;
    }
    struct stat locked {}, named {};
    if (::fstat(fd, &locked) == 0 && ::stat(path.c_str(), &named) == 0 &&
        locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) {
      return fd;
    }
    ::close(fd);  // removed while we waited: lock the file that is there now
  }
}

uint64_t blocksOf(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace

CacheKeyLock::CacheKeyLock(const fs::path& lockFile)
    : fd_(wasm::lockFile(lockFile, LockWait::kWait)) {}

std::optional<CacheKeyLock> CacheKeyLock::tryAcquire(const fs::path& lockFile) {
  CacheKeyLock lock;
  lock.fd_ = wasm::lockFile(lockFile, LockWait::kTry);
  if (!lock.held()) return std::nullopt;
  return lock;
}

CacheKeyLock::~CacheKeyLock() {
  if (fd_ >= 0) ::close(fd_);
}

CacheKeyLock::CacheKeyLock(CacheKeyLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Result<void> prepareCacheDirectories(const fs::path& cacheDir) {
  // The cache directory itself is the caller's choice (`tern run --cache-dir`): created
  // private, but an existing one keeps its mode. objects/ and tmp/ are tern's own.
  std::error_code ec;
  if (!fs::exists(cacheDir, ec)) {
    if (auto ok = createPrivateDirectory(cacheDir); !ok) {
      return Error(ErrorCode::kIo, "cannot create cache directory: " + ok.error().message());
    }
  }
  for (const fs::path& dir : {cacheDir / "objects", cacheDir / "tmp"}) {
    if (auto ok = createPrivateDirectory(dir); !ok) {
      return Error(ErrorCode::kIo, "cannot create cache directory: " + ok.error().message());
    }
  }
  return {};
}

void rememberToolchain(const fs::path& cacheDir, const fs::path& file, const std::string& id) {
  if (!prepareCacheDirectories(cacheDir) || !createPrivateDirectory(file.parent_path())) return;
  fs::path tmp = file;
  tmp += ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  std::string line = id + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) ::unlink(tmp.c_str());
}

Result<void> publishObject(const fs::path& built, const fs::path& object) {
  auto failed = [&](std::string_view what, int err) -> Result<void> {
    if (isDiskFull(err)) return diskFullError("cannot store " + object.string());
    return Error(ErrorCode::kIo, std::string(what) + " " + object.string() + ": " +
                                     std::strerror(err));
  };
  if (::chmod(built.c_str(), 0600) != 0) return failed("cannot make private", errno);
  if (::rename(built.c_str(), object.c_str()) != 0) return failed("cannot store", errno);
  return {};
}

size_t removeAbandonedWork(const fs::path& cacheDir) {
  // Work directories first, then the lock files: a compile that starts after the listing
  // has a directory this call never saw.
  std::vector<fs::path> work;
  std::error_code ec;
  for (fs::directory_iterator it(cacheDir / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    work.push_back(it->path());
  }
  std::map<std::string, std::vector<fs::path>> locksByPrefix;
  for (fs::directory_iterator it(cacheDir / "objects", ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".lock") locksByPrefix[p.stem().string().substr(0, 16)].push_back(p);
  }
  size_t removed = 0;
  for (const auto& dir : work) {
    std::string prefix = dir.filename().string().substr(0, 16);
    // Every key this directory may belong to must be free; a missing lock file means no
    // compile of that key runs (a compile creates and locks it before its directory).
    std::vector<CacheKeyLock> held;
    bool inUse = false;
    for (const auto& lock : locksByPrefix[prefix]) {
      auto l = CacheKeyLock::tryAcquire(lock);
      if (!l) {
        inUse = true;
        break;
      }
      held.push_back(std::move(*l));
    }
    if (inUse) continue;
    std::error_code rmEc;
    if (fs::remove_all(dir, rmEc) > 0 && !rmEc) ++removed;
  }
  return removed;
}

ObjectSweep removeObjectsExcept(const fs::path& cacheDir, const std::set<std::string>& keep) {
  fs::path objects = cacheDir / "objects";
  std::set<std::string> keys;
  std::error_code ec;
  for (fs::directory_iterator it(objects, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".so" || p.extension() == ".lock") keys.insert(p.stem().string());
  }
  ObjectSweep out;
  for (const auto& key : keys) {
    if (keep.contains(key)) continue;
    fs::path lockPath = objects / (key + ".lock");
    auto lock = CacheKeyLock::tryAcquire(lockPath);
    if (!lock) continue;  // being compiled: the next sweep decides
    fs::path object = objects / (key + ".so");
    uint64_t bytes = blocksOf(object);
    if (::unlink(object.c_str()) == 0) {
      ++out.removed;
      out.bytesFreed += bytes;
    }
    ::unlink(lockPath.c_str());  // while held: see CacheKeyLock
  }
  return out;
}

}  // namespace tern::wasm
