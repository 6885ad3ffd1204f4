#include "summary.hpp"

#include "taskfarm/detail/text.hpp"

#include <csignal>
#include <cstdio>

namespace taskfarm::cli {
namespace {

std::string seconds(std::chrono::nanoseconds ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ns.count()) / 1e9);
  return buf;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Sorted indices as ranges.
std::vector<IndexRange> ranges_of(const std::vector<std::uint64_t>& sorted) {
  std::vector<IndexRange> ranges;
  for (std::uint64_t i : sorted) {
    if (!ranges.empty() && ranges.back().second == i) ++ranges.back().second;
    else ranges.emplace_back(i, i + 1);
  }
  return ranges;
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
  return format_range_list(ranges_of(v), 0, max_ranges);
}

std::string format_range_list(const std::vector<IndexRange>& ranges, std::uint64_t unlisted, std::size_t max_ranges) {
  std::string s;
  for (std::size_t k = 0; k < ranges.size(); ++k) {
    if (k == max_ranges) {
      for (std::size_t j = k; j < ranges.size(); ++j) unlisted += ranges[j].second - ranges[j].first;
      break;
    }
    if (!s.empty()) s += ", ";
    s += std::to_string(ranges[k].first);
    if (ranges[k].second - ranges[k].first > 1) s += "-" + std::to_string(ranges[k].second - 1);
  }
  if (unlisted > 0) s += (s.empty() ? "... (" : ", ... (") + std::to_string(unlisted) + " more)";
  return s;
}

std::string format_failures(const FailureLines& f, const SummaryContext& c) {
  const std::string p = "taskfarm: ";
  std::string s;
  for (std::size_t i = 0; i < f.described.size() && i < kFailuresShown; ++i) s += p + "failure: " + f.described[i] + "\n";
  if (f.records > kFailuresShown)
    s += p + "... and " + std::to_string(f.records - kFailuresShown) + " more failures" +
         (c.joblog.empty() ? std::string() : " (every attempt is in " + c.joblog + ")") + "\n";
  if (f.failed.empty() && f.failed_unlisted == 0) return s;
  s += p + "failed indices: " + format_range_list(f.failed, f.failed_unlisted) + "\n";
  if (!c.retry_note.empty()) s += p + c.retry_note + "\n";
  return s;
}

// (Outside pass h12 F7: a usage error spread over lines, an escape sequence reached the terminal.)
// (h12b N6: C1 controls and bytes that are not UTF-8 reached it too.)
std::string one_line(std::string_view what) {
  std::string s;
  s.reserve(what.size());
  for (std::size_t i = 0; i < what.size();) {
    const detail::TextUnit u = detail::text_unit_at(what, i);
    if (what[i] == '\n') s += "\\n";
    else if (what[i] == '\t') s += "\\t";
    else if (u.unsafe) {
      for (std::size_t k = 0; k < u.size; ++k) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(what[i + k]));
        s += hex;
      }
    } else {
      s.append(what.substr(i, u.size));
    }
    i += u.size;
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

  FailureLines lines;
  for (std::size_t i = 0; i < r.failures.size() && i < kFailuresShown; ++i) lines.described.push_back(r.failures[i].describe());
  lines.records = r.failures.size();
  lines.failed = ranges_of(failed);
  s += format_failures(lines, c);

  const std::uint64_t not_run = r.tasks - std::min(r.tasks, r.succeeded + failed.size());
  // After a joblog or standard output failure, what a --resume runs again is what the joblog does
  // not record (rows after its last whole one; tasks whose output was not printed).
  const std::uint64_t unrecorded = c.joblog_recorded ? r.succeeded - std::min(r.succeeded, *c.joblog_recorded) : 0;
  // (Stopped once every task had run — the output waiting for its reader — it is not "0 of N
  // tasks not done" beside "the other M run again": h13b N8.)
  const std::string not_done = not_run == 0 && r.tasks > 0
                                   ? "every one of the " + std::to_string(r.tasks) + " tasks had run"
                                   : std::to_string(not_run) + " of " + std::to_string(r.tasks) + " tasks not done";
  if (r.interrupted && !c.stop_reason.empty()) {
    s += p + "stopped: " + c.stop_reason + ": " + not_done + "\n";
  } else if (r.interrupted) {
    s += p + "interrupted by " + signal_name(c.stop_signal != 0 ? c.stop_signal : SIGINT) + ": " + not_done + "\n";
  } else if (r.halted) {
    s += p + "halted by --halt: " + std::to_string(not_run) + " of " + std::to_string(r.tasks) + " tasks not run\n";
  }
  // (Also after a signal, when standard output did not take every task's output before the end.)
  if ((r.interrupted || c.stop_signal != 0) && c.joblog_recorded && (!c.stop_reason.empty() || unrecorded > 0))
    s += p + "the joblog records " + std::to_string(*c.joblog_recorded) + " of the " + std::to_string(r.succeeded) +
         " tasks that succeeded" +
         (unrecorded > 0 ? "; the other " + std::to_string(unrecorded) + " run again on --resume" : std::string()) + "\n";
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
