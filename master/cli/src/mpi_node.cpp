#include "mpi_node.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>

#include "exec_output.hpp"
#include "input_sources.hpp"
#include "mpi_failures.hpp"
#include "mpi_gather.hpp"
#include "mpi_relay.hpp"
#include "mpi_watch.hpp"
#include "mpi_run.hpp"
#include "mpi_wire.hpp"
#include "spool_dir.hpp"
#include "stdout_writer.hpp"
#include "stop_signals.hpp"
#include "summary.hpp"
#include "task_output.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/event_stream.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/input_lines.hpp"
#include "taskfarm/joblog.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/trace.hpp"
#include "worker_notices.hpp"

namespace taskfarm::cli::mpi {
namespace {

// The node master's feed: ranges come down the socket, requests go up.
class SocketFeed final : public RangeFeed {
 public:
  // `pulse`: told each range fed, if there is one (--stall-warning).
  SocketFeed(int fd, std::uint64_t low, NodePulse* pulse) : fd_(fd), low_(low), pulse_(pulse) {}
  int fd() const override { return fd_; }
  Batch read() override {
    Batch b;
    auto m = recv_message(fd_, 0);
    if (!m) return b;
    if (m->wire.kind == Wire::closed) b.closed = true;
    for (std::uint32_t k = 0; k < m->wire.count && k < 32 && m->wire.kind == Wire::ranges; ++k) {
      b.ranges.emplace_back(m->wire.v[2 * k], m->wire.v[2 * k + 1]);
      if (pulse_ != nullptr) pulse_->fed(m->wire.v[2 * k], m->wire.v[2 * k + 1]);
    }
    return b;
  }
  void want_more() override {
    Wire w;
    w.kind = Wire::more;
    send_wire(fd_, w);
  }
  std::uint64_t low_water() const override { return low_; }

 private:
  int fd_;
  std::uint64_t low_;
  NodePulse* pulse_;
};

// Rank 0 publishes a trace that replaces a file of the user's once a task ended on any node and
// records were written, as Publisher does on one machine: one word from each node, at its first.
class EndedSignal final : public FarmObserver {
 public:
  explicit EndedSignal(int fd) : fd_(fd) {}
  void on_tasks_done(const TasksDone&) override { say(); }
  void on_failure(const FailureRecord& f) override {
    if (f.index) say();  // a worker that died between tasks: no task ended
  }

 private:
  void say() {
    if (said_) return;
    said_ = true;
    Wire w;
    w.kind = Wire::ended;
    send_wire(fd_, w);
  }
  int fd_;
  bool said_ = false;
};

// This machine's name, "?" if it has none.
std::string host_name() {
  char host[64] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "?";
  return host;
}

// This machine's name as a JSON string (a name is letters, digits, '-' and '.').
std::string json_host() {
  std::string s = "\"";
  for (const char c : host_name()) s += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  return s + "\"";
}

// An --events line of this node: its rank and host added, since a slot or pid alone is ambiguous
// across nodes (EventStream's lines end with "}\n").
std::string with_node(std::string_view line, const std::string& node_fields) {
  std::string s(line);
  if (s.size() >= 2 && s.compare(s.size() - 2, 2, "}\n") == 0) s.insert(s.size() - 2, node_fields);
  return s;
}

// The node's counts so far, up to rank 0's --progress: at most every 100 ms, and at ticks.
class CountRelay final : public FarmObserver {
 public:
  explicit CountRelay(int fd) : fd_(fd) {}
  void on_tasks_done(const TasksDone& t) override {
    ok_ += t.succeeded();
    send_if_due(false);
  }
  void on_failure(const FailureRecord& f) override {
    if (!f.index || !f.final) return;
    ++failed_;
    send_if_due(false);
  }
  void on_tick(const FarmTick&) override { send_if_due(true); }

