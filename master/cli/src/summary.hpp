// The end of `taskfarm run`: the summary printed on stderr and the exit status, both from the
// RunReport. Pure functions; main thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm::cli {

/// Exit statuses of `taskfarm run` (failures: 1..100 is the count, 101 means more than 100).
inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 2;
inline constexpr int exit_farm = 3;
inline constexpr int exit_many_failures = 101;
/// A file of the run could not be written or put in place (the joblog on a full disk, a
/// directory made read-only meanwhile): the run stopped like an interruption, keeping the
/// output and the joblog's whole rows for --resume.
inline constexpr int exit_joblog_failed = 102;
/// A worker wrote over the header of the output .npy (RunReport::restored_headers): put back,
/// but data near the start of the output may be damaged too — not a complete result.
inline constexpr int exit_output_damaged = 103;

/// 0 all succeeded; 1-100 failed-task count; 101 more; 3 the farm could not run; 103 the output's
/// header was written over (before the failure count: the output is suspect as a whole);
/// 128+signal if interrupted by `stop_signal` (130 SIGINT, 143 SIGTERM).
int exit_status(const RunReport& report, int stop_signal);

/// What the summary needs besides the report.
struct SummaryContext {
  std::uint64_t total = 0;         ///< tasks in the whole index space
  std::uint64_t earlier_done = 0;  ///< --resume: done before this run
  int stop_signal = 0;
  std::string stop_reason;         ///< what stopped the run if not a signal ("cannot write joblog …"), or ""
  std::string output;              ///< --output as given, or ""
  std::string joblog;              ///< --joblog as given, or ""
  std::string resume_hint;         ///< the command that resumes this run, or ""
  std::string retry_note;          ///< why failed tasks were not run again (--retries 0), or ""
  /// The joblog stopped being written (stop_reason says why): the tasks of this run whose "ok"
  /// row it holds. Tasks that succeeded after that are in the output but not recorded: a
  /// --resume runs them again, so the summary counts them as missing.
  std::optional<std::uint64_t> joblog_recorded;
};

/// Lines for stderr, each starting "taskfarm: ": counts, wall time and throughput; the first
/// 20 failures and how many more; the failed indices; and whether the output is complete.
std::string format_summary(const RunReport& report, const SummaryContext& context);

/// `what` on one line whatever it holds: a line break, a tab or an escape sequence of a culprit
/// (a file name, a command) shown as \n, \t, \x1b — never sent to the terminal as is.
std::string one_line(std::string_view what);

/// "3, 7-9, 12" from sorted indices; after `max_ranges` ranges, ", ... (N more)".
std::string format_index_ranges(const std::vector<std::uint64_t>& sorted, std::size_t max_ranges = 50);
/// The same from sorted, disjoint, non-adjacent ranges, followed by `unlisted` indices known to
/// be past them but not listed (a list cut short): those count in "(N more)".
std::string format_range_list(const std::vector<IndexRange>& ranges, std::uint64_t unlisted, std::size_t max_ranges = 50);

/// SummaryContext::retry_note for --exec when --retries was not given.
inline constexpr const char* kExecRetryNote =
    "failed commands were not run again: --exec's default is --retries 0, as GNU parallel's (--retries N)";

/// The summary names this many failures and counts the rest.
inline constexpr std::size_t kFailuresShown = 20;

/// The failures part of a summary, wherever its failures ran (one machine, or every node of an
/// --mpi run at rank 0: mpi_failures.hpp).
struct FailureLines {
  std::vector<std::string> described;  ///< the failures named (at most kFailuresShown): "index 7 (...): killed by SIGSEGV"
  std::uint64_t records = 0;           ///< failures in all: those past `described` are counted
  std::vector<IndexRange> failed;      ///< the failed indices, as sorted ranges
  std::uint64_t failed_unlisted = 0;   ///< failed indices past `failed`, not listed
};
/// "failure: …" per described failure, "... and N more failures", "failed indices: …" and the
/// context's retry note, each a line starting "taskfarm: ".
std::string format_failures(const FailureLines& f, const SummaryContext& context);

}  // namespace taskfarm::cli
