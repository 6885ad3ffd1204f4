#include "summary.hpp"

#include <csignal>
#include <cstdio>

namespace taskfarm::cli {
namespace {

constexpr std::size_t kFailuresShown = 20;

std::string seconds(std::chrono::nanoseconds ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ns.count()) / 1e9);
  return buf;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

int exit_status(const RunReport& r, int stop_signal) {
  if (r.interrupted) return 128 + (stop_signal != 0 ? stop_signal : SIGINT);
  if (!r.farm_error.empty()) return exit_farm;
  if (!r.restored_headers.empty()) return exit_output_damaged;
  const std::size_t failed = r.failed_indices().size();
  if (failed == 0) return r.succeeded >= r.tasks ? exit_ok : exit_farm;
  return failed > 100 ? exit_many_failures : static_cast<int>(failed);
}

std::string format_index_ranges(const std::vector<std::uint64_t>& v, std::size_t max_ranges) {
  std::string s;
  std::size_t ranges = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (ranges == max_ranges) {
      s += ", ... (" + std::to_string(v.size() - i) + " more)";
      break;
    }
    if (!s.empty()) s += ", ";
    s += std::to_string(v[i]);
    if (j > i) s += "-" + std::to_string(v[j]);
    ++ranges;
    i = j + 1;
  }
  return s;
}

std::string format_summary(const RunReport& r, const SummaryContext& c) {
  const std::string p = "taskfarm: ";
  const std::vector<std::uint64_t> failed = r.failed_indices();
  std::string s;

  char rate[64];
  const double wall_s = static_cast<double>(r.wall.count()) / 1e9;
  std::snprintf(rate, sizeof rate, "%.1f tasks/s", wall_s > 0 ? static_cast<double>(r.succeeded) / wall_s : 0.0);
  s += p + plural(r.tasks, "task", "tasks") + ": " + std::to_string(r.succeeded) + " succeeded, " +
       std::to_string(failed.size()) + " failed, " + plural(r.retries, "retry", "retries") + ", " +
       plural(r.workers, "worker", "workers") + ", " + seconds(r.wall) + ", " + rate + "\n";
  if (r.worker_deaths > 0)  // replaced while work was left, not once it was all out or the farm gave up
    s += p + plural(r.worker_deaths, "worker", "workers") + " died" +
         (r.workers_replaced == 0                  ? std::string()
          : r.workers_replaced < r.worker_deaths ? " (" + std::to_string(r.workers_replaced) + " replaced)"
          : r.worker_deaths == 1                  ? std::string(" and was replaced")
                                                  : std::string(" and were replaced")) +
         (r.chaos_kills > 0 ? " (" + std::to_string(r.chaos_kills) + " killed by --chaos)" : std::string()) + "\n";
  if (c.earlier_done > 0)
    s += p + "resumed: " + std::to_string(c.earlier_done) + " of " + std::to_string(c.total) +
         " tasks were done by the earlier run\n";

  for (std::size_t i = 0; i < r.failures.size() && i < kFailuresShown; ++i)
    s += p + "failure: " + r.failures[i].describe() + "\n";
  if (r.failures.size() > kFailuresShown)
    s += p + "... and " + std::to_string(r.failures.size() - kFailuresShown) + " more failures" +
         (c.joblog.empty() ? std::string() : " (every attempt is in " + c.joblog + ")") + "\n";
  if (!failed.empty()) s += p + "failed indices: " + format_index_ranges(failed) + "\n";
  if (!failed.empty() && !c.retry_note.empty()) s += p + c.retry_note + "\n";

  const std::uint64_t not_run = r.tasks - std::min(r.tasks, r.succeeded + failed.size());
  // After a joblog or standard output failure, what a --resume runs again is what the joblog does
  // not record (rows after its last whole one; tasks whose output was not printed).
  const std::uint64_t unrecorded = c.joblog_recorded ? r.succeeded - std::min(r.succeeded, *c.joblog_recorded) : 0;
  if (r.interrupted && !c.stop_reason.empty()) {
    s += p + "stopped: " + c.stop_reason + ": " + std::to_string(not_run) + " of " + std::to_string(r.tasks) +
         " tasks not done\n";
    if (c.joblog_recorded)
      s += p + "the joblog records " + std::to_string(*c.joblog_recorded) + " of the " + std::to_string(r.succeeded) +
           " tasks that succeeded" +
           (unrecorded > 0 ? "; the other " + std::to_string(unrecorded) + " run again on --resume"
                           : std::string()) +
           "\n";
  }
  else if (r.interrupted)
    s += p + "interrupted by " + signal_name(c.stop_signal != 0 ? c.stop_signal : SIGINT) + ": " +
         std::to_string(not_run) + " of " + std::to_string(r.tasks) + " tasks not done\n";
  else if (r.halted)
    s += p + "halted by --halt: " + std::to_string(not_run) + " of " + std::to_string(r.tasks) + " tasks not run\n";
  if (!r.farm_error.empty()) s += p + "the farm could not run: " + r.farm_error + "\n";
  for (const std::string& path : r.restored_headers) s += p + restored_header_message(path) + "\n";

  const std::uint64_t missing = failed.size() + not_run + unrecorded;
  if (missing > 0 && !c.output.empty()) {
    s += p + c.output + " is INCOMPLETE: " + std::to_string(missing) + " of " + std::to_string(c.total) +
         " tasks missing";
    if (!c.resume_hint.empty()) s += "; to compute only those: " + c.resume_hint;
    else s += "; add --joblog to a run to be able to --resume it";
    s += "\n";
  } else if (missing > 0 && !c.resume_hint.empty()) {
    s += p + "to run only the missing tasks: " + c.resume_hint + "\n";
  }
  return s;
}

}  // namespace taskfarm::cli
