#include "util/process_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tern {

namespace {

// Reads the start of a /proc file into `buf` (NUL-terminated); false if it cannot be opened.
// /proc files report size 0, so this reads until end of file or a full buffer.
bool readProcFile(const char* path, char* buf, size_t cap) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return len > 0;
}

double seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

// Entries in /proc/self/fd, not counting the descriptor used to list them.
uint64_t countOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;
}

// The boot time in seconds since the epoch (the `btime` line of /proc/stat), or 0. The file
// has a line per CPU and a long interrupt line, so it is read line by line.
uint64_t bootTimeSeconds() {
  FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) return 0;
  uint64_t btime = 0;
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, f) > 0) {
    if (std::strncmp(line, "btime ", 6) == 0) {
      btime = std::strtoull(line + 6, nullptr, 10);
      break;
    }
  }
  std::free(line);
  std::fclose(f);
  return btime;
}

}  // namespace

ProcessStats readProcessStats() noexcept {
  ProcessStats s;

  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    s.cpuSecondsUser = seconds(ru.ru_utime);
    s.cpuSecondsSystem = seconds(ru.ru_stime);
  }

  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    s.maxFds = static_cast<uint64_t>(rl.rlim_cur);
  }

  s.openFds = countOpenFds();

  // /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so
  // fields are counted from the last ')'. Field 3 (state) is the first after it.
  char buf[4096];
  long ticks = ::sysconf(_SC_CLK_TCK);
  long pageSize = ::sysconf(_SC_PAGESIZE);
  if (readProcFile("/proc/self/stat", buf, sizeof buf)) {
    const char* p = std::strrchr(buf, ')');
    if (p != nullptr) {
      ++p;
      uint64_t numThreads = 0, startTicks = 0, vsize = 0, rssPages = 0;
      for (int field = 3; field <= 24; ++field) {
        while (*p == ' ') ++p;
        if (*p == '\0') break;
        char* end = nullptr;
        unsigned long long v = std::strtoull(p, &end, 10);
        switch (field) {
          case 20: numThreads = v; break;
          case 22: startTicks = v; break;
          case 23: vsize = v; break;
          case 24: rssPages = v; break;
          default: break;
        }
        p = end != p ? end : std::strchr(p, ' ');  // field 3 (state) is a letter
        if (p == nullptr) break;
      }
      s.threads = numThreads;
      s.virtualBytes = vsize;
      if (pageSize > 0) s.residentBytes = rssPages * static_cast<uint64_t>(pageSize);
      if (ticks > 0 && startTicks > 0) {
        double startSinceBoot = static_cast<double>(startTicks) / static_cast<double>(ticks);
        uint64_t btime = bootTimeSeconds();
        if (btime > 0) s.startTimeSeconds = static_cast<double>(btime) + startSinceBoot;
        char up[128];
        if (readProcFile("/proc/uptime", up, sizeof up)) {
          double sinceBoot = std::strtod(up, nullptr);
          if (sinceBoot > startSinceBoot) s.uptimeSeconds = sinceBoot - startSinceBoot;
        }
      }
    }
  }
  return s;
}

}  // namespace tern
