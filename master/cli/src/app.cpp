#include "app.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <new>

#include "command_template.hpp"
#include "commands.hpp"
#include "input_sources.hpp"
#include "input_lines_file.hpp"
#include "mpi_run.hpp"
#include "mpi_stdin.hpp"
#include "run_options.hpp"
#include "run_plan.hpp"
#include "summary.hpp"
#include "taskfarm/farm.hpp"
#include "usage_error.hpp"
#include "values.hpp"

#ifndef TASKFARM_VERSION
#define TASKFARM_VERSION "unknown"
#endif

namespace taskfarm::cli {

const char* const exit_status_help =
    "Exit status:\n"
    "  0        every task succeeded\n"
    "  1-100    that many tasks finally failed (after --retries)\n"
    "  101      more than 100 tasks failed\n"
    "  2        usage or input error (nothing was created)\n"
    "  3        the farm itself could not run (e.g. workers die at start)\n"
    "  102      a file of the run could not be written or put in place: stopped, results kept, --resume continues\n"
    "  130/143  interrupted by SIGINT/SIGTERM (workers stopped, segments removed)\n";

namespace {

constexpr const char* kRunFooter =
    "\nThe index space is --tasks N, --input-lines FILE (task i is line i) or, alone, --shape AxB\n"
    "(row-major). --output creates PATH.npy with --dtype and a shape: --shape if given, else the\n"
    "index space. With --tasks, --shape is the output shape only, and the worker decides which\n"
    "elements a task writes. Examples:\n"
    "  taskfarm run --tasks 800 --output m.npy --dtype int32 --shape 800x800 -- example-mandelbrot --worker\n"
    "  ls *.txt | taskfarm run --input-lines - --keep-order -- my-worker\n"
    "  taskfarm run --resume --joblog j.tsv --tasks 800 --output m.npy ... -- ...   (after a crash)\n"
    "With --exec, a command per task instead of a worker program (no shell unless --shell):\n"
    "  taskfarm run --exec -k -- echo {} ::: a b ::: 1 2        (a 1, a 2, b 1, b 2)\n"
    "  ls *.txt | taskfarm run --exec -- gzip -9 {}               (standard input: a task per line)\n"
    "Replacement strings: {} {.} {/} {//} {/.} {#} {%} {1} {2} ...; none: the inputs are appended.\n\n";

/// `taskfarm run --help` shows where the worker command goes, which CLI11 cannot know.
class RunFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override {
    return "\nUsage: taskfarm run [OPTIONS] -- WORKER_PROGRAM [ARGS...]\n"
           "       taskfarm run --exec [OPTIONS] -- COMMAND [ARGS...] [::: VALUES...] [:::: FILE]\n";
  }
};

/// The command line that resumes this run: the same, with --resume after "run".
std::string resume_hint(const std::vector<std::string>& args, std::size_t run_pos, const RunPlan& plan) {
  if (plan.joblog.empty()) return {};
  std::string s = "taskfarm";
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--resume") continue;
    s += " " + exec::terminal_quote(args[i]);  // (a file name cannot drive the terminal: h13b N10)
    if (i == run_pos) s += " --resume";
  }
  return s;
}

// --mpi, ranks but 0: "rank N (HOST): ", so that an error only one node meets (a path missing
// there) says which — every rank checks the same command line and may print its own.
std::string g_rank_prefix;

// --mpi on a rank other than 0, while the command line alone is checked: every rank finds the
// same fault in the same argv, and rank 0 says it — mpirun printed it once per rank.
bool g_said_by_rank0 = false;

int usage_error(const std::string& what) {
  if (g_said_by_rank0) return exit_usage;
  std::cerr << "taskfarm: " << g_rank_prefix << one_line(what) << " (see taskfarm --help)\n";
  return exit_usage;
}

/// "taskfarm: <prefix><what>" as one line, without allocating (the exception may be bad_alloc).
void say_one_line(const char* prefix, const char* what) noexcept {
  std::fflush(stdout);
  std::fputs("taskfarm: ", stderr);
  std::fputs(prefix, stderr);
  for (const char* c = what; *c != '\0'; ++c) std::fputc(*c == '\n' ? ' ' : *c, stderr);
  std::fputc('\n', stderr);
}

std::uint64_t task_count(const std::vector<IndexRange>& ranges) {
  std::uint64_t n = 0;
  for (auto [b, e] : ranges) n += e - b;
  return n;
}

