#include "util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace tern {

namespace {

// The file argv[0] names: itself when it contains a '/', else the first executable regular
// file of that name in PATH (as execvp searches), or "" when there is none.
std::string resolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (;;) {
    size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) return "";
    dirs = dirs.substr(colon + 1);
  }
}

// A limit no higher than the process's own hard limit: an unprivileged process may lower
// its limits but not raise them.
rlimit boundedLimit(int resource, rlim_t soft, rlim_t hard) {
  rlimit current{};
  if (getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY) {
    hard = std::min(hard, current.rlim_max);
    soft = std::min(soft, hard);
  }
  return rlimit{soft, hard};
}

// Everything the child needs, prepared before vfork: the child runs on this thread's
// stack in this process's memory until it execs, so it only makes system calls (no
// allocation, no writes to memory the parent uses).
struct ChildPlan {
  const char* program;
  char* const* argv;
  const char* workingDirectory;  // null: inherit
  int outputFd;                  // becomes stdout and stderr
  int errorFd;                   // receives errno when the child cannot exec
  bool limitAddressSpace;
  rlimit addressSpace;
  bool limitCpu;
  rlimit cpu;
};

[[noreturn]] void runChild(const ChildPlan& p) {
  auto fail = [&p]() {
    int e = errno;
    ssize_t ignored = write(p.errorFd, &e, sizeof e);
    (void)ignored;
    _exit(127);
  };
  setpgid(0, 0);
  // Default signal dispositions and an empty mask, whatever the embedding process
  // installed for its sandboxes.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  int devNull = open("/dev/null", O_RDONLY);
  if (devNull < 0 || dup2(devNull, 0) < 0 || dup2(p.outputFd, 1) < 0 ||
      dup2(p.outputFd, 2) < 0) {
    fail();
  }
  if (p.workingDirectory && chdir(p.workingDirectory) != 0) fail();
  rlimit noCore{0, 0};
  setrlimit(RLIMIT_CORE, &noCore);
  if (p.limitAddressSpace && setrlimit(RLIMIT_AS, &p.addressSpace) != 0) fail();
  if (p.limitCpu && setrlimit(RLIMIT_CPU, &p.cpu) != 0) fail();
  execve(p.program, p.argv, environ);
  fail();
  _exit(127);  // not reached
}

}  // namespace

Result<SubprocessResult> runSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options) {
  if (argv.empty()) return Error(ErrorCode::kInternal, "runSubprocess: empty argv");
  std::string program = resolveProgram(argv[0]);
  if (program.empty()) {
    return Error(ErrorCode::kIo, "cannot start " + argv[0] + ": not found in PATH");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int outPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(outPipe[0]);
    close(outPipe[1]);
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(e));
  }
  const SubprocessLimits& lim = options.limits;
  ChildPlan plan{program.c_str(),
                 args.data(),
                 options.workingDirectory.empty() ? nullptr : options.workingDirectory.c_str(),
                 outPipe[1],
                 errPipe[1],
                 lim.addressSpaceBytes != 0,
                 boundedLimit(RLIMIT_AS, lim.addressSpaceBytes, lim.addressSpaceBytes),
                 lim.cpuSeconds != 0,
                 // SIGXCPU at the limit; SIGKILL a second later should SIGXCPU be ignored.
                 boundedLimit(RLIMIT_CPU, lim.cpuSeconds, lim.cpuSeconds + 1)};

  // vfork: the child borrows this process's memory until it execs. fork would copy the
  // page tables of a node (hundreds of MB mapped, many threads) and then make every
  // thread's next write to a page fault until the child execs; that was most of the
  // cost of starting wasm2c or the C compiler from a busy node. Signals stay blocked
  // until the child has put every handler back to the default, so none of this
  // process's handlers can run on the borrowed stack.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = vfork();
  if (pid == 0) runChild(plan);
  int forkErrno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  close(outPipe[1]);
  close(errPipe[1]);
  if (pid < 0) {
    close(outPipe[0]);
    close(errPipe[0]);
    return Error(ErrorCode::kIo, "cannot start " + argv[0] + ": " + std::strerror(forkErrno));
  }
  // Both sides set the group, so it exists whichever runs first.
  setpgid(pid, pid);

  int execErrno = 0;
  ssize_t got;
  while ((got = read(errPipe[0], &execErrno, sizeof execErrno)) < 0 && errno == EINTR) {
  }
  close(errPipe[0]);
  if (got == static_cast<ssize_t>(sizeof execErrno)) {
    close(outPipe[0]);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return Error(ErrorCode::kIo, "cannot start " + argv[0] + ": " + std::strerror(execErrno));
  }

  SubprocessResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      // The whole group: a compiler driver's cc1 must not outlive it.
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{outPipe[0], POLLIN, 0};
    int n = poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t r = read(outPipe[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    size_t room = options.maxOutputBytes - std::min(options.maxOutputBytes, result.output.size());
    result.output.append(buf, std::min(room, static_cast<size_t>(r)));
  }
  close(outPipe[0]);
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exitStatus = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.termSignal = WTERMSIG(status);
  }
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  result.cpuSeconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  return result;
}

}  // namespace tern
