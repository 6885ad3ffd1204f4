#include "run_plan.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "command_template.hpp"
#include "input_lines_file.hpp"
#include "input_sources.hpp"
#include "spool_dir.hpp"
#include "program_path.hpp"
#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"
#include "values.hpp"

namespace taskfarm::cli {
namespace fs = std::filesystem;
namespace {

/// "0", "0s", "0ms", "0.0m": a duration option's way of saying "never".
bool is_zero_duration(const std::string& text) {
  const auto digits_end = text.find_first_not_of("0.");
  if (digits_end == 0 || text.find_first_of('0') == std::string::npos) return false;
  const std::string unit = digits_end == std::string::npos ? "" : text.substr(digits_end);
  return unit.empty() || unit == "ms" || unit == "s" || unit == "m" || unit == "min" || unit == "h";
}

FarmOptions farm_options(const RunOptions& o, const PlanContext& ctx) {
  FarmOptions f;
  f.workers = parse_workers(o.workers, ctx.usable_cpus);
  f.chunk = parse_chunk(o.chunk);
  // A command may have done something before it failed (appended to a file, sent a request):
  // running it again is the user's call, as in GNU parallel. A kernel's attempt writes its
  // result in place, so a worker program is retried by default.
  const std::uint64_t retries =
      o.retries.empty() ? (o.exec ? 0 : 2) : parse_count("--retries", o.retries, /*allow_zero=*/true);
  if (retries > 1000) throw UsageError("--retries: '" + o.retries + "' is more than 1000");
  f.retries = static_cast<int>(retries);
  const HaltPolicy halt = parse_halt(o.halt);
  f.halt = halt.halt;
  f.halt_after = halt.after;
  if (!o.timeout.empty()) f.task_timeout = parse_duration("--timeout", o.timeout);
  f.start_timeout = parse_duration("--start-timeout", o.start_timeout);
  f.stall_warning = is_zero_duration(o.stall_warning) ? std::chrono::milliseconds(0)
                                                      : parse_duration("--stall-warning", o.stall_warning);
  if (!o.mem_limit.empty()) f.memory_limit = parse_size("--mem-limit", o.mem_limit);
  if (!o.chaos.empty()) f.chaos_rate = parse_rate("--chaos", o.chaos);
  f.forward_stderr = true;
  f.stdout_to_stderr = true;  // a worker's prints outside its tasks are not task output (h12b N14)
  f.reap_descendants = true;  // the binary's only children are its workers: orphans they leave are ours to end
  return f;
}

Shape parse_shape_option(const std::string& text) {
  auto shape = parse_shape(text);
  if (!shape || shape->empty())
    throw UsageError("--shape: '" + text + "' is not a shape like 100, 100x200 or 4x100x200 (at most " +
                     std::to_string(max_shape_dims) + " positive extents)");
  if (!index_space_size(*shape)) throw UsageError("--shape: '" + text + "' has 2^64 elements or more");
  return *shape;
}

/// The directory a file would be created in; throws UsageError unless it exists.
std::string existing_parent(const std::string& option, const std::string& path) {
  if (path.empty()) throw UsageError(option + ": empty path");
  const fs::path p(path);
  if (!p.has_filename()) throw UsageError(option + ": '" + path + "' names a directory, not a file");
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw UsageError(option + ": directory '" + dir + "' of '" + path + "' does not exist");
  if (!S_ISDIR(st.st_mode)) throw UsageError(option + ": '" + dir + "' is not a directory");
  if (::access(dir.c_str(), W_OK) != 0)
    throw UsageError(option + ": cannot write in directory '" + dir + "': " + std::strerror(errno));
  struct stat target {};
  if (::stat(path.c_str(), &target) == 0 && S_ISDIR(target.st_mode))
    throw UsageError(option + ": '" + path + "' is a directory");
  return dir;
}

std::string absolute_in(const std::string& option, const std::string& dir, const std::string& path) {
  std::error_code ec;
  fs::path base = fs::canonical(dir, ec);
  if (ec) base = fs::absolute(dir, ec);  // fails when the working directory has been removed
  if (ec) throw UsageError(option + ": cannot resolve directory '" + dir + "' of '" + path + "': " + ec.message());
  return (base / fs::path(path).filename()).string();
}

std::string describe(DType t, const Shape& s) { return std::string(dtype_name(t)) + " " + format_shape(s); }

/// A fresh output: its directory exists and its file system has room for it.
void check_fresh_output(const std::string& path, const std::string& dir, DType dtype, const Shape& shape) {
  std::uint64_t need = 0;
  try {
    if (__builtin_add_overflow(make_npy_header(dtype, shape).size(), array_bytes(dtype, shape), &need))
      throw Error("shape " + format_shape(shape) + " of " + std::string(dtype_name(dtype)) +
                  " needs more bytes than fit in 64 bits");
  } catch (const Error& e) {
    throw UsageError(std::string("--output: ") + e.what());
  }
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return;  // cannot tell; creating it will say
  // An existing file keeps its blocks until the new one, complete, replaces it.
  const std::uint64_t avail = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (need > avail)
    throw UsageError("--output: '" + path + "' needs " + format_bytes(need) + " but its file system has " +
                     format_bytes(avail) + " free");
}

/// --resume: the existing output must hold what this run asks for; what it leaves out (--dtype,
/// --shape) is taken from the file. The joblog's identity line is checked after this.
void adopt_existing_output(OutputPlan& out, const RunOptions& o, bool shape_given) {
  struct stat st {};
  if (::stat(out.path.c_str(), &st) != 0)
    throw UsageError("--resume: output '" + o.output + "' does not exist (nothing to complete; run without --resume)");
  NpyHeader header;
  try {
    header = read_npy_header(out.path);
  } catch (const Error& e) {
    throw UsageError(std::string("--resume: ") + e.what());
  }
  const bool dtype_given = !o.dtype.empty();
  if ((dtype_given && header.dtype != out.dtype) || (shape_given && header.shape != out.shape))
    throw UsageError("--resume: '" + o.output + "' holds " + describe(header.dtype, header.shape) + ", not " +
                     describe(dtype_given ? out.dtype : header.dtype, shape_given ? out.shape : header.shape) +
                     " as asked");
  out.dtype = header.dtype;
  out.shape = header.shape;
  out.reuse = true;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

/// Two options naming the same file would destroy one another (--output over --input, a
/// joblog over the output): refuse. Each written file is compared with every other file named.
void check_distinct_files(const RunOptions& o) {
  using Named = std::pair<const char*, const std::string*>;
  const Named written[] = {{"--output", &o.output}, {"--joblog", &o.joblog}, {"--trace", &o.trace}};
  const Named named[] = {{"--output", &o.output}, {"--joblog", &o.joblog}, {"--trace", &o.trace},
                         {"--input", &o.input}, {"--input-lines", &o.input_lines}};
  for (std::size_t w = 0; w < std::size(written); ++w) {
    const auto& [wopt, wpath] = written[w];
    if (wpath->empty()) continue;
    for (std::size_t n = w + 1; n < std::size(named); ++n) {
      const auto& [opt, path] = named[n];
      if (path->empty() || *path == "-") continue;
      if (same_file(*wpath, *path))
        throw UsageError(std::string(wopt) + " and " + opt + " name the same file '" + *wpath + "'");
    }
    // The file standard output or error goes to (`> out.txt`, then --joblog out.txt): the file
    // the run writes would be put in its place, and what the tasks print would go on into the
    // old one, unlinked — every task's output lost, exit 0 (outside pass h12 F15).
    struct stat st {};
    if (::stat(wpath->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    for (const auto& [fd, stream] : {std::pair<int, const char*>{STDOUT_FILENO, "standard output"}, {STDERR_FILENO, "standard error"}}) {
      struct stat s {};
      if (::fstat(fd, &s) == 0 && s.st_dev == st.st_dev && s.st_ino == st.st_ino)
        throw UsageError(std::string(wopt) + " '" + *wpath + "' is the file " + stream +
                         " goes to: what the run prints would be lost when it is replaced; name another file");
    }
  }
}

/// A file the run only reads — a `:::: FILE` source, the worker program, the command — that
/// --output, --joblog or --trace also names would be replaced by what the run writes (the
/// program by a .npy while its workers run): refuse, as for --input and --input-lines.
void check_not_written(const RunOptions& o, const std::string& what, const std::string& path) {
  for (const auto& [opt, written] : {std::pair<const char*, const std::string*>{"--output", &o.output},
                                     {"--joblog", &o.joblog}, {"--trace", &o.trace}})
    if (!written->empty() && same_file(*written, path))
      throw UsageError(std::string(opt) + " and " + what + " name the same file '" + *written + "'");
}

/// Every file named must be a regular file (or, for what this run creates, absent): a FIFO,
/// device or directory is refused by its kind before anything opens it (open() of a FIFO
/// would block; writing a device is not ours to do). --input-lines is a source of lines like
/// `:::: FILE`, which may be a FIFO or pipe: LineSource judges it.
void check_file_kinds(const RunOptions& o) {
  using Named = std::pair<const char*, const std::string*>;
  const Named named[] = {{"--output", &o.output}, {"--joblog", &o.joblog}, {"--trace", &o.trace}, {"--input", &o.input}};
  for (const auto& [opt, path] : named) {
    // '-' is standard input for the sources of lines only: here a file named '-' was written
    // (GNU parallel's --joblog - is standard output; h12 F19).
    if (*path == "-")
      throw UsageError(std::string(opt) + " -: '-' (standard input or output) is not a file here; name a file (./- for one named '-')");
    if (path->empty()) continue;
    try {
      detail::require_regular_or_absent(*path);
    } catch (const Error& e) {
      throw UsageError(std::string(opt) + ": " + e.what());
    }
  }
}

/// The whole --input check, by the code that maps it in the run: a header NumPy would read is
/// not enough (an empty axis, more than 8 axes, misaligned data cannot be shared).
void check_input(const std::string& path) {
  try {
    (void)AnySharedArray::open_npy(path, /*writable=*/false);
  } catch (const Error& e) {
    throw UsageError(std::string("--input: ") + e.what());
  }
}

/// The words after "--": a worker program and its arguments, or (--exec) a command template
/// and its ::: / :::: input sources.
CommandWithSources split_command(const RunOptions& o, const std::vector<std::string>& command) {
  if (!o.exec) {
    if (o.shell) throw UsageError("--shell needs --exec (it runs the command per task through /bin/sh)");
    if (!o.replace.empty()) throw UsageError("-I needs --exec (it names the replacement string of a command template)");
    if (!o.tmpdir.empty()) throw UsageError("--tmpdir needs --exec (it holds the output of commands run per task)");
    if (o.line_buffer) throw UsageError("--line-buffer needs --exec (a worker program's output is printed per task)");
    if (command.empty()) throw UsageError("nothing after '--': name the worker program");
    for (const std::string& w : command)
      if (is_source_marker(w))
        throw UsageError("'" + w + "' among the worker program's arguments: input sources (::: VALUES, :::: FILE) are for "
                         "commands run per task — add --exec: taskfarm run --exec -- COMMAND ::: VALUES");
    return CommandWithSources{command, {}};
  }
  CommandWithSources cmd = split_sources(command);
  if (cmd.words.empty() && cmd.sources.empty()) throw UsageError("nothing after '--': name the command to run per task");
  // No words but sources: the inputs are the commands (GNU parallel's `parallel ::: "echo a"`).
  return cmd;
}

/// --exec: the built-in worker runs the template, which must make sense for the sources; a
/// command named literally must exist. Nothing a command cannot use is accepted.
void plan_exec(const RunOptions& o, const CommandWithSources& cmd, const SourceLayout& layout, RunPlan& plan) {
  const std::size_t sources = layout.linked() ? layout.sizes.size() : plan.extent.size();
  for (const auto& [option, given] : {std::pair<const char*, bool>{"--output", !o.output.empty()},
                                      {"--input", !o.input.empty()}, {"--dtype", !o.dtype.empty()}})
    if (given)
      throw UsageError(std::string(option) + " with --exec: a command run per task cannot reach the shared arrays; "
                       "write a worker program for them");
  // `-- "$CMD" {}` with CMD unset: every task would fail with 127 (h11b) — and with --shell the
  // inputs, appended to nothing, would run as the command (h12 F3).
  const auto blank = [](const std::string& w) { return w.find_first_not_of(" \t\n") == std::string::npos; };
  if (!o.shell && !cmd.words.empty() && cmd.words.front().empty()) resolve_program("", "command");
  if (o.shell && !cmd.words.empty() && (blank(cmd.words.front()) || std::all_of(cmd.words.begin(), cmd.words.end(), blank)))
    throw UsageError("the shell command after '--' is empty (with --shell the words after '--' are a script)");
  try {
    const exec::CommandTemplate t(cmd.words, o.shell, sources, o.replace.empty() ? "{}" : o.replace);
    if (const std::string* program = t.literal_program())
      check_not_written(o, "the command", resolve_program(*program, "command"));
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(std::string("--exec: ") + e.what());
  }
  if (o.line_buffer && o.events)
    throw UsageError("--line-buffer with --events: output events are per task; drop one of them");
  ExecPlan exec;
  exec.line_buffer = o.line_buffer;
  if (o.line_buffer) plan.farm.tick_interval = std::min(plan.farm.tick_interval, kLineBufferTick);
  exec.words = cmd.words;
  exec.shell = o.shell;
  exec.replace = o.replace;
  if (layout.linked()) exec.layout = layout;
  exec.tmpdir = !o.tmpdir.empty() ? o.tmpdir : default_spool_parent();
  struct stat st {};
  if (::stat(exec.tmpdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UsageError((o.tmpdir.empty() ? "$TMPDIR: '" : "--tmpdir: '") + exec.tmpdir + "' is not a directory");
  if (::access(exec.tmpdir.c_str(), W_OK | X_OK) != 0)
    throw UsageError((o.tmpdir.empty() ? "$TMPDIR: cannot write in '" : "--tmpdir: cannot write in '") + exec.tmpdir +
                     "': " + std::strerror(errno));
  plan.exec = std::move(exec);
  plan.program = exec_worker_program();
}

}  // namespace

RunPlan make_run_plan(const RunOptions& o, const std::vector<std::string>& command, const PlanContext& ctx) {
  RunPlan plan;
  CommandWithSources cmd = split_command(o, command);
  plan.farm = farm_options(o, ctx);
  plan.retries_defaulted = o.retries.empty();
  check_distinct_files(o);
  for (const InputSource& source : cmd.sources)
    if (source.file && source.items.front() != "-") check_not_written(o, "::::", source.items.front());
  check_file_kinds(o);

  // The index space: --tasks, --input-lines, ::: / :::: sources, or (alone) --shape; with none of
  // them, the lines of standard input when it is not a terminal (GNU parallel's default).
  const bool has_tasks = !o.tasks.empty(), has_shape = !o.shape.empty();
  const bool has_sources = !cmd.sources.empty();
  const bool stdin_lines = !has_tasks && o.input_lines.empty() && !has_sources && !has_shape && !ctx.stdin_is_tty;
  const std::string input_lines = stdin_lines ? "-" : o.input_lines;
  const bool has_lines = !input_lines.empty();
  const bool has_output = !o.output.empty();
  if (has_tasks && has_lines) throw UsageError("--tasks and --input-lines both set the number of tasks: give one");
  if (has_sources && (has_tasks || has_shape))
    throw UsageError(std::string(has_tasks ? "--tasks" : "--shape") + " and " + describe_source(cmd.sources.front()) +
                     " both set the tasks: give one");
  if (!o.input_lines_max.empty() && !has_lines && !has_sources) throw UsageError("--input-lines-max needs --input-lines");
  if (o.null && !has_lines && !has_sources) throw UsageError("--null needs --input-lines or :::: FILE");
  std::optional<Shape> shape;
  if (has_shape) shape = parse_shape_option(o.shape);
  auto lines_limit = [&o] {
    return o.input_lines_max.empty() ? default_input_lines_limit() : parse_size("--input-lines-max", o.input_lines_max);
  };
  const char separator = o.null ? '\0' : '\n';
  SourceLayout layout;  // --exec's sources: which axis each is on (:::+ links one to the one before)
  // --exec whose first source of lines is a stream: its tasks start as its lines come.
  std::vector<InputSource> line_sources = cmd.sources;  // --input-lines, if given, is the first source
  if (has_lines) line_sources.insert(line_sources.begin(), InputSource{true, {input_lines}});
  const std::string first_option = has_lines ? "--input-lines" : "::::";
  if (may_stream(o, line_sources)) {
    plan.stream.emplace(plan_stream(line_sources, first_option, separator, lines_limit(), stdin_lines));
    plan.extent = plan.stream->extent();
  } else if (has_tasks) {
    plan.extent = {parse_count("--tasks", o.tasks)};
  } else if (has_sources) {
    plan.lines = read_sources(line_sources, lines_limit(), separator, plan.extent, &layout, first_option);
  } else if (has_lines) {
    plan.lines = read_input_lines(input_lines, lines_limit(), separator, "--input-lines", stdin_lines);
    if (plan.lines->size() == 0)  // standard input, read because no input was given and it is not a terminal
      throw UsageError(std::string("no tasks: give --tasks N, --shape AxB or --input-lines FILE") +
                       (o.exec ? ", or ::: VALUES after the command" : "") +
                       " (standard input, read for tasks since it is not a terminal, holds none)");
    plan.extent = {plan.lines->size()};
  } else if (shape) {
    plan.extent.assign(shape->begin(), shape->end());
  } else {
    throw UsageError(std::string("no tasks: give --tasks N, --shape AxB or --input-lines FILE") +
                     (o.exec ? ", or ::: VALUES after the command" : "") +
                     (o.mpi ? " (with --mpi, lines piped in are read only when named: :::: - or --input-lines -)" : ""));
  }
  if (o.exec) plan_exec(o, cmd, layout, plan);
  else plan.program = resolve_program(cmd.words.front());
  if (!o.exec) check_not_written(o, "the worker program", plan.program);
  if (!o.exec) plan.args.assign(cmd.words.begin() + 1, cmd.words.end());
  if (shape && (has_tasks || has_lines) && !has_output)
    throw UsageError("--shape with --tasks or --input-lines is the shape of the output array: it needs --output");
  const auto tasks = index_space_size(plan.extent);
  if (!tasks) throw UsageError("the index space " + format_shape(plan.extent) + " has 2^64 tasks or more");
  plan.tasks = *tasks;

  // No other run may write what this one writes or reads (flock), from before anything is read.
  using Use = FileClaim::Use;
  if (!o.input.empty()) plan.claims.input = FileClaim::take("--input", o.input, Use::read);
  if (!o.output.empty()) plan.claims.output = FileClaim::take("--output", o.output, Use::write);
  if (!o.joblog.empty()) plan.claims.joblog = FileClaim::take("--joblog", o.joblog, Use::write);
  if (!o.trace.empty()) plan.claims.trace = FileClaim::take("--trace", o.trace, Use::write);

  // --resume: the earlier run's record comes first; without it nothing else matters.
  std::optional<EarlierRun> earlier;
  if (o.resume) {
    if (o.joblog.empty()) throw UsageError("--resume needs the --joblog of the earlier run");
    try {
      // A command's inputs are its identity: a resume with other inputs is refused, naming the
      // first task that differs (a joblog written before the inputs column is trusted as is).
      earlier = read_joblog(o.joblog, o.exec && plan.lines ? fingerprint_inputs([&t = *plan.lines](std::uint64_t i) { return t.line(i); },
                                                                                plan.extent, layout)
                                                           : InputFingerprint{},
                            plan.extent);  // (another index space: refused before its rows are read)
    } catch (const Error& e) {
      throw UsageError(std::string("--resume: ") + e.what());
    }
  }

  // The output array.
  if (!o.dtype.empty() && !has_output) throw UsageError("--dtype needs --output");
  if (has_output) {
    OutputPlan out;
    const std::string dir = existing_parent("--output", o.output);
    out.path = absolute_in("--output", dir, o.output);
    if (!o.dtype.empty()) {
      auto dtype = parse_dtype(o.dtype);
      if (!dtype)
        throw UsageError("--dtype: '" + o.dtype + "' is not a dtype (uint8 uint16 int32 int64 float32 float64, or u1 u2 i4 i8 f4 f8)");
      out.dtype = *dtype;
    } else if (!o.resume) {
      throw UsageError("--output needs --dtype (uint8 uint16 int32 int64 float32 float64)");
    }
    out.shape = shape ? *shape : Shape(plan.extent.begin(), plan.extent.end());
    if (o.resume) adopt_existing_output(out, o, shape.has_value());
    else check_fresh_output(out.path, dir, out.dtype, out.shape);
    plan.identity.output = out.path;
    plan.identity.dtype = std::string(dtype_name(out.dtype));
    plan.identity.shape = format_shape(out.shape);
    plan.output = std::move(out);
  }
  plan.identity.extent = plan.extent;
  plan.identity.runs = o.exec ? "commands (--exec)" : "a worker program";

  if (!o.input.empty()) {
    check_input(o.input);
    plan.input = o.input;
  }

  if (!o.joblog.empty()) {
    existing_parent("--joblog", o.joblog);
    plan.joblog = o.joblog;
  }
  if (!o.trace.empty()) {
    existing_parent("--trace", o.trace);
    plan.trace = o.trace;
  }
  plan.resume = o.resume;
  plan.joblog_has_host = earlier && earlier->has_host;
  if (plan.exec && plan.lines && !o.joblog.empty()) plan.exec->joblog_inputs = !earlier || earlier->has_inputs;
  if (earlier) {
    // A joblog from before its identity said what ran (runs=): one whose rows record their
    // inputs was written by --exec — a worker program resuming it would take its rows for its own.
    if (earlier->identity.runs.empty() && earlier->has_inputs) earlier->identity.runs = "commands (--exec)";
    try {
      plan.todo = plan_resume(*earlier, plan.identity, o.joblog);
    } catch (const Error& e) {
      throw UsageError(std::string("--resume: ") + e.what());
    }
  } else if (!plan.stream) {  // a stream's ranges come as its lines do
    plan.todo.ranges = {{0, plan.tasks}};
  }

  plan.events = o.events;
  plan.keep_order = o.keep_order;
  if (o.progress && o.no_progress) throw UsageError("--progress and --no-progress contradict each other");
  if (o.no_progress) plan.progress = ProgressMode::off;
  else if (o.progress) plan.progress = ctx.stderr_is_tty ? ProgressMode::bar : ProgressMode::lines;
  else plan.progress = ctx.stderr_is_tty ? ProgressMode::bar : ProgressMode::off;
  return plan;
}

}  // namespace taskfarm::cli
