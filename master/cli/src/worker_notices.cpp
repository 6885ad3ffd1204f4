#include "worker_notices.hpp"

#include <unistd.h>

#include "taskfarm/progress.hpp"

namespace taskfarm::cli {

void WorkerNotices::say(const std::string& line) {
  if (progress_ != nullptr) progress_->clear();
  const std::string text = "taskfarm: " + line + "\n";
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n <= 0) return;  // a notice is best effort
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

void WorkerNotices::on_failure(const FailureRecord& f) {
  // A spawn that failed for want of resources (it carries an errno) while the run goes on; the
  // one that stops the run is final and reaches the summary as the farm's error.
  if (f.cause == FailureCause::start && !f.index && f.error != 0 && !f.final) say(f.message);
}

// "slot 1 (pid 4122) has shown no progress for 60 s on task 7; it is stopped (SIGSTOP): ..."
void WorkerNotices::on_stall(const WorkerLiveness& w) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(w.since_progress).count();
  std::string s = "slot " + std::to_string(w.slot) + " (pid " + std::to_string(w.pid) + ") has shown no progress for " +
                  std::to_string(secs) + " s " +
                  (w.index ? "on task " + std::to_string(*w.index) : std::string("with work it has not started"));
  if (w.stopped()) s += "; it is stopped (SIGSTOP?): kill -CONT " + std::to_string(w.pid) + " resumes it";
  else if (w.state == 'D') s += "; it is in uninterruptible sleep (disk or network I/O)";
  if (!has_timeout_) s += "; --timeout would kill and retry a task that runs too long";
  say(s);
}

}  // namespace taskfarm::cli
