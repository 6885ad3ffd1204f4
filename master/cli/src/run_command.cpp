// `taskfarm run`: creates what the plan needs (output array, input mappings, joblog, trace,
// input-lines segment), runs the Farm once with the observers the options ask for, and ends
// with the summary and the exit status. Everything a run does is the library's (Farm); this
// file only wires it together. Main thread.
//
// A file taskfarm did not create is never deleted, truncated or written: the files a run
// writes are made under temporary names (StagedFile, create_npy's Publish::later) and renamed
// over their paths only once they hold something to show (the joblog: a row written; the
// output: a task that succeeded; Publisher);
// before that, any failure or interruption removes only those temporary files. A --resume completes its output and joblog in
// place, as documented. The plan already holds the locks (FileClaim) that keep other runs out.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "exec_output.hpp"
#include "line_feed.hpp"
#include "publisher.hpp"
#include "spool_dir.hpp"
#include "stdout_writer.hpp"
#include "stop_signals.hpp"
#include "summary.hpp"
#include "task_output.hpp"
#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/detail/write_out.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/event_stream.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/input_lines.hpp"
#include "taskfarm/joblog.hpp"
#include "taskfarm/outlet.hpp"
#include "taskfarm/progress.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/trace.hpp"
#include "worker_notices.hpp"

namespace taskfarm::cli {
namespace {

/// This machine's name, for the host column of an --mpi run's joblog resumed on one machine.
std::string this_host() {
  char host[64] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
  for (char& c : host)
    if (c == '\t' || c == '\n') c = '_';
  return host;
}

/// --events lines go to standard output whole, each flushed at once: a driving program waits for it.
EventStream::Sink stdout_sink(StdoutWriter& out) {
  return [&out](std::string_view line) {
    out.write(line);
    out.flush();
  };
}

std::uint64_t count(const std::vector<IndexRange>& ranges) {
  std::uint64_t n = 0;
  for (auto [b, e] : ranges) n += e - b;
  return n;
}

int fail(int status, const std::string& what) {
  std::cerr << "taskfarm: " << one_line(what) << "\n";
  return status;
}

/// "60 s", or "0.4 s" below ten seconds (as a stall is said).
std::string seconds(std::chrono::milliseconds d) {
  const double secs = std::chrono::duration<double>(d).count();
  char text[32];
  std::snprintf(text, sizeof text, secs < 10 ? "%.1f s" : "%.0f s", secs);
  return text;
}

// Standard output that does not keep up (h12 F17): the text that may wait for it in memory (and
// the tasks whose text it is), and the --exec tasks whose output (in the spool, on disk) may
// wait, before no new work is handed out; and how long it is waited for after a stop (SIGINT,
// SIGTERM) before what it has not taken is given up.
constexpr std::uint64_t kHeldTextBytes = 16ull << 20;
constexpr std::size_t kHeldTasks = 4096;
constexpr std::uint64_t kHeldSpoolBytes = 64ull << 20;
constexpr std::uint64_t kHeldTextTasks = 65536;
constexpr std::chrono::milliseconds kStopPatience{1000};

/// Says once, on stderr, that the run has started nothing new for --stall-warning because
/// standard output takes nothing (the outlet is full): it would otherwise look hung.
class OutputWait final : public FarmObserver {
 public:
  OutputWait(const Outlet& outputs, const StdoutWriter& out, const StdoutWriter& err, Progress& progress,
             std::chrono::milliseconds after, std::function<void(const std::string&)> say)
      : outputs_(outputs), out_(out), err_(err), progress_(progress), after_(after), say_(std::move(say)) {}
  void on_tick(const FarmTick&) override {
    // (Held by stdout, or by stderr — which may be where this is said, and then it waits too.)
    const StdoutWriter& w = out_.stuck_since() != std::chrono::steady_clock::time_point{} ? out_ : err_;
    const auto stuck = w.stuck_since();
    const auto now = std::chrono::steady_clock::now();
    if (stuck == std::chrono::steady_clock::time_point{} || !outputs_.full()) {
      held_since_ = {};
      said_ = false;
      return;
    }
    if (held_since_ == std::chrono::steady_clock::time_point{}) held_since_ = now;
    if (said_ || after_.count() <= 0 || now - held_since_ < after_) return;
    said_ = true;
    progress_.clear();
    say_(std::string("taskfarm: ") + (&w == &out_ ? "standard output" : "stderr") + " has taken nothing for " +
         seconds(std::chrono::duration_cast<std::chrono::milliseconds>(now - stuck)) +
         " (a pager not read?): no new task starts until it takes more\n");
  }

