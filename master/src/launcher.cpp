#include "launcher.hpp"

#include "taskfarm/detail/worker_loop.hpp"

namespace taskfarm {

WorkerProcess ForkLauncher::start(ShmSegment slot, const std::vector<int>& master_fds) {
  detail::prepare_serve();  // inherited by every worker forked from now on
  const ForkKernelFactory* f = factory_;
  auto body = [f](Channel ch, ShmSegment seg) {
    detail::RunnerFactory make = [f](const JobInfo&) { return (*f)(); };
    return detail::serve(std::move(ch), std::move(seg), make);
  };
  return spawn_forked(std::move(slot), limits_, master_fds, body);
}

WorkerProcess WarmForkLauncher::start(ShmSegment slot, const std::vector<int>& master_fds) {
  detail::prepare_serve();  // inherited by every worker forked from now on
  const WarmRunnerFactory* make = &make_;
  auto body = [make](Channel ch, ShmSegment seg) { return detail::serve(std::move(ch), std::move(seg), *make); };
  return spawn_forked(std::move(slot), limits_, master_fds, body);
}

WorkerProcess ProgramLauncher::start(ShmSegment slot, const std::vector<int>&) {
  // Program workers are started with vfork + exec: close-on-exec keeps the master's descriptors.
  return spawn_program(std::move(slot), limits_, program_, args_);
}

}  // namespace taskfarm
