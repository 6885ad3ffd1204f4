// RunPlan: a `taskfarm run` command line checked against the world — PATH, the files it names,
// free space, the earlier run for --resume, other runs' locks — before anything is created.
// make_run_plan() only reads (files, and standard input for --input-lines -) and takes the
// locks (FileClaim) the run holds to its end; it throws UsageError naming the culprit, so bad
// input exits 2 leaving nothing behind. Main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "file_claim.hpp"
#include "input_sources.hpp"
#include "stream_plan.hpp"
#include "run_options.hpp"
#include "taskfarm/dtype.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/input_lines.hpp"
#include "taskfarm/joblog_file.hpp"
#include "taskfarm/progress.hpp"

namespace taskfarm::cli {

/// The --output array.
struct OutputPlan {
  std::string path;     ///< absolute
  DType dtype = DType::f64;
  Shape shape;
  bool reuse = false;   ///< --resume: complete the existing file in place
};

/// --exec: the command run per task by the built-in worker (taskfarm-exec).
struct ExecPlan {
  std::vector<std::string> words;  ///< the command template
  bool shell = false;
  std::string replace;             ///< -I: the string standing for the input ("" = {})
  std::optional<SourceLayout> layout;  ///< :::+ linked sources (else source k is axis k)
  bool joblog_inputs = false;      ///< the joblog's rows record their inputs' fingerprint
  std::string tmpdir;              ///< where the run's spool directory goes
  bool line_buffer = false;        ///< print whole lines as the commands write them (--line-buffer)
};

/// How often --line-buffer looks for new lines (the farm's tick).
inline constexpr std::chrono::milliseconds kLineBufferTick{50};

/// The locks a run holds on the files it names; existed() says whether a file was there.
struct RunClaims {
  FileClaim output, joblog, trace, input;
};

/// Everything `taskfarm run` will do, decided.
struct RunPlan {
  FarmOptions farm;
  std::string program;                  ///< absolute path of the worker program (taskfarm-exec for --exec)
  std::optional<ExecPlan> exec;         ///< --exec: the command template
  std::vector<std::string> args;
  bool retries_defaulted = false;       ///< no --retries given: 2, or 0 with --exec
  std::vector<std::uint64_t> extent;    ///< index space
  std::uint64_t tasks = 0;              ///< product of extent
  std::optional<LineTable> lines;       ///< --input-lines
  std::optional<StreamPlan> stream;     ///< --exec, lines from a stream: `extent` has its bound, `todo` is empty
  std::optional<OutputPlan> output;
  std::string input;                    ///< --input path, or ""
  RunIdentity identity;                 ///< what the joblog's first line records
  std::string joblog;                   ///< path or ""
  bool resume = false;
  bool joblog_has_host = false;         ///< --resume of an --mpi run's joblog: rows get the host column
  ResumePlan todo;                      ///< the ranges to run (all of [0, tasks) unless --resume)
  std::string trace;                    ///< path or ""
  bool events = false;
  bool keep_order = false;
  ProgressMode progress = ProgressMode::off;
  RunClaims claims;
};

/// What make_run_plan needs to know about the machine and terminal.
struct PlanContext {
  int usable_cpus = 1;
  bool stderr_is_tty = false;
  bool stdin_is_tty = true;  ///< without one, a run with no other input reads its lines (GNU parallel's default)
};

/// Checks `options` and `command` (the worker program and its arguments, after "--"; with
/// --exec, the command template and its ::: / :::: input sources).
RunPlan make_run_plan(const RunOptions& options, const std::vector<std::string>& command,
                      const PlanContext& context);

}  // namespace taskfarm::cli