 private:
  const Outlet& outputs_;
  const StdoutWriter& out_;
  const StdoutWriter& err_;
  Progress& progress_;
  std::chrono::milliseconds after_;
  std::chrono::steady_clock::time_point held_since_{};
  bool said_ = false;
  std::function<void(const std::string&)> say_;
};

/// The run's outlet (JobSpec::outlet): standard output and stderr, each queueing what its
/// descriptor does not take (stderr in stdout's queue where both are one file).
class Outputs final : public Outlet {
 public:
  Outputs(StdoutWriter& out, StdoutWriter& err) : out_(out), err_(err) {}
  int fd() const override { return out_.fd() >= 0 ? out_.fd() : err_.fd(); }
  void writable() override {
    out_.writable();
    err_.writable();
  }
  bool full() const override { return out_.full() || err_.full(); }

 private:
  StdoutWriter& out_;
  StdoutWriter& err_;
};

}  // namespace

int run_command(RunPlan& plan, const std::string& resume_hint) {
  StopSignals signals;
  const std::uint64_t todo = count(plan.todo.ranges);  // a stream's: its lines read so far (below)
  if (todo == 0 && !plan.stream) {
    std::cerr << "taskfarm: nothing to resume: all " << plan.tasks << " tasks were done by the earlier run\n";
    if (plan.events) {  // a driving program still sees a start and an end
      StdoutWriter out(nullptr);
      EventStream events(stdout_sink(out));
      events.start(0, plan.tasks, plan.todo.done, 0, plan.program);
      events.end(RunReport{}, exit_ok);
    }
    return exit_ok;
  }

  // What the workers read: the --input array, mapped read-only (the plan checked it whole).
  AnySharedArray output, input;
  if (!plan.input.empty()) {
    try {
      input = AnySharedArray::open_npy(plan.input, /*writable=*/false);
    } catch (const Error& e) {
      return fail(exit_usage, std::string("--input: ") + e.what());
    }
  }

  // What the run writes, under temporary names until it starts (a --resume completes the
  // output and the joblog in place). A failure here leaves only the user's files, untouched.
  using detail::StagedFile;
  std::optional<StagedFile> joblog_file, trace_file;
  if (plan.output) {
    try {
      if (plan.output->reuse) {
        output = AnySharedArray::open_npy(plan.output->path, /*writable=*/true);
      } else {
        output = AnySharedArray::create_npy(plan.output->path, plan.output->dtype, plan.output->shape,
                                            AnySharedArray::Publish::later);
      }
    } catch (const Error& e) {
      return fail(exit_usage, std::string("--output: ") + e.what());
    }
  }
  // --exec: the commands' output waits in a directory of its own until it is printed; it
  // outlives the workers that write into it (declared before the farm).
  std::optional<SpoolDir> spool;
  std::vector<std::string> worker_args = plan.args;
  if (plan.exec) {
    try {
      std::vector<std::string> ignored;
      sweep_dead_spools(plan.exec->tmpdir, ignored);
      spool.emplace(SpoolDir::create(plan.exec->tmpdir));
    } catch (const Error& e) {
      return fail(exit_farm, std::string("cannot start the farm: ") + e.what());
    }
    worker_args = exec_worker_args(*plan.exec, spool->path());
    if (plan.stream && !plan.stream->rest_counts.empty()) {  // a stream and other sources: where each one's lines are
      const auto dashdash = std::find(worker_args.begin(), worker_args.end(), std::string("--"));
      worker_args.insert(dashdash, {"--sources", plan.stream->worker_sources()});
    }
  }
  // The lines move into their segment (the plan's table gives its pages back as they are copied).
  std::optional<InputLines> lines;
  try {
    if (plan.lines) lines.emplace(InputLines::create(std::move(*plan.lines)));
    if (plan.stream) {  // the other sources' values first, whole; the stream's lines follow as they come
      lines.emplace(InputLines::create_growing(plan.stream->max_lines, plan.stream->max_text));
      const LineTable& rest = plan.stream->rest;
      for (std::uint64_t i = 0; i < rest.size(); ++i)
        if (!lines->append_text(rest.line(i)) || !lines->end_line()) throw Error("/dev/shm has no room for the inputs");
      plan.stream->rest = LineTable();
    }
  } catch (const Error& e) {
    return fail(exit_farm, std::string("cannot start the farm: ") + e.what());
  }
  std::optional<Farm> farm;
  std::string joblog_error;  // why the joblog stopped being written
  auto joblog_failed = [&farm, &joblog_error](const std::string& why) {
    joblog_error = why;
    if (farm) farm->request_stop();  // stop like an interruption: what is done stays done
  };
  std::optional<Joblog> joblog;
  std::optional<Trace> trace;
  try {
    if (!plan.joblog.empty() && plan.resume) {
      joblog.emplace(JoblogFile::append(plan.joblog), plan.todo.ranges, joblog_failed);
      if (plan.joblog_has_host) joblog->record_host(this_host());  // an --mpi run's joblog, finished here
    } else if (!plan.joblog.empty()) {
      joblog_file = StagedFile::create(plan.joblog);
      joblog.emplace(JoblogFile::create(joblog_file->duplicate_fd(), plan.joblog, plan.identity,
                                        plan.exec && plan.exec->joblog_inputs),
                     plan.todo.ranges, joblog_failed);
    }
    if (joblog && plan.exec && plan.exec->joblog_inputs)
      joblog->record_inputs(fingerprint_inputs([&lines](std::uint64_t i) { return lines->line(i); }, plan.extent,
                                               plan.exec->layout.value_or(SourceLayout{})));
    if (!plan.trace.empty()) {
      trace_file = StagedFile::create(plan.trace);
      trace.emplace(trace_file->duplicate_fd(), plan.trace,
                    "taskfarm " + std::filesystem::path(plan.program).filename().string());
    }
  } catch (const SystemError& e) {
    // The file system could not take the joblog or trace (full, over quota, past ulimit -f, an
    // I/O error): not a mistake in the command line — 102, as when it fills up mid-run (h12 F8).
    const int err = e.code();
    return fail(err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO ? exit_joblog_failed : exit_usage, e.what());
  } catch (const Error& e) {
    return fail(exit_usage, e.what());
  }

  // The workers' stderr goes where the run's other stderr goes (err, below, once it exists).
  // What a stderr nobody reads has not taken is bounded too (h13b N4): past kHeldTextBytes the
  // workers' lines are not kept (their failures' tails are), and how much was left out is said
  // once stderr takes more.
  StdoutWriter* forward_to = nullptr;
  std::uint64_t forward_dropped = 0;
  plan.farm.forward_stderr_to = [&forward_to, &forward_dropped](std::string_view text) {
    if (forward_to == nullptr) return detail::write_best_effort(STDERR_FILENO, text);
    if (forward_to->queued_bytes() >= kHeldTextBytes) {
      forward_dropped += text.size();
      return;
    }
    if (forward_dropped > 0) {
      forward_to->write("taskfarm: " + std::to_string(forward_dropped) +
                        " bytes of the workers' stderr not shown: stderr took nothing meanwhile\n");
      forward_dropped = 0;
    }
    forward_to->write(text);
    forward_to->flush();
  };
  try {
    plan.farm.stall_to_stderr = false;  // WorkerNotices says it, the progress bar cleared first
    farm.emplace(Farm::program(plan.farm, plan.program, worker_args));
  } catch (const Error& e) {
    return fail(exit_farm, std::string("cannot start the farm: ") + e.what());
  }

  // Where nothing was at a path, the new file goes there now: other runs see its lock at once.
  // A file of the user's there (locked by the plan) is replaced only once the run has something
  // to show (Publisher): the joblog once a row of it is written, the output at the first task
  // that succeeded, the trace when the run ends, if a task ended and the trace was written
  // whole. A file that appeared at a path since the plan looked is left alone.
  CreatedFile created;
  try {
    if (output && !output.published() && !plan.claims.output.existed()) {
      output.publish(AnySharedArray::OnExisting::refuse);
      created.arm(plan.output->path);
    }
    if (joblog_file && !plan.claims.joblog.existed()) joblog_file->publish(false);
    if (trace_file && !plan.claims.trace.existed()) trace_file->publish(false);
  } catch (const Error& e) {
    return fail(exit_usage, e.what());
  }
  std::string publish_error;
  std::string trace_error;  // why the trace could not be written whole (the run goes on)
  Publisher publisher(
      Unpublished{output ? &output : nullptr, nullptr, true, {}},
      Unpublished{nullptr, joblog_file ? &*joblog_file : nullptr, true,
                  [&joblog] { return joblog->holds_rows(); }},
      // A trace replaces a file of the user's only once it is written whole.
      Unpublished{nullptr, trace_file ? &*trace_file : nullptr, true,
                  [&trace, &trace_error] { return !trace->write_failed() && trace_error.empty(); },
                  /*at_end=*/true},
      [&farm, &publish_error](const std::string& why) {
        publish_error = why;
        if (farm) farm->request_stop();
      });

  JobSpec job;
  job.extent = plan.extent;
  job.ranges = plan.todo.ranges;
  if (output) job.output_handle = output.handle();
  if (input) job.input_handle = input.handle();
  if (lines) job.lines_handle = lines->handle();
  job.capture_stdout = true;
  job.ordered = plan.keep_order;

  // A reader that went away (`| head`) stops the run like SIGPIPE (exit 141); any other failure
  // (a full disk under `> file`, EIO) loses output, which stops the run like a joblog that cannot
  // be written: exit 102, and the tasks whose output was not printed are not recorded done.
  // The same for stderr with --exec, where a command's stderr is its output as much as its
  // stdout (h14 F14: `2>/dev/full` exited 0 with no task recorded done, and --resume ran them all
  // again; nothing can be said there: the exit status says it). Without --exec stderr carries the
  // workers' stderr and notices, diagnostics: a failure there does not stop the run.
  std::string stdout_error, stderr_error;
  const auto stop_when_lost = [&signals, &farm](std::string& why, const char* what) {
    return [&signals, &farm, &why, what](int error) {
      if (error == EPIPE) return signals.stop(SIGPIPE);
      why = std::string("cannot write to ") + what + ": " + std::strerror(error);
      if (farm) farm->request_stop();
    };
  };
  StdoutWriter out(stop_when_lost(stdout_error, "standard output"));
  StdoutWriter err(plan.exec ? std::function<void(int)>(stop_when_lost(stderr_error, "stderr")) : nullptr, STDERR_FILENO);
  forward_to = &err;
  struct Unforward {
    StdoutWriter*& to;
    ~Unforward() { to = nullptr; }
  } unforward{forward_to};
  // The bar and progress lines through a non-blocking descriptor: a redraw stderr cannot take
  // is dropped (the next one says it all), never waited for.
  const UniqueFd progress_fd = reopen_nonblocking(STDERR_FILENO);
  Progress progress(plan.progress, todo, progress_fd ? progress_fd.get() : STDERR_FILENO);
  // A stream's lines are fed to the run as they come (LineFeed); its first ones are in the plan.
  std::optional<LineFeed> feed;
  if (plan.stream) {
    StreamPlan& sp = *plan.stream;
    feed.emplace(std::move(sp.source), std::move(sp.first), sp.separator, sp.limit, format_bytes(sp.limit), *lines,
                 sp.per_line, sp.bound, [&progress](std::uint64_t n, bool all) { progress.set_total(n, all); });
    job.ranges = feed->first_ranges();
    if (job.ranges.empty() && feed->ended())  // the limit before the first line: refused, as a whole read is
      return fail(exit_usage, feed->stopped());
    if (!feed->ended()) job.feed = &*feed;  // (ended already: its first ranges are all)
  }
  if (::isatty(STDOUT_FILENO) == 1) out.set_progress(&progress);
  if (plan.progress == ProgressMode::bar) err.set_progress(&progress);
  std::optional<EventStream> events;
  std::optional<TaskOutput> task_output;
  std::optional<ExecOutput> exec_output;
  std::optional<PrintedByEvents> printed_by_events;
  std::string spool_error;  // --exec: a task's output could not be written into --tmpdir
  // A task's printed output is a result: its joblog row waits until that output is out, so that
  // a master killed meanwhile (-k: the output waits for the tasks before it) or a standard output
  // that failed leaves it for --resume (GNU parallel logs a job when it prints it).
  OnPrinted on_printed;
  if (joblog) {
    joblog->hold_until_printed();
    on_printed = [&joblog](std::span<const std::uint64_t> indices) { joblog->printed(indices); };
  }
  if (plan.events) events.emplace(stdout_sink(out));
  if (spool) {
    // -k prints in index order: a stream's indices are 0, 1, ... up to its bound, as they come.
    const std::vector<IndexRange> order = plan.stream ? std::vector<IndexRange>{{0, plan.tasks}} : plan.todo.ranges;
    exec_output.emplace(spool->path(), out, err, plan.keep_order, events ? &*events : nullptr, order, on_printed,
                        [&farm, &spool_error](const std::string& why, bool) {
                          if (spool_error.empty()) spool_error = why;
                          if (farm) farm->request_stop();
                        });
    if (plan.exec->line_buffer) exec_output->line_buffered();
  } else if (!plan.events) {
    task_output.emplace(out, on_printed, [&err](std::uint64_t index) {
      err.write("taskfarm: the output of index " + std::to_string(index) +
                " is PARTIAL: standard output had not taken all of it when the run ended\n");
      err.flush();
    });
  } else if (on_printed) {
    printed_by_events.emplace(out, on_printed);
  }
  // The run never blocks on standard output or stderr: what they do not take waits (the Farm
  // watches them and holds back new work while too much does). Where both are one pipe or
  // terminal, stderr waits behind the stdout before it, in one queue, so their order holds.
  out.queue_when_full(kHeldTextBytes, [&exec_output, &task_output, &printed_by_events] {
    if (exec_output) return exec_output->waiting() >= kHeldTasks || exec_output->waiting_bytes() >= kHeldSpoolBytes;
    // (Each task that waits holds its joblog row, and a note of where its output is.)
    return (task_output && task_output->waiting() >= kHeldTextTasks) ||
           (printed_by_events && printed_by_events->waiting() >= kHeldTextTasks);
  });
  if (same_file(STDOUT_FILENO, STDERR_FILENO)) err.follow(out);
  else err.queue_when_full(kHeldTextBytes);
  Outputs outputs(out, err);
  job.outlet = &outputs;

  FanoutObserver fanout;
  fanout.add(&publisher);
  fanout.add(task_output ? &*task_output : nullptr);  // a piece's output is written out before its rows
  fanout.add(joblog ? &*joblog : nullptr);
  fanout.add(trace ? &*trace : nullptr);
  fanout.add(events ? &*events : nullptr);
  fanout.add(printed_by_events ? &*printed_by_events : nullptr);
  fanout.add(exec_output ? &*exec_output : nullptr);
  fanout.add(publisher.records());  // after the joblog, the trace and the printers: what they wrote
  fanout.add(&progress);
  WorkerNotices notices(&progress, plan.farm.task_timeout.count() > 0);
  const auto to_stderr = [&err](const std::string& line) {
    err.write(line);
    err.flush();
  };
  notices.send_to(to_stderr);
  fanout.add(&notices);
  OutputWait output_wait(outputs, out, err, progress, plan.farm.stall_warning, to_stderr);
  fanout.add(&output_wait);

  if (events)  // (never with a stream: --events reads it whole, stream_plan.cpp)
    events->start(todo, plan.tasks, plan.todo.done,
                  static_cast<int>(std::min<std::uint64_t>(farm->worker_count(), todo)), plan.program);
  signals.attach(*farm);
  RunReport report;
  try {
    report = farm->run(job, &fanout);
  } catch (const std::exception& e) {
    report.tasks = feed ? feed->tasks() : todo;
    report.farm_error = e.what();
  }
  signals.detach();
  farm.reset();  // workers stopped and reaped, their segments removed, before we report
  lines.reset();
  if (exec_output) exec_output->finish();
  if (task_output) task_output->finish();  // results held for order, handed over as the run ended
  // What waits for standard output: as long as its reader takes (a pager read at leisure); after
  // a stop, kStopPatience more, then what it has not taken is not printed (nor recorded done).
  // Both, until neither has work: a task printed once stderr took the last one's puts more into
  // stdout's queue (ExecOutput waits for both). One grace for both: stdout given up on after
  // it, stderr has had it too (h13b N6); a writer counts its grace from the stop it first saw.
  do {
    out.drain(signals.flag(), kStopPatience);
    err.drain(signals.flag(), out.gave_up() ? std::chrono::milliseconds(0) : kStopPatience);
  } while ((out.busy() && !out.closed()) || (err.busy() && !err.closed()));
  // A stop that came once the tasks were done and cost output (given up on) ends the run as
  // interrupted all the same: its exit status is the signal's, not that of a complete run.
  const bool output_given_up = out.gave_up() || err.gave_up();
  if (output_given_up && signals.received() != 0) report.interrupted = true;
  spool.reset();
  progress.finish();

  if (trace) {
    try {
      trace->finish();
    } catch (const Error& e) {
      trace_error = e.what();
    }
  }

  // A file that could not be put in place (its directory made read-only or removed meanwhile) is
  // not: what is at the path stays, the run stopped (exit 102), and what it published before
  // stays too (a --resume goes on from it).
  const bool published = publisher.finish(report);
  // A file of the run that could not be written or put in place stops it like an interruption.
  // So does a spool that could not take a task's output (a full --tmpdir): its output is incomplete.
  const std::string& stop_error = !joblog_error.empty()   ? joblog_error
                                  : !spool_error.empty()  ? spool_error
                                  : !stdout_error.empty() ? stdout_error
                                                          : stderr_error;
  // A stream read up to its limit: the lines read ran, the rest did not — not a complete run.
  const std::string feed_stopped = feed ? feed->stopped() : std::string();
  // A trace that could not be written whole did not stop the run, but it is not what was asked.
  // (A first line alone past --input-lines-max is refused as a whole read refuses it: exit 2.
  // The plan reads only the input's start, so a long first line is met here; nothing ran.)
  const bool refused = feed && feed->refused_whole() && report.succeeded == 0 && signals.received() == 0;
  const int status = refused ? exit_usage
                     : published && stop_error.empty() && trace_error.empty() &&
                             (feed_stopped.empty() || signals.received() != 0)
                         ? exit_status(report, signals.received())
                         : exit_joblog_failed;
  SummaryContext ctx;
  ctx.total = feed ? feed->tasks() : plan.tasks;
  ctx.earlier_done = plan.todo.done;
  ctx.stop_signal = signals.received();
  ctx.stop_reason = published ? stop_error : publisher.error();
  // (Also when the reader went away: what was in the pipe then is lost with it, recorded or not.)
  if (published && (!stop_error.empty() || output_given_up || signals.received() == SIGPIPE) && joblog)
    ctx.joblog_recorded = joblog->recorded_ok();
  ctx.joblog = plan.joblog;
  ctx.resume_hint = resume_hint;
  if (plan.exec && plan.retries_defaulted)  // said, since worker programs are retried by default
    ctx.retry_note = kExecRetryNote;
  std::string untouched;
  if (plan.output) {
    ctx.output = plan.output->path;
    if (created.armed() && report.succeeded == 0) {  // ours, made at the start: no output
      untouched = "taskfarm: removed " + plan.output->path + ": no task succeeded\n";
      ctx.output.clear();
      ctx.resume_hint.clear();
    } else if (output && !output.published()) {
      untouched = (report.succeeded == 0 ? "taskfarm: no task succeeded: " : "taskfarm: the results could not be put in place: ") +
                  plan.output->path + " was not replaced (the file there is as it was)\n";
      ctx.output.clear();
      ctx.resume_hint.clear();
    } else {
      created.keep();
    }
  }
  // A joblog or trace that replaces a file of the user's but never held a row (no task ended,
  // or the joblog's first write failed) was not put in place: a --resume would read the user's
  // file. (A trace that could not be written whole is said with its error, below.)
  const StagedFile* staged_joblog = joblog_file ? &*joblog_file : nullptr;
  const StagedFile* staged_trace = trace_file ? &*trace_file : nullptr;
  for (const StagedFile* f : {staged_joblog, staged_trace}) {
    if (f == nullptr || f->published() || (f == staged_trace && !trace_error.empty())) continue;
    const bool unwritten = f == staged_joblog && !joblog->holds_rows();
    untouched += "taskfarm: " + f->path() + " was not replaced" +
                 (unwritten ? ": no joblog row of this run was written" : "") +
                 " (the file there is as it was)\n";
    if (f == staged_joblog) {
      ctx.resume_hint.clear();
      ctx.joblog_recorded.reset();
    }
  }
  std::string said;  // the summary and what follows it, on stderr
  if (forward_dropped > 0)
    said += "taskfarm: " + std::to_string(forward_dropped) +
            " bytes of the workers' stderr not shown: stderr took nothing meanwhile\n";
  if (refused) {  // one line, as the usage errors it stands for (nothing ran: no summary)
    said += "taskfarm: " + feed_stopped + "\n" + untouched;
  } else {
    said += format_summary(report, ctx) + untouched;
    if (!feed_stopped.empty()) said += "taskfarm: " + feed_stopped + "\n";
  }
  if (output_given_up)
    said += "taskfarm: standard output had not taken all of it " + seconds(kStopPatience) +
            " after the stop: the output it had not taken was not printed\n";
  if (!trace_error.empty())  // one line: what became of the file
    said += "taskfarm: " + trace_error +
            (staged_trace->published() ? " (it ends after the last record that fit)"
                                       : " (" + plan.trace + " was not replaced: the file there is as it was)") +
            "\n";
  // Behind what waits for stderr (the commands' stderr, notices), never blocking: after a stop,
  // a stderr nobody reads gets kStopPatience, then the summary is dropped — `timeout 10m
  // taskfarm … 2>&1 | less` sends one signal only, and must end the run (h13 F1).
  err.write(said);
  err.flush();
  out.drain(signals.flag(), kStopPatience);  // (stdout's queue holds it where both are one file)
  err.drain(signals.flag(), kStopPatience);
  if (events) {
    events->end(report, status);
    out.drain(signals.flag(), kStopPatience);
  }
  return status;
}

}  // namespace taskfarm::cli
