// Between vfork (or fork) and execve: the child starts its program with every signal at its
// default action and none blocked, whatever the parent had set. Async-signal-safe. Used by the
// master's spawn path and by taskfarm-exec's command children.
#pragma once

#include <signal.h>

namespace taskfarm::detail {

inline void reset_signals_for_exec() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGKILL, SIGSTOP: EINVAL, harmless
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace taskfarm::detail
