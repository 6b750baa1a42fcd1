#include "util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
  char* const* envp;
  const char* workingDirectory;  // null: inherit
  int inputFd;                   // becomes stdin; -1: /dev/null
  int outputFd;                  // becomes stdout
  int stderrFd;                  // becomes stderr
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

  int input = p.inputFd >= 0 ? p.inputFd : open("/dev/null", O_RDONLY);
  if (input < 0 || dup2(input, 0) < 0 || dup2(p.outputFd, 1) < 0 || dup2(p.stderrFd, 2) < 0) {
    fail();
  }
  if (p.workingDirectory && chdir(p.workingDirectory) != 0) fail();
  rlimit noCore{0, 0};
  setrlimit(RLIMIT_CORE, &noCore);
  if (p.limitAddressSpace && setrlimit(RLIMIT_AS, &p.addressSpace) != 0) fail();
  if (p.limitCpu && setrlimit(RLIMIT_CPU, &p.cpu) != 0) fail();
  execve(p.program, p.argv, p.envp);
  fail();
  _exit(127);  // not reached
}

// A started child: its process group leader.
struct Started {
  pid_t pid;
};

// Starts argv with stdin, stdout and stderr on the given descriptors (stdin -1: /dev/null)
// under the options' limits, in a process group of its own. Every descriptor this process
// opened is close-on-exec, so the child holds only these three.
Result<Started> startChild(const std::vector<std::string>& argv, const SubprocessOptions& options,
                           int inputFd, int outputFd, int stderrFd) {
  if (argv.empty()) return Error(ErrorCode::kInternal, "runSubprocess: empty argv");
  std::string program = resolveProgram(argv[0]);
  if (program.empty()) {
    return Error(ErrorCode::kIo, "cannot start " + argv[0] + ": not found in PATH");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env;
  std::vector<char*> envp;
  if (!options.environment.empty()) {
    env = childEnvironment(environ, options.environment);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }

  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  const SubprocessLimits& lim = options.limits;
  ChildPlan plan{program.c_str(),
                 args.data(),
                 envp.empty() ? environ : envp.data(),
                 options.workingDirectory.empty() ? nullptr : options.workingDirectory.c_str(),
                 inputFd,
                 outputFd,
                 stderrFd,
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
  close(errPipe[1]);
  if (pid < 0) {
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
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return Error(ErrorCode::kIo, "cannot start " + argv[0] + ": " + std::strerror(execErrno));
  }
  return Started{pid};
}

// Kills a child's whole group: a compiler driver's cc1 must not outlive it.
void killGroup(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

// Waits for a child and fills in how it ended and its CPU time.
void reap(pid_t pid, SubprocessResult& result) {
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
}

void keepOutput(std::string& output, const char* data, size_t n, size_t max) {
  size_t room = max - std::min(max, output.size());
  output.append(data, std::min(room, n));
}

int msUntil(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

}  // namespace

std::vector<std::string> childEnvironment(const char* const* inherited,
                                          const std::vector<std::string>& settings) {
  auto nameOf = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env;
  for (const char* const* e = inherited; e && *e; ++e) env.emplace_back(*e);
  for (const std::string& setting : settings) {
    std::string_view name = nameOf(setting);
    auto same = std::find_if(env.begin(), env.end(),
                             [&](const std::string& e) { return nameOf(e) == name; });
    if (same == env.end()) {
      env.push_back(setting);
    } else if (name == "GLIBC_TUNABLES" && same->size() > name.size() + 1) {
      *same += ':';
      *same += setting.substr(std::min(setting.size(), name.size() + 1));
    } else {
      *same = setting;
    }
  }
  return env;
}

Result<SubprocessResult> runSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options) {
  int outPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  auto started = startChild(argv, options, -1, outPipe[1], outPipe[1]);
  close(outPipe[1]);
  if (!started.ok()) {
    close(outPipe[0]);
    return started.error();
  }
  pid_t pid = started->pid;

  SubprocessResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[8192];
  for (;;) {
    int left = msUntil(deadline);
    if (left <= 0) {
      result.timedOut = true;
      killGroup(pid);
      break;
    }
    pollfd pfd{outPipe[0], POLLIN, 0};
    int n = poll(&pfd, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t r = read(outPipe[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    keepOutput(result.output, buf, static_cast<size_t>(r), options.maxOutputBytes);
  }
  close(outPipe[0]);
  reap(pid, result);
  return result;
}

Result<PipelineResult> runPipeline(const std::vector<std::string>& producer,
                                   const std::vector<std::string>& consumer,
                                   const PipelineRelay& relay, const SubprocessOptions& options) {
  // The producer's stdout and stderr are pipes read here. The consumer's stdin is a socket,
  // so that a write after the consumer has gone fails with EPIPE (MSG_NOSIGNAL) instead of
  // raising SIGPIPE in this process; its stdout and stderr share one pipe.
  int prodOut[2] = {-1, -1}, prodErr[2] = {-1, -1}, consIn[2] = {-1, -1}, consOut[2] = {-1, -1};
  auto closeAll = [&] {
    for (int* p : {prodOut, prodErr, consIn, consOut}) {
      for (int i = 0; i < 2; ++i) {
        if (p[i] >= 0) close(p[i]);
        p[i] = -1;
      }
    }
  };
  if (pipe2(prodOut, O_CLOEXEC) != 0 || pipe2(prodErr, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, consIn) != 0 ||
      pipe2(consOut, O_CLOEXEC) != 0) {
    int e = errno;
    closeAll();
    return Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(e));
  }
  auto first = startChild(producer, options, -1, prodOut[1], prodErr[1]);
  if (!first.ok()) {
    closeAll();
    return first.error();
  }
  auto second = startChild(consumer, options, consIn[1], consOut[1], consOut[1]);
  if (!second.ok()) {
    killGroup(first->pid);
    SubprocessResult ignored;
    reap(first->pid, ignored);
    closeAll();
    return second.error();
  }
  for (int* end : {&prodOut[1], &prodErr[1], &consIn[1], &consOut[1]}) {
    close(*end);
    *end = -1;
  }
  fcntl(consIn[0], F_SETFL, fcntl(consIn[0], F_GETFL) | O_NONBLOCK);

  PipelineResult result;
  // What the consumer has yet to receive; the producer is not read while a lot is waiting.
  std::string pending;
  size_t sent = 0;
  constexpr size_t kMaxPending = 1 << 20;
  bool producerDone = false;  // its stdout ended and the relay has had its last call
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[65536];
  while (prodOut[0] >= 0 || prodErr[0] >= 0 || consIn[0] >= 0 || consOut[0] >= 0) {
    int left = msUntil(deadline);
    if (left <= 0) {
      result.producer.timedOut = result.consumer.timedOut = true;
      killGroup(first->pid);
      killGroup(second->pid);
      break;
    }
    pollfd fds[4];
    int* owner[4];
    nfds_t n = 0;
    auto watch = [&](int& fd, short events) {
      if (fd < 0) return;
      fds[n] = pollfd{fd, events, 0};
      owner[n++] = &fd;
    };
    if (pending.size() - sent < kMaxPending) watch(prodOut[0], POLLIN);
    watch(prodErr[0], POLLIN);
    if (sent < pending.size()) watch(consIn[0], POLLOUT);
    watch(consOut[0], POLLIN);
    int ready = poll(fds, n, left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      int& fd = *owner[i];
      if (&fd == &consIn[0]) {
        ssize_t w = send(fd, pending.data() + sent, pending.size() - sent, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (w < 0) {  // the consumer stopped reading: it has failed, and says why
          close(fd);
          fd = -1;
          pending.clear();
          sent = 0;
          continue;
        }
        sent += static_cast<size_t>(w);
        if (sent == pending.size()) {
          pending.clear();
          sent = 0;
        } else if (sent >= kMaxPending) {  // what was sent is not kept
          pending.erase(0, sent);
          sent = 0;
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        close(fd);
        fd = -1;
        if (&fd == &prodOut[0]) {
          producerDone = true;
          if (consIn[0] >= 0) relay({}, true, pending);
        }
        continue;
      }
      std::string_view got(buf, static_cast<size_t>(r));
      if (&fd == &prodOut[0]) {
        if (consIn[0] >= 0) relay(got, false, pending);
      } else if (&fd == &prodErr[0]) {
        keepOutput(result.producer.output, got.data(), got.size(), options.maxOutputBytes);
      } else {
        keepOutput(result.consumer.output, got.data(), got.size(), options.maxOutputBytes);
      }
    }
    // The consumer's input ends once the producer's has and all of it is delivered.
    if (producerDone && consIn[0] >= 0 && sent == pending.size()) {
      close(consIn[0]);
      consIn[0] = -1;
    }
  }
  closeAll();
  reap(first->pid, result.producer);
  reap(second->pid, result.consumer);
  return result;
}

}  // namespace tern
