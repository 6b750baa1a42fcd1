#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tern {

Result<std::string> readFile(const std::filesystem::path& path) {
  auto failed = [&path](int e) {
    return Error(ErrorCode::kIo, "cannot read " + path.string() + ": " + std::strerror(e));
  };
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return failed(e);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return failed(EISDIR);
  }
  std::string data;
  // The size is a hint (the file may change, or be a pipe or a /proc file of size 0):
  // read until end of file in any case.
  data.resize(st.st_size > 0 ? static_cast<size_t>(st.st_size) : 4096);
  size_t used = 0;
  for (;;) {
    if (used == data.size()) data.resize(data.size() * 2);
    ssize_t n = read(fd, data.data() + used, data.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return failed(e);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  data.resize(used);
  return data;
}

}  // namespace tern
