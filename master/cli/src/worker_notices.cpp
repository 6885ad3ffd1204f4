#include "worker_notices.hpp"

#include <unistd.h>

#include "taskfarm/progress.hpp"
#include "taskfarm/detail/write_out.hpp"

namespace taskfarm::cli {

void WorkerNotices::say(const std::string& line) {
  if (progress_ != nullptr) progress_->clear();
  const std::string text = "taskfarm: " + who_ + line + "\n";
  if (sink_) sink_(text);
  else detail::write_best_effort(fd_, text);  // a notice is best effort
}

void WorkerNotices::on_failure(const FailureRecord& f) {
  // A spawn that failed for want of resources (it carries an errno) while the run goes on, or a
  // worker stopped for not serving while the others idled (ETIMEDOUT); the one that stops the
  // run is final and reaches the summary as the farm's error.
  if (f.cause == FailureCause::start && !f.index && f.error != 0 && !f.final) say(f.message);
}

// The library's stall line (FarmOptions::stall_to_stderr is off in the binary: the bar is
// cleared first here).
void WorkerNotices::on_stall(const WorkerLiveness& w) {
  say(w.describe_stall(has_timeout_ ? std::string_view{} : "--timeout would kill and retry a task that runs too long"));
}

}  // namespace taskfarm::cli
