// Farm: the public face of the engine. It picks the kind of worker (a Launcher) and hands each
// run to the Supervisor, which drives the Dispatcher (docs/design.md §13).
#include "taskfarm/farm.hpp"

#include <algorithm>

#include "descendants.hpp"
#include "launcher.hpp"
#include "supervisor.hpp"
#include "taskfarm/detail/npy_header_watch.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/range_set.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm {
namespace {

// What every worker gets (spawn.cpp; submit's calls get the same): the memory limit, and
// OMP/BLAS threads for its share of the CPUs (reads the affinity mask and cgroup files: once
// per Farm, not per start).
SpawnLimits limits(const FarmOptions& opt, std::size_t workers) {
  SpawnLimits l = spawn_limits(opt.memory_limit, opt.set_thread_env, workers);
  l.stdout_to_stderr = opt.stdout_to_stderr;
  l.fork_with_threads = opt.fork_with_threads;
  return l;
}

}  // namespace

struct Farm::Impl {
  Supervisor supervisor;
  ForkLauncher* fork = nullptr;  // the supervisor's launcher in fork mode (it needs each run's factory)
  bool forks = false;            // a run may fork this process (fork mode, warm fork mode)

  Impl(FarmOptions opt, std::size_t workers, std::unique_ptr<Launcher> launcher, ForkLauncher* f, bool may_fork = false)
      : supervisor(std::move(opt), workers, std::move(launcher)), fork(f), forks(may_fork || f != nullptr) {}
};

Farm::Farm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Farm::Farm(Farm&&) noexcept = default;
Farm& Farm::operator=(Farm&&) noexcept = default;
Farm::~Farm() {
  if (impl_) close();
}

Farm Farm::program(FarmOptions options, std::string program, std::vector<std::string> args) {
  sweep_dead_segments();  // what an earlier master killed with SIGKILL left behind
  std::string path = resolve_program(program);
  if (options.reap_descendants) descendants::become_subreaper();
  const auto workers = static_cast<std::size_t>(resolve_workers(options.workers));
  auto launcher = std::make_unique<ProgramLauncher>(limits(options, workers), std::move(path), std::move(args));
  return Farm(std::make_unique<Impl>(std::move(options), workers, std::move(launcher), nullptr));
}

Farm Farm::fork(FarmOptions options) {
  sweep_dead_segments();
  if (options.reap_descendants) descendants::become_subreaper();
  const auto workers = static_cast<std::size_t>(resolve_workers(options.workers));
  auto launcher = std::make_unique<ForkLauncher>(limits(options, workers));
  ForkLauncher* f = launcher.get();
  return Farm(std::make_unique<Impl>(std::move(options), workers, std::move(launcher), f));
}

Farm Farm::fork_warm(FarmOptions options, WarmRunnerFactory make) {
  sweep_dead_segments();
  if (options.reap_descendants) descendants::become_subreaper();
  const auto workers = static_cast<std::size_t>(resolve_workers(options.workers));
  auto launcher = std::make_unique<WarmForkLauncher>(limits(options, workers), std::move(make));
  return Farm(std::make_unique<Impl>(std::move(options), workers, std::move(launcher), nullptr, true));
}

RunReport Farm::run(const JobSpec& job, FarmObserver* observer, const ForkKernelFactory& factory) {
  const std::optional<std::uint64_t> n = index_space_size(job.extent);
  if (!n) throw Error("Farm::run: the index space (the product of JobSpec::extent) reaches 2^64 tasks");
  check_ranges(job.ranges, job.extent.empty() ? 0 : *n, "Farm::run: JobSpec::ranges");  // no extent: no tasks
  if (impl_->fork != nullptr && !factory) throw Error("Farm::run in fork mode needs a kernel factory");
  if (impl_->fork != nullptr) impl_->fork->use(&factory);
  const std::string ro = AnySharedArray::read_only_handle(job.input_handle);
  RunReport report;
  if (ro == job.input_handle) {
    report = impl_->supervisor.run(job, observer);
  } else {
    JobSpec read_only = job;  // every worker attaches the input read-only, whatever it was given
    read_only.input_handle = ro;
    report = impl_->supervisor.run(read_only, observer);
  }
  // A stray write just before an output's first element lands in its header (same page, so
  // nothing can protect it) and the file would not load: the master knows the header it wrote.
  for (std::string& path : detail::restore_npy_headers())  // (some may have been put back already: Supervisor)
    if (std::find(report.restored_headers.begin(), report.restored_headers.end(), path) == report.restored_headers.end())
      report.restored_headers.push_back(std::move(path));
  return report;
}

std::string restored_header_message(const std::string& path) {
  return "a worker wrote over the .npy header of " + path + " (restored); data near the start may be damaged too";
}

void Farm::request_stop() noexcept { impl_->supervisor.request_stop(); }
void Farm::close() { impl_->supervisor.close(); }
std::size_t Farm::worker_count() const noexcept { return impl_->supervisor.workers(); }
const FarmOptions& Farm::options() const noexcept { return impl_->supervisor.options(); }

}  // namespace taskfarm
