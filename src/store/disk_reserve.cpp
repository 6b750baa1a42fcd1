#include "store/disk_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace tern::store {

namespace fs = std::filesystem;

DiskReserve::DiskReserve(fs::path file, uint64_t bytes) : file_(std::move(file)), bytes_(bytes) {}

bool DiskReserve::restore() {
  MutexLock lock(mu_);
  if (bytes_ == 0) {
    ::unlink(file_.c_str());  // one kept by an earlier start with a reserve
    return held_ = false;
  }
  struct stat st {};
  if (::stat(file_.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_blocks) * 512 >= bytes_) {
    return held_ = true;
  }
  struct statvfs vfs {};
  if (::statvfs(file_.parent_path().c_str(), &vfs) != 0) return held_ = false;
  uint64_t available = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (available < 2 * bytes_) return held_ = false;
  int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return held_ = false;
  // posix_fallocate allocates real blocks (a sparse file would free nothing when deleted).
  bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_)) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) ::unlink(file_.c_str());
  return held_ = ok;
}

bool DiskReserve::release() {
  MutexLock lock(mu_);
  bool existed = ::unlink(file_.c_str()) == 0;
  held_ = false;
  return existed;
}

bool DiskReserve::held() const {
  MutexLock lock(mu_);
  return held_;
}

}  // namespace tern::store
