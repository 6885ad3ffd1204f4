#include "run_options.hpp"

#include <CLI/CLI.hpp>

namespace taskfarm::cli {
namespace {

// A path option given as "" is an error, not "not given": `--joblog "$LOG"` with LOG unset ran
// without a joblog (outside pass F10).
const CLI::Validator kNonEmptyPath([](std::string& s) { return s.empty() ? std::string("an empty path") : std::string(); },
                                   "", "non-empty path");
// Likewise a value: `--timeout "$T"` with T unset ran with no timeout, `-I ""` with {} (h11b).
const CLI::Validator kNonEmpty([](std::string& s) { return s.empty() ? std::string("an empty value") : std::string(); },
                               "", "non-empty");

}  // namespace

void add_run_options(CLI::App& app, RunOptions& o) {
  app.option_defaults()->group("Workers");
  app.add_option("-j,--workers", o.workers,
                 "Worker processes: N > 0; -1 all usable CPUs (default); -2 all but one; or N%")
      ->type_name("N")
      ->check(kNonEmpty);
  app.add_option("--chunk", o.chunk, "Tasks per chunk, or 'auto' (default: adapts to task time)")
      ->type_name("N|auto")
      ->check(kNonEmpty);
  app.add_option("--retries", o.retries, "Further attempts of a failed task (default 2; with --exec 0, as GNU parallel)")->type_name("N")
      ->check(kNonEmpty);
  app.add_option("--timeout", o.timeout, "Per-task time limit: 500ms, 30s, 2m, 1h")->type_name("DURATION")
      ->check(kNonEmpty);
  app.add_option("--start-timeout", o.start_timeout,
                 "A worker must start the taskfarm protocol (call run_worker) within this (default 5s)")
      ->type_name("DURATION")
      ->check(kNonEmpty);
  app.add_option("--stall-warning", o.stall_warning,
                 "Name a worker that shows no progress on one task for this long (default 60s; 0 = never)")
      ->type_name("DURATION")
      ->check(kNonEmpty);
  app.add_option("--mem-limit", o.mem_limit, "Address space per worker: 512M, 2G")->type_name("SIZE")
      ->check(kNonEmpty);
  app.add_option("--halt", o.halt, "never (default), now,fail=N or soon,fail=N")->type_name("WHEN")
      ->check(kNonEmpty);
  app.add_option("--chaos", o.chaos, "Fault injection: SIGKILL a busy worker this often per second")
      ->type_name("RATE")
      ->check(kNonEmpty);

  app.option_defaults()->group("Tasks");
  app.add_option("--tasks", o.tasks, "Index space 0..N-1")->type_name("N")
      ->check(kNonEmpty);
  app.add_option("--shape", o.shape,
                 "Without --tasks/--input-lines: the index space (nested loops, row-major) and the "
                 "output shape; with them: the output shape only")
      ->type_name("AxB[xC]")
      ->check(kNonEmpty);
  app.add_option("--input-lines", o.input_lines, "Task i gets line i of FILE ('-' = stdin)")
      ->type_name("FILE|-")
      ->check(kNonEmptyPath);
  app.add_option("--input-lines-max", o.input_lines_max,
                 "Most bytes of --input-lines to hold (default: /dev/shm free space, at most a quarter of memory)")
      ->type_name("SIZE")
      ->check(kNonEmpty);

  app.add_flag("-0,--null", o.null, "--input-lines and :::: files hold NUL-separated values (find -print0)");

  app.option_defaults()->group("Commands");
  app.add_flag("--exec", o.exec,
               "Run a command per task: the words after '--' are a template ({} {.} {/} {//} {/.} {#} {%} {1} ...), "
               "followed by input sources (::: VALUES..., :::: FILE)");
  app.add_option("-I", o.replace, "--exec: use STR instead of {} for the input (GNU parallel's -I)")->type_name("STR")
      ->check(kNonEmpty);
  app.add_flag("--shell", o.shell, "--exec: run the command through /bin/sh -c (inputs are quoted)");
  app.add_flag("--line-buffer", o.line_buffer,
               "--exec: print the commands' output line by line as it comes (lines of tasks may interleave; "
               "with -k, the oldest task's live, the others' in turn)");
  app.add_option("--tmpdir", o.tmpdir, "--exec: where the tasks' output waits to be printed (default $TMPDIR or /tmp)")
      ->type_name("DIR")
      ->check(kNonEmptyPath);

  app.option_defaults()->group("Arrays");
  app.add_option("--output", o.output, "Create the output array as this .npy file (mapped by every worker)")
      ->type_name("PATH.npy")
      ->check(kNonEmptyPath);
  app.add_option("--dtype", o.dtype, "Output element type: uint8 uint16 int32 int64 float32 float64, or u1 ... f8")
      ->type_name("T")
      ->check(kNonEmpty);
  app.add_option("--input", o.input, "Map this existing .npy read-only into every worker")
      ->type_name("PATH.npy")
      ->check(kNonEmptyPath);

  app.option_defaults()->group("Output and records");
  app.add_flag("-k,--keep-order", o.keep_order, "Print the tasks' stdout in task order");
  app.add_flag("--progress", o.progress, "Progress on stderr (default when stderr is a terminal)");
  app.add_flag("--no-progress", o.no_progress, "No progress display");
  app.add_option("--joblog", o.joblog, "TSV, one row per task attempt (needed by --resume)")
      ->type_name("PATH")
      ->check(kNonEmptyPath);
  app.add_flag("--resume", o.resume,
               "Run only the tasks the --joblog of an earlier run does not record as done; "
               "complete --output in place");
  app.add_option("--trace", o.trace, "Chrome trace (Perfetto, chrome://tracing): a track per worker")
      ->type_name("PATH.json")
      ->check(kNonEmptyPath);
  app.add_flag("--mpi", o.mpi, "Under mpirun: one rank per node, each a farm of -j workers; rank 0 hands out ranges");
  app.add_option("--mpi-grain", o.mpi_grain, "With --mpi: indices per range rank 0 hands out (default: tasks / (16 x -j x ranks) + 1)")
      ->type_name("N")
      ->check(kNonEmpty);
  app.add_flag("--mpi-gather", o.mpi_gather, "With --mpi: the other ranks send their rows of --output to rank 0, which writes them (no shared file system)");
  app.add_flag("--events", o.events, "JSON lines on stdout: start, chunk, failure, stall, output, end");
}

}  // namespace taskfarm::cli
