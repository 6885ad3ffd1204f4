// `taskfarm run`: creates what the plan needs (output array, input mappings, joblog, trace,
// input-lines segment), runs the Farm once with the observers the options ask for, and ends
// with the summary and the exit status. Everything a run does is the library's (Farm); this
// file only wires it together. Main thread.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "events_observer.hpp"
#include "fanout_observer.hpp"
#include "joblog_observer.hpp"
#include "progress.hpp"
#include "stdout_writer.hpp"
#include "stop_signals.hpp"
#include "summary.hpp"
#include "task_output.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/input_lines.hpp"
#include "taskfarm/shared_array.hpp"
#include "trace_observer.hpp"
#include "worker_notices.hpp"

namespace taskfarm::cli {
namespace {

/// Removes an output file this run created unless keep() is called: a usage error must leave
/// nothing behind, and an output no task wrote to is no output.
class CreatedFile {
 public:
  CreatedFile() = default;
  CreatedFile(const CreatedFile&) = delete;
  CreatedFile& operator=(const CreatedFile&) = delete;
  ~CreatedFile() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  void arm(std::string path) { path_ = std::move(path); }
  void keep() noexcept { path_.clear(); }
  bool armed() const noexcept { return !path_.empty(); }

 private:
  std::string path_;
};

std::uint64_t count(const IndexRanges& ranges) {
  std::uint64_t n = 0;
  for (auto [b, e] : ranges) n += e - b;
  return n;
}

int fail(int status, const std::string& what) {
  std::cerr << "taskfarm: " << what << "\n";
  return status;
}

}  // namespace

int run_command(const RunPlan& plan, const std::string& resume_hint) {
  StopSignals signals;
  const std::uint64_t todo = count(plan.todo.ranges);
  if (todo == 0) {
    std::cerr << "taskfarm: nothing to resume: all " << plan.tasks << " tasks were done by the earlier run\n";
    if (plan.events) {  // a driving program still sees a start and an end
      StdoutWriter out(nullptr);
      EventsObserver events(out);
      events.start(0, plan.tasks, plan.todo.done, 0, plan.program);
      events.end(RunReport{}, exit_ok);
    }
    return exit_ok;
  }

  // What the workers map: the output array (created, or reopened to be completed), the input.
  AnySharedArray output, input;
  CreatedFile created;
  if (plan.output) {
    try {
      if (plan.output->reuse) {
        output = AnySharedArray::open_npy(plan.output->path, /*writable=*/true);
      } else {
        output = AnySharedArray::create_npy(plan.output->path, plan.output->dtype, plan.output->shape);
        created.arm(plan.output->path);
      }
    } catch (const Error& e) {
      return fail(exit_usage, std::string("--output: ") + e.what());
    }
  }
  if (!plan.input.empty()) {
    try {
      input = AnySharedArray::open_npy(plan.input, /*writable=*/false);
    } catch (const Error& e) {
      return fail(exit_usage, std::string("--input: ") + e.what());
    }
  }

  // Records of the run.
  std::optional<JoblogObserver> joblog;
  std::optional<TraceObserver> trace;
  try {
    if (!plan.joblog.empty())
      joblog.emplace(plan.resume ? JoblogFile::append(plan.joblog) : JoblogFile::create(plan.joblog, plan.identity));
    if (!plan.trace.empty())
      trace.emplace(plan.trace, "taskfarm " + std::filesystem::path(plan.program).filename().string());
  } catch (const Error& e) {
    return fail(exit_usage, e.what());
  }

  std::optional<InputLines> lines;
  std::optional<Farm> farm;
  try {
    if (plan.lines) lines.emplace(InputLines::create(*plan.lines));
    farm.emplace(Farm::program(plan.farm, plan.program, plan.args));
  } catch (const Error& e) {
    return fail(exit_farm, std::string("cannot start the farm: ") + e.what());
  }

  JobSpec job;
  job.extent = plan.extent;
  job.ranges = plan.todo.ranges;
  if (output) job.output_handle = output.handle();
  if (input) job.input_handle = input.handle();
  if (lines) job.lines_handle = lines->handle();
  job.capture_stdout = true;
  job.ordered = plan.keep_order;

  StdoutWriter out([&signals] { signals.stop(SIGPIPE); });
  Progress progress(plan.progress, todo);
  if (::isatty(STDOUT_FILENO) == 1) out.set_progress(&progress);
  std::optional<EventsObserver> events;
  std::optional<TaskOutput> task_output;
  if (plan.events) events.emplace(out);
  else task_output.emplace(out);

  FanoutObserver fanout;
  fanout.add(joblog ? &*joblog : nullptr);
  fanout.add(trace ? &*trace : nullptr);
  fanout.add(events ? static_cast<FarmObserver*>(&*events) : &*task_output);
  fanout.add(&progress);
  WorkerNotices notices(&progress, plan.farm.task_timeout.count() > 0);
  fanout.add(&notices);

  if (events)
    events->start(todo, plan.tasks, plan.todo.done, static_cast<int>(farm->worker_count()), plan.program);
  signals.attach(*farm);
  RunReport report;
  try {
    report = farm->run(job, &fanout);
  } catch (const std::exception& e) {
    report.tasks = todo;
    report.farm_error = e.what();
  }
  signals.detach();
  farm.reset();  // workers stopped and reaped, their segments removed, before we report
  lines.reset();
  out.flush();
  progress.finish();

  std::string trace_error;
  if (trace) {
    try {
      trace->finish();
    } catch (const Error& e) {
      trace_error = e.what();
    }
  }

  const int status = exit_status(report, signals.received());
  SummaryContext ctx;
  ctx.total = plan.tasks;
  ctx.earlier_done = plan.todo.done;
  ctx.stop_signal = signals.received();
  ctx.joblog = plan.joblog;
  ctx.resume_hint = resume_hint;
  std::string removed;
  if (plan.output) {
    ctx.output = plan.output->path;
    if (created.armed() && report.succeeded == 0) {
      removed = "taskfarm: removed " + plan.output->path + ": no task succeeded\n";
      ctx.output.clear();
      ctx.resume_hint.clear();
    } else {
      created.keep();
    }
  }
  std::cerr << format_summary(report, ctx) << removed;
  if (!trace_error.empty()) std::cerr << "taskfarm: " << trace_error << "\n";
  if (events) {
    events->end(report, status);
    out.flush();
  }
  return status;
}

}  // namespace taskfarm::cli