 private:
  void send_if_due(bool now) {
    const auto t = std::chrono::steady_clock::now();
    if (ok_ + failed_ == sent_ || (!now && t - last_ < std::chrono::milliseconds(100))) return;
    Wire w;
    w.kind = Wire::progress;
    w.v[0] = ok_;
    w.v[1] = failed_;
    send_wire(fd_, w);
    sent_ = ok_ + failed_;
    last_ = t;
  }
  int fd_;
  std::uint64_t ok_ = 0, failed_ = 0, sent_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// Its relay gone or stopping: the parent-death signal comes once per reparenting (the relay's
// main thread, then its last MPI thread), so it has its own handler that may run twice, unlike
// StopSignals' one-shot SIGTERM (a second one kills at once: no cleanup).
StopSignals* g_node_signals = nullptr;
extern "C" void on_relay_gone(int) {
  if (g_node_signals != nullptr) g_node_signals->stop(SIGTERM);
}

}  // namespace

std::uint64_t node_grain(const RunPlan& plan, std::uint64_t grain_option) {
  // The node's estimate of a slice: the node count is not known before MPI_Init, so per local
  // worker; rank 0 divides by the node count (docs/design.md §17).
  if (grain_option != 0) return grain_option;
  std::uint64_t todo = 0;
  for (auto [b, e] : plan.todo.ranges) todo += e - b;
  const auto workers = static_cast<std::uint64_t>(std::max(1, plan.farm.workers));
  return std::max<std::uint64_t>(1, std::min<std::uint64_t>(todo / (16 * workers) + 1, 1u << 20));
}

int node_main(RunPlan& plan, const std::function<RunPlan()>& replan, const std::string& output_path, int fd,
              std::uint64_t grain_option) {
  // Its relay gone (the rank killed, the job aborted) or stopping: kRelayStop, a clean stop —
  // workers stopped, segments removed. Its own process group, so that Open MPI's kill of the
  // rank's group does not SIGKILL it before it has cleaned up.
  StopSignals signals;
  g_node_signals = &signals;
  struct sigaction sa {};
  sa.sa_handler = on_relay_gone;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(kRelayStop, &sa, nullptr);
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, kRelayStop);
  if (::getppid() == 1) return exit_farm;
  const int rank = mpi_rank_from_environment();
  std::array<std::uint64_t, r_fields> counts{};
  try {
    std::optional<Message> go;
    for (int waited = 0; !go && waited < 600; ++waited) go = recv_message(fd, 100);  // rank 0 creates the output
    if (!go) throw Error("--mpi: rank 0 did not start the run within 60 s");
    if (go->wire.kind != Wire::go) return exit_usage;  // rank 0 could not start the run (and said why)
    const auto asks = [&go](GoField f) { return go->wire.v[f] != 0; };
    if (asks(g_stdin)) {  // planned from a placeholder: rank 0's standard input is in the copy now
      plan = replan();
      if (hello(rank, plan, hash_lines(plan)).tasks_hash != go->wire.v[kGoTasksHash])
        throw Error("rank " + std::to_string(rank) + " read other tasks from rank 0's standard input than rank 0");
    }
    const std::uint64_t grain = node_grain(plan, grain_option);
    AnySharedArray output;
    // --mpi-gather: a node-local array, sent up piece by piece (rank 0's file may not be here).
    if (asks(g_gather)) output = gather_array(go->wire);
    else if (!output_path.empty()) {
      try {
        output = AnySharedArray::open_npy(output_path, /*writable=*/true);
      } catch (const Error& e) {  // rank 0 made it: this node does not see rank 0's file system
        throw Error(std::string(e.what()) + " (rank " + std::to_string(rank) +
                    "; where the nodes share no file system, use --mpi-gather)");
      }
    }
    // --input: every node maps it read-only from its own file system, as it reads its input
    // lines (the plan on every rank checked it whole); --mpi-gather does not carry it.
    AnySharedArray input;
    if (!plan.input.empty()) {
      try {
        input = AnySharedArray::open_npy(plan.input, /*writable=*/false);
      } catch (const Error& e) {
        throw Error(std::string("--input: ") + e.what() + " (rank " + std::to_string(rank) + ")");
      }
    }
    std::optional<DataRelay> data;
    if (asks(g_gather)) data.emplace(fd, output, plan.tasks);
    // --exec: the node's own spool (in --tmpdir, which each node reads on its own machine) and
    // the input lines every rank read from the same arguments or file (plan.lines).
    std::optional<SpoolDir> spool;
    std::optional<InputLines> lines;
    std::vector<std::string> worker_args = plan.args;
    if (plan.exec) {
      std::vector<std::string> ignored;
      sweep_dead_spools(plan.exec->tmpdir, ignored);
      spool.emplace(SpoolDir::create(plan.exec->tmpdir));
      worker_args = exec_worker_args(*plan.exec, spool->path());
    }
    if (plan.lines) lines.emplace(InputLines::create(std::move(*plan.lines)));
    std::optional<Farm> farm;
    plan.farm.stall_to_stderr = false;  // said by `notices`, with this rank and host (outside pass F43)
    // A pulse up to rank 0 every quarter of --stall-warning: rank 0 says a rank silent that long
    // (stopped, or its node overloaded), which the node itself cannot say (F44). It ticks as often.
    const auto pulse_every = std::max(std::chrono::milliseconds(10), plan.farm.stall_warning / 4);
    std::optional<NodePulse> pulse;
    if (plan.farm.stall_warning.count() > 0) {
      pulse.emplace(fd, pulse_every);
      if (plan.farm.tick_interval.count() == 0 || plan.farm.tick_interval > pulse_every) plan.farm.tick_interval = pulse_every;
    }
    farm.emplace(Farm::program(plan.farm, plan.program, worker_args));
    SocketFeed feed(fd, grain / 2, pulse ? &*pulse : nullptr);
    JobSpec job;
    job.extent = plan.extent;
    if (output) job.output_handle = output.handle();
    if (input) job.input_handle = input.handle();
    if (lines) job.lines_handle = lines->handle();
    job.capture_stdout = true;
    job.feed = &feed;
    StdoutWriter out([&signals](int error) {
      if (error != EPIPE) std::cerr << "taskfarm: cannot write to standard output: " << std::strerror(error) << "\n";
      signals.stop(SIGPIPE);
    });
    StdoutWriter err(nullptr, STDERR_FILENO);  // --exec: the commands' stderr, task by task
    // --events: this node's lines, its rank and host added, go to rank 0 at once (a driving
    // program waits for them); the tasks' output goes as "output" events, not to this stdout.
    std::optional<TextRelay> event_relay, trace_relay;
    std::optional<EventStream> events;
    if (asks(g_events)) {
      event_relay.emplace(fd, Wire::events, std::chrono::milliseconds(0));
      const std::string fields = ",\"rank\":" + std::to_string(rank) + ",\"host\":" + json_host();
      events.emplace([&event_relay, fields](std::string_view line) { event_relay->add(with_node(line, fields)); });
    }
    // --trace: this node's records under process id `rank`, timed from rank 0's "go" (each
    // node's own clock: design §17), batched like the rows.
    std::optional<Trace> trace;
    if (asks(g_trace)) {
      trace_relay.emplace(fd, Wire::trace, std::chrono::milliseconds(50));
      trace.emplace([&trace_relay](std::string_view records) { trace_relay->add(records); }, rank);
    }
    std::optional<TaskOutput> task_output;
    std::optional<ExecOutput> exec_output;
    std::optional<OutputRelay> ordered;  // --keep-order: rank 0 prints
    if (asks(g_order)) ordered.emplace(fd, spool.has_value());
    std::string spool_error;
    bool spool_error_said = false;  // a PARTIAL line says it: not said again (outside pass F34)
    if (spool) {
      exec_output.emplace(spool->path(), out, err, false,
                          ordered ? ordered->pieces() : events ? &*events : nullptr, std::vector<IndexRange>{},
                          OnPrinted{}, [&farm, &spool_error, &spool_error_said](const std::string& why, bool said) {
                            if (spool_error.empty()) {
                              spool_error = why;
                              spool_error_said = said;
                            }
                            if (farm) farm->request_stop();
                          });
      if (plan.exec->line_buffer) exec_output->line_buffered();
    } else if (!events && !ordered) {
      task_output.emplace(out);
    }
    std::optional<EndedSignal> ended;
    if (asks(g_ended)) ended.emplace(fd);
    std::optional<RowRelay> rows;
    if (asks(g_rows)) rows.emplace(fd);
    if (rows && asks(g_inputs) && lines && plan.exec)
      rows->record_inputs(fingerprint_inputs([&lines](std::uint64_t i) { return lines->line(i); }, plan.extent,
                                             plan.exec->layout.value_or(SourceLayout{})));
    std::optional<CountRelay> progress;
    if (asks(g_progress)) progress.emplace(fd);
    FanoutObserver fanout;
    fanout.add(data ? &*data : nullptr);  // a piece's bytes before its rows
    fanout.add(ended ? &*ended : nullptr);
    fanout.add(task_output ? &*task_output : nullptr);  // a piece's output is written out before its rows
    fanout.add(trace ? &*trace : nullptr);
    fanout.add(trace_relay ? &*trace_relay : nullptr);
    fanout.add(events ? &*events : nullptr);
    fanout.add(exec_output ? &*exec_output : nullptr);
    fanout.add(event_relay ? &*event_relay : nullptr);  // after everything that makes events
    // A task's row goes after its output events (sent at once, above): rank 0 then never has a
    // row of a task whose events it has not written (outside pass F36).
    fanout.add(rows ? &*rows : nullptr);
    // -k: after ExecOutput (a task's pieces before its end) and after the rows: a task's end goes
    // to rank 0 after its row, so rank 0 never prints a task whole without its row (F37).
    if (ordered && rows) ordered->send_after(*rows);
    fanout.add(ordered ? &*ordered : nullptr);
    fanout.add(progress ? &*progress : nullptr);
    fanout.add(pulse ? &*pulse : nullptr);
    WorkerNotices notices(nullptr, plan.farm.task_timeout.count() > 0, STDERR_FILENO,
                          "rank " + std::to_string(rank) + " (" + host_name() + "): ");
    fanout.add(&notices);
    signals.attach(*farm);
    RunReport r = farm->run(job, &fanout);
    signals.detach();
    farm.reset();
    lines.reset();
    if (exec_output) exec_output->finish();
    if (task_output) task_output->finish();
    spool.reset();
    // Before the report: rank 0 writes every row, event and record before it ends.
    for (TextRelay* relay : {static_cast<TextRelay*>(ordered ? &*ordered : nullptr),
                             static_cast<TextRelay*>(rows ? &*rows : nullptr), event_relay ? &*event_relay : nullptr,
                             trace_relay ? &*trace_relay : nullptr})
      if (relay != nullptr) relay->flush();
    if (progress) progress->on_tick(FarmTick{});
    // Which tasks failed and how, for rank 0's summary (bounded: mpi_failures.hpp).
    if (const std::string failed = encode_failures(r); !failed.empty()) send_text(fd, Wire::failures, failed);
    out.flush();
    if (!spool_error.empty() && !spool_error_said) std::cerr << "taskfarm: " << spool_error << "\n";
    counts = {r.tasks, r.succeeded, r.failed_indices().size(), r.retries, r.worker_deaths,
              // (a full spool stops the farm by request_stop: interrupted, but for that reason)
              r.farm_error.empty() && (!r.interrupted || !spool_error.empty()) ? 0u : 1u, spool_error.empty() ? 0u : 1u,
              r.restored_headers.empty() ? 0u : 1u, r.halted ? 1u : 0u};
    if (!r.farm_error.empty()) std::cerr << "taskfarm: " << r.farm_error << "\n";
  } catch (const std::exception& e) {
    std::cerr << "taskfarm: node master: " << e.what() << "\n";
    counts[r_error] = 1;
  }
  Wire w;
  w.kind = Wire::report;
  std::copy(counts.begin(), counts.end(), w.v.begin());
  try {
    send_wire(fd, w);
  } catch (const std::exception&) {
    return exit_farm;
  }
  return counts[r_error] != 0 ? exit_farm : counts[r_stopped] != 0 ? exit_joblog_failed : exit_ok;
}

}  // namespace taskfarm::cli::mpi
