// Starting workers during a run: a spawn that fails for want of resources (EAGAIN under
// RLIMIT_NPROC, ENOMEM, out of descriptors) leaves the run going with the workers it has,
// retried with backoff; the run stops only when none can run. Part of Farm::Impl (farm_impl.hpp).
#include "farm_impl.hpp"

namespace taskfarm {
namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

}  // namespace

std::size_t Farm::Impl::live_workers() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < run_workers; ++i)
    if (slots[i].proc && !slots[i].proc->reaped() && !slots[i].kill_cause) ++n;
  return n;
}

void Farm::Impl::start_or_fail(std::size_t i) {
  SlotRun& s = slots[i];
  if (s.retry_at != Clock::time_point{} && Clock::now() < s.retry_at) return;  // backing off
  try {
    spawn(i);
    s.spawn_failures = 0;
    s.retry_at = {};
    spawn_failures_in_a_row = 0;
    return;
  } catch (const SpawnError& e) {
    if (!for_want_of_resources(e.error())) {  // the program cannot be executed at all
      FailureRecord f;
      f.cause = FailureCause::start;
      f.slot = static_cast<int>(i);
      f.error = e.error();
      f.message = e.what();
      report.failures.push_back(f);
      if (obs) obs->on_failure(f);
      report.farm_error = e.what();
      sched->stop();
      halting_now = true;
      return;
    }
    spawn_failed(i, e.error(), e.what());
  } catch (const SystemError& e) {
    if (!for_want_of_resources(e.code())) throw;
    spawn_failed(i, e.code(), e.what());
  }
}

void Farm::Impl::spawn_failed(std::size_t i, int err, const std::string& what) {
  SlotRun& s = slots[i];
  ++report.failed_spawns;
  ++spawn_failures_in_a_row;
  const auto backoff = std::min<Clock::duration>(kMaxBackoff, kFirstBackoff * (1 << std::min(s.spawn_failures, 10)));
  ++s.spawn_failures;
  s.retry_at = Clock::now() + backoff;
  const std::size_t live = live_workers();
  FailureRecord f;
  f.cause = FailureCause::start;
  f.slot = static_cast<int>(i);
  f.error = err;
  if (live == 0 && spawn_failures_in_a_row >= opt.max_start_failures) {
    f.final = true;  // the run stops: nothing more will be tried
    f.message = "cannot start any worker: " + what + " (" + std::to_string(spawn_failures_in_a_row) + " attempts in a row)";
    report.failures.push_back(f);
    if (obs) obs->on_failure(f);
    report.farm_error = f.message;
    sched->stop();
    halting_now = true;
    return;
  }
  // Said once per streak, not per attempt: the same limit usually stops every slot at once.
  if (spawn_failures_in_a_row == 1 && obs) {
    f.message = "cannot start a worker: " + what + "; carrying on with " + std::to_string(live) + " of " +
                std::to_string(run_workers) + " workers, trying again";
    obs->on_failure(f);
  }
}

}  // namespace taskfarm
