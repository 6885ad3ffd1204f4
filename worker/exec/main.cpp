// taskfarm-exec: the built-in worker of `taskfarm run --exec`. An ordinary worker program
// (run_worker) whose kernel runs one command per task: it builds the task's argument vector
// from the command template and the task's inputs, runs it (no shell unless --shell) with its
// stdout and stderr in the run's spool directory, waits for it, and reports a non-zero exit or
// a signal as the task's failure; their output comes through pipes it copies into the spool
// (output_pump.hpp), so a write there that fails fails the task (SpoolWriteFailed), and the
// master stops the run. A task that succeeded reports the bytes it left in the spool
// (PublishedSizes, its result value): output that vanishes from there is not taken for none. Everything else — crashes, retries, timeouts, joblog,
// resume, ordered output — is the farm's, as for any worker program. Started by `taskfarm`:
//   taskfarm-exec --spool DIR [--shell] [--replace STR] -- [WORD...]
// The task's inputs: with --input-lines or ::: / :::: sources (one axis of the index space per
// source, all values in the run's lines segment, source after source), value k is line
// (extent[0] + ... + extent[k-1] + coord k); without, value k is coordinate k itself (--tasks N:
// the task index).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "command_template.hpp"
#include "group_keeper.hpp"
#include "memory_failure.hpp"
#include "output_pump.hpp"
#include "spool.hpp"
#include "taskfarm/worker.hpp"

namespace {

using namespace taskfarm;
using namespace taskfarm::exec;

constexpr std::size_t kStderrTail = 2048;  // of a failed command's stderr, for its failure record

struct Options {
  std::string spool;
  bool shell = false;
  std::string replace = "{}";  // -I
  // --sources SIZE:AXIS[:LINE],...: :::+ linked sources (several on one axis), or a streamed first
  // source whose lines follow the others' in the segment (LINE: where each source's values
  // begin); else source k is axis k, its values after those of the sources before it.
  std::vector<std::uint64_t> source_sizes;
  std::vector<std::size_t> source_axes;
  std::vector<std::uint64_t> source_bases;
  std::vector<std::string> words;
};

class ExecKernel {
 public:
  explicit ExecKernel(Options o) : o_(std::move(o)), out_(o_.spool, Stream::out), err_(o_.spool, Stream::err) {
    null_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_) throw_errno("cannot open /dev/null for the commands' standard input");
    // A spool file past RLIMIT_FSIZE: the write fails (EFBIG) and the task says so, rather than
    // this worker dying of the signal. (Commands start with every signal at its default.)
    ::signal(SIGXFSZ, SIG_IGN);
  }

  void operator()(TaskContext& t) {
    if (!job_ || *job_ != t.job().job_id) begin_job(t.job());
    const std::uint64_t index = t.index();
    inputs_of(t, index);
    const std::vector<std::string> argv = template_->expand(views_, index + 1, slot_);
    std::string why, exec_error;
    // An argument is a C string: a NUL byte inside an input line would cut it there, and the
    // command would run on other input than its line. Not run, said (126, as a shell's "cannot
    // execute").
    const bool has_nul =
        std::any_of(argv.begin(), argv.end(), [](const std::string& a) { return a.find('\0') != std::string::npos; });
    std::string path = has_nul ? std::string() : program_.empty() ? find_program(argv.front(), why) : program_;
    if (has_nul) why = "an input holds a NUL byte, which no command argument can carry: not run (-0 reads NUL-separated input)";
    remove_task_output(o_.spool, index);
    CommandStatus status{has_nul ? 126 : 127, 0};
    const auto started = std::chrono::steady_clock::now();
    int write_error = 0;
    Stream failed_stream = Stream::out;
    if (path.empty()) {
      exec_error = why;
    } else {
      const int out = out_.fd(index), err = err_.fd(index);
      OutputPump pump;
      status = run_command(path, argv, StandardFds{null_.get(), pump.command_stdout(), pump.command_stderr()}, exec_error,
                           [&t](pid_t pid) { t.set_task_process(pid); },  // the stall report names it
                           [&](pid_t pid) { write_error = pump.copy(pid, out, err, failed_stream); });
    }
    const auto runtime = std::chrono::steady_clock::now() - started;
    if (write_error != 0) {  // what the spool holds is not the whole output: never printed as such
      out_.publish(index);
      err_.publish(index);
      throw SpoolWriteFailed(spool_write_failed_message(o_.spool, index, failed_stream, write_error) + "; command: " +
                             quote_command(argv));
    }
    if (!exec_error.empty()) {  // said on the task's stderr, as a shell would
      const std::string line = "taskfarm-exec: " + exec_error + "\n";
      [[maybe_unused]] const auto n = ::write(err_.fd(index), line.data(), line.size());
    }
    const bool failed = status.exit_code != 0 || status.signal != 0;
    std::string tail = failed ? err_.tail(kStderrTail) : std::string();
    const PublishedSizes sizes{out_.publish(index), err_.publish(index)};
    t.set_result(sizes);  // the master checks what it prints against them
    if (failed) {
      const bool memory = limited_ && reports_allocation_failure(tail);
      throw TaskProcessFailed(quote_command(argv), status.exit_code, status.signal, std::move(tail), runtime, memory);
    }
  }