int unguarded_main(const std::vector<std::string>& args) {
  // Everything after the first "--" is the worker command, never parsed as options.
  const auto dashdash = std::find(args.begin() + std::min<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(args.size())), args.end(), std::string("--"));
  bool has_dashdash = dashdash != args.end();
  std::vector<std::string> command(has_dashdash ? dashdash + 1 : args.end(), args.end());
  std::vector<std::string> ours(args.begin() + (args.empty() ? 0 : 1), dashdash);
  // GNU parallel's `parallel ::: "echo a" "echo b"` (the inputs are the commands) is
  // `taskfarm run --exec ::: "echo a" "echo b"`: no template, so no "--" is needed.
  if (const auto src = std::find_if(ours.begin(), ours.end(), is_source_marker);
      !has_dashdash && src != ours.end() && std::find(ours.begin(), src, "--exec") != src) {
    command.assign(src, ours.end());
    ours.erase(src, ours.end());
    has_dashdash = true;
  }

  CLI::App app{"taskfarm: run a worker program over an index space on a farm of processes that "
               "survives its workers.",
               "taskfarm"};
  app.set_version_flag("--version", std::string("taskfarm ") + TASKFARM_VERSION);
  app.require_subcommand(1);
  app.footer(std::string("\n") + exit_status_help);

  RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "Run WORKER_PROGRAM on every task: taskfarm run [options] -- WORKER_PROGRAM [ARGS...]; "
                                            "or a command per task: taskfarm run --exec [options] -- COMMAND ... ::: VALUES");
  add_run_options(*run, run_options);
  run->footer(std::string(kRunFooter) + exit_status_help);
  run->formatter(std::make_shared<RunFormatter>());
  CLI::App* clean = app.add_subcommand("clean", "Remove shared-memory segments left by dead masters");
  CLI::App* info = app.add_subcommand("info", "Show usable CPUs (affinity, cgroup quota), /dev/shm free space, limits");

  if (!ours.empty() && !ours.front().empty() && ours.front()[0] != '-' && ours.front() != "run" &&
      ours.front() != "clean" && ours.front() != "info")
    return usage_error("unknown command '" + ours.front() + "': taskfarm run, clean or info");
  const bool wants_run = !ours.empty() && ours.front() == "run";
  g_said_by_rank0 = wants_run && std::find(ours.begin(), ours.end(), "--mpi") != ours.end() && mpi_rank_from_environment() != 0;
  // GNU parallel's `parallel ::: a b c` typed as `taskfarm run ::: a b c`: say where they go.
  for (const std::string& a : ours)
    if (is_source_marker(a))
      return usage_error("'" + a + "' belongs after the command: taskfarm run --exec [options] -- COMMAND " + a +
                         (a == ":::" ? " VALUES..." : " FILE"));
  // `--joblog="$J"` with J unset: CLI11 takes the next word for the value (`--joblog= -k` wrote a
  // joblog named -k and dropped -k; h12b N2). An empty value is refused, as `--joblog ""` is.
  for (const std::string& a : ours)
    if (a.size() > 3 && a.starts_with("--") && a.back() == '=' && a.find('=') == a.size() - 1)
      return usage_error(a.substr(0, a.size() - 1) + ": an empty value");
  try {
    std::vector<std::string> reversed(ours.rbegin(), ours.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    if (wants_run && !has_dashdash)
      return usage_error("missing '--' before the worker program: taskfarm run [options] -- WORKER_PROGRAM [ARGS...]");
    return usage_error(e.what());
  } catch (const CLI::RequiredError& e) {
    if (ours.empty()) {
      std::cerr << app.help();
      return exit_usage;
    }
    return usage_error(e.what());
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  if (has_dashdash && !run->parsed()) return usage_error("'--' and a worker program belong to taskfarm run");
  if (clean->parsed()) return clean_command();
  if (info->parsed()) return info_command();
  if (!has_dashdash)
    return usage_error("missing '--' before the worker program: taskfarm run [options] -- WORKER_PROGRAM [ARGS...]");

  // --mpi: every rank checks the same command line; only rank 0 takes rank 0's files. From here
  // on, what a rank finds may be its own (a file its node lacks): each says it, naming itself.
  g_said_by_rank0 = false;
  std::string mpi_output;
  const bool mpi_rank0 = !run_options.mpi || mpi_rank_from_environment() == 0;
  std::optional<mpi::StdinCopy> mpi_stdin;  // --mpi reading standard input: rank 0's copy for all
  if (run_options.mpi && !mpi_rank0) {
    char host[64] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '?';
    g_rank_prefix = "rank " + std::to_string(mpi_rank_from_environment()) + " (" + host + "): ";
  }
  if (!run_options.mpi_grain.empty() && !run_options.mpi) return usage_error("--mpi-grain needs --mpi");
  std::uint64_t mpi_grain = 0;
  try {
    if (!run_options.mpi_grain.empty()) mpi_grain = parse_count("--mpi-grain", run_options.mpi_grain);
  } catch (const UsageError& e) {
    return usage_error(e.what());
  }
  if (run_options.mpi_gather && !run_options.mpi) return usage_error("--mpi-gather needs --mpi");
  if (run_options.mpi) {
    if (!mpi_built()) return usage_error("--mpi: this taskfarm was built without MPI");
    try {
      const std::uint64_t limit = run_options.input_lines_max.empty()
                                      ? default_input_lines_limit()
                                      : parse_size("--input-lines-max", run_options.input_lines_max);
      mpi_stdin = mpi::StdinCopy::take(run_options, command, mpi_rank0, limit);
    } catch (const UsageError& e) {
      return usage_error(e.what());
    } catch (const Error& e) {
      std::cerr << "taskfarm: " << e.what() << "\n";
      return exit_farm;
    }
    if (const std::string u = mpi_unsupported(run_options, command); !u.empty()) return usage_error(u);
    if (!mpi_rank0 && !run_options.output.empty()) mpi_output = std::filesystem::absolute(run_options.output).string();
    if (!mpi_rank0) strip_rank0_options(run_options);
  }
  RunPlan plan;
  std::string warning;
  try {
    // --mpi: standard input is never read for tasks (mpirun gives it to rank 0 only).
    const PlanContext context{usable_cpus(), ::isatty(STDERR_FILENO) == 1, run_options.mpi || ::isatty(STDIN_FILENO) == 1};
    plan = make_run_plan(run_options, command, context);
    warning = check_worker_count(run_options.workers, plan.farm.workers, plan.stream ? plan.tasks : task_count(plan.todo.ranges),
                                 context.usable_cpus);
  } catch (const UsageError& e) {
    return usage_error(mpi_stdin ? mpi_stdin->named(e.what()) : std::string(e.what()));
  }
  if (!warning.empty() && mpi_rank0) std::cerr << "taskfarm: " << warning << "\n";
  if (run_options.mpi) {
    if (plan.output && plan.claims.output.existed() && !plan.resume)
      return usage_error("--output " + plan.output->path + " exists: with --mpi the output must be a new file (or --resume)");
    // The other ranks planned standard input's tasks from a placeholder: their node masters plan
    // again once rank 0's bytes are in their copy.
    MpiStdin in{mpi_stdin ? &*mpi_stdin : nullptr, [run_options, command, context = PlanContext{
                                                        usable_cpus(), false, true}] {
                  return make_run_plan(run_options, command, context);
                }};
    return run_mpi(plan, mpi_rank0 && plan.output ? plan.output->path : mpi_output, mpi_grain,
                   run_options.mpi_gather, in);
  }
  const auto run_pos = static_cast<std::size_t>(std::find(args.begin(), dashdash, "run") - args.begin());
  return run_command(plan, resume_hint(args, run_pos, plan));
}

}  // namespace

int exit_status_of(const std::function<int()>& body) noexcept {
  try {
    return body();
  } catch (const UsageError& e) {
    say_one_line("", e.what());
    return exit_usage;
  } catch (const Error& e) {
    say_one_line("", e.what());
    return exit_farm;
  } catch (const std::bad_alloc&) {
    say_one_line("", "out of memory");
    return exit_farm;
  } catch (const std::exception& e) {
    say_one_line("internal error: ", e.what());
    return exit_farm;
  } catch (...) {
    say_one_line("internal error: ", "an exception of unknown type");
    return exit_farm;
  }
}

namespace {

/// Started with fd 0, 1 or 2 closed, the next file opened — the output, the joblog, the trace —
/// would get that number, and task output, stderr lines and the summary would be written into
/// it. A closed standard stream reads as /dev/null instead (as daemon(3) does).
void keep_standard_streams_open() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int opened = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);  // the lowest free number: fd
    if (opened >= 0 && opened != fd) {
      ::dup2(opened, fd);
      ::close(opened);
    }
  }
}

}  // namespace

int main_entry(const std::vector<std::string>& args) noexcept {
  keep_standard_streams_open();
  return exit_status_of([&args] { return unguarded_main(args); });
}

}  // namespace taskfarm::cli
