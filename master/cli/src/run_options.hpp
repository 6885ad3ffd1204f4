// RunOptions: the options of `taskfarm run` exactly as typed (strings), bound to the CLI11
// parser. Checking and interpreting them is make_run_plan()'s job (run_plan.hpp), so that every
// complaint has one wording and names its option. Used on the main thread.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace taskfarm::cli {

/// Options of `taskfarm run`, as given; empty string = not given.
struct RunOptions {
  std::string workers = "-1";
  std::string tasks;
  std::string shape;
  std::string input_lines;
  std::string input_lines_max;  ///< most bytes of --input-lines held; "" = default_input_lines_limit()
  std::string chunk = "auto";
  std::string output;
  std::string dtype;
  std::string input;
  bool keep_order = false;
  std::string retries;  ///< "" = the default: 2, or 0 with --exec (GNU parallel's)
  std::string timeout;
  std::string start_timeout = "5s";
  std::string stall_warning = "60s";
  std::string mem_limit;
  std::string halt = "never";
  bool progress = false;
  bool no_progress = false;
  std::string joblog;
  bool resume = false;
  std::string trace;
  bool events = false;
  std::string chaos;
  bool exec = false;    ///< the words after "--" are a command template (a command per task)
  bool shell = false;   ///< --exec through /bin/sh -c
  std::string replace;  ///< -I: --exec's replacement string for the input ("" = {})
  std::string tmpdir;   ///< --exec: where the tasks' output waits ("" = $TMPDIR or /tmp)
  bool line_buffer = false;  ///< --exec: print whole lines as they come, not whole tasks
  bool null = false;    ///< -0: --input-lines and :::: files are NUL-separated
  bool mpi = false;     ///< one rank per node under mpirun (mpi_run.hpp)
  bool mpi_gather = false;  ///< --mpi: rank 0 writes every rank's output rows (mpi_gather.hpp)
  std::string mpi_grain;  ///< --mpi: indices per range rank 0 hands out ("": todo / (16 x -j) + 1)
};

/// Declares every option of `run` on `app`, bound to `options`.
void add_run_options(CLI::App& app, RunOptions& options);

}  // namespace taskfarm::cli
