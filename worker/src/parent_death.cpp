#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "taskfarm/detail/worker_loop.hpp"

namespace taskfarm::detail {

void bind_to_parent(pid_t expected_parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before prctl took effect: then we were re-parented already.
  if (expected_parent != 0 && ::getppid() != expected_parent) ::_exit(kExitSetupFailed);
}

}  // namespace taskfarm::detail