 private:
  void begin_job(const JobInfo& job) {
    job_ = job.job_id;
    has_lines_ = !job.lines_handle.empty();
    extent_ = job.extent;
    const bool linked = !o_.source_sizes.empty();
    sizes_ = linked ? o_.source_sizes : extent_;
    axes_.resize(sizes_.size());
    for (std::size_t k = 0; k < axes_.size(); ++k) {
      axes_[k] = linked ? o_.source_axes[k] : k;
      if (axes_[k] >= extent_.size() || sizes_[k] < extent_[axes_[k]])
        throw Error("--sources does not fit the job's index space " + std::to_string(extent_.size()) + " axes");
    }
    template_.emplace(o_.words, o_.shell, sizes_.size(), o_.replace);
    bases_.assign(sizes_.size(), 0);
    for (std::size_t k = 1; k < sizes_.size(); ++k) bases_[k] = bases_[k - 1] + sizes_[k - 1];
    if (!o_.source_bases.empty()) bases_ = o_.source_bases;
    coords_.assign(extent_.size(), 0);
    values_.assign(sizes_.size(), {});
    views_.assign(sizes_.size(), {});
    program_.clear();
    if (const std::string* p = template_->literal_program()) {
      std::string why;
      program_ = find_program(*p, why);  // "" if not found: each task then fails with 127 and why
    } else if (template_->through_shell()) {
      program_ = "/bin/sh";
    }
    if (template_->uses_slot() && slot_ == 0) slot_ = take_slot(o_.spool);
  }

  // Source k's value for task `index`: a line of the lines segment (its coordinate on the
  // source's axis), or the coordinate itself.
  void inputs_of(TaskContext& t, std::uint64_t index) {
    std::uint64_t rest = index;
    for (std::size_t a = extent_.size(); a-- > 0;) {
      coords_[a] = rest % extent_[a];
      rest /= extent_[a];
    }
    for (std::size_t k = 0; k < sizes_.size(); ++k) {
      const std::uint64_t coord = coords_[axes_[k]];
      if (has_lines_) {
        views_[k] = t.line(bases_[k] + coord);
      } else {
        values_[k] = std::to_string(coord);
        views_[k] = values_[k];
      }
    }
  }

  Options o_;
  bool limited_ = address_space_limited();  // --mem-limit: a command's allocation failure is `memory`
  SpoolFile out_, err_;
  UniqueFd null_;
  std::optional<std::uint64_t> job_;
  std::optional<CommandTemplate> template_;
  bool has_lines_ = false;
  std::vector<std::uint64_t> extent_, sizes_, bases_, coords_;  // sizes_, bases_: per source
  std::vector<std::size_t> axes_;                               // the axis of each source
  std::vector<std::string> values_;
  std::vector<std::string_view> views_;
  std::string program_;
  unsigned slot_ = 0;
};

bool parse_sources(std::string_view spec, Options& o) {
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string item(spec.substr(0, comma));
    unsigned long long size = 0, axis = 0, base = 0;
    const int got = std::sscanf(item.c_str(), "%llu:%llu:%llu", &size, &axis, &base);
    if (got < 2) return false;
    o.source_sizes.push_back(size);
    o.source_axes.push_back(static_cast<std::size_t>(axis));
    if (got == 3) o.source_bases.push_back(base);
    spec.remove_prefix(comma == std::string_view::npos ? spec.size() : comma + 1);
  }
  return o.source_bases.empty() || o.source_bases.size() == o.source_sizes.size();  // a LINE for each, or none
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--shell") o.shell = true;
    else if (a == "--spool" && i + 1 < argc) o.spool = argv[++i];
    else if (a == "--replace" && i + 1 < argc) o.replace = argv[++i];
    else if (a == "--sources" && i + 1 < argc && parse_sources(argv[++i], o)) continue;
    else return std::nullopt;
  }
  if (i >= argc || o.spool.empty()) return std::nullopt;  // no words: the inputs are the command
  o.words.assign(argv + i + 1, argv + argc);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse(argc, argv);
  if (!options || !started_by_master()) {
    std::fprintf(stderr,
                 "taskfarm-exec is the worker of `taskfarm run --exec` and is started by it:\n"
                 "  taskfarm run --exec [options] -- COMMAND [ARGS...] [::: VALUES...]\n");
    return 2;
  }
  try {
    const GroupKeeper keeper;  // the commands' children die with this worker, however it dies
    ExecKernel kernel(std::move(*options));
    return run_worker([&kernel](TaskContext& t) { kernel(t); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm-exec: %s\n", e.what());
    return 4;
  }
}
