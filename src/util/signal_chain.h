#pragma once
// Passing a signal on to the handler that was installed before one's own, from inside a
// handler (async-signal-safe).

#include <signal.h>

namespace tern {

// Calls `prev` as it was installed; when it was the default action, restores that and
// returns, so that the faulting instruction faults again and takes it.
inline void chainSignal(const struct sigaction& prev, int sig, siginfo_t* info, void* uctx) {
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(sig, info, uctx);
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
    prev.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
  }
}

}  // namespace tern
