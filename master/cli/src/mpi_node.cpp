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

#include "mpi_wire.hpp"
#include "stdout_writer.hpp"
#include "stop_signals.hpp"
#include "summary.hpp"
#include "task_output.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/joblog.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm::cli::mpi {
namespace {

// The node master's feed: ranges come down the socket, requests go up.
class SocketFeed final : public RangeFeed {
 public:
  SocketFeed(int fd, std::uint64_t low) : fd_(fd), low_(low) {}
  int fd() const override { return fd_; }
  Batch read() override {
    Batch b;
    auto m = recv_message(fd_, 0);
    if (!m) return b;
    if (m->wire.kind == Wire::closed) b.closed = true;
    for (std::uint32_t k = 0; k < m->wire.count && k < 32 && m->wire.kind == Wire::ranges; ++k)
      b.ranges.emplace_back(m->wire.v[2 * k], m->wire.v[2 * k + 1]);
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
};

// The node's joblog rows, batched up to rank 0: a datagram and an MPI message per batch, not per
// commit. A batch goes when it is 16 KiB, when the last went 50 ms ago, at a tick, and at the end:
// rank 0's joblog lags the node's commits by that much (a resume then reruns those few tasks).
class RowRelay final : public FarmObserver {
 public:
  explicit RowRelay(int fd) : fd_(fd) {}
  void on_tasks_done(const TasksDone& t) override {
    format_.append_done(rows_, t);
    flush_if_due();
  }
  void on_failure(const FailureRecord& f) override {
    if (format_.append_failure(rows_, f)) flush_if_due();
  }
  void on_tick(const FarmTick&) override { flush(); }
  void flush() {
    if (rows_.empty()) return;
    send_rows(fd_, rows_);
    rows_.clear();
    last_ = std::chrono::steady_clock::now();
  }

 private:
  void flush_if_due() {
    if (rows_.size() >= 16 * 1024 || std::chrono::steady_clock::now() - last_ >= std::chrono::milliseconds(50)) flush();
  }
  int fd_;
  JoblogRows format_;  // rank 0 adds the host column
  std::string rows_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

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

int node_main(const RunPlan& plan, const std::string& output_path, int fd, std::uint64_t grain) {
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
  std::array<std::uint64_t, r_fields> counts{};
  try {
    std::optional<Message> go;
    for (int waited = 0; !go && waited < 600; ++waited) go = recv_message(fd, 100);  // rank 0 creates the output
    if (!go) throw Error("--mpi: rank 0 did not start the run within 60 s");
    AnySharedArray output;
    if (!output_path.empty()) output = AnySharedArray::open_npy(output_path, /*writable=*/true);
    std::optional<Farm> farm;
    farm.emplace(Farm::program(plan.farm, plan.program, plan.args));
    SocketFeed feed(fd, grain / 2);
    JobSpec job;
    job.extent = plan.extent;
    if (output) job.output_handle = output.handle();
    job.capture_stdout = true;
    job.feed = &feed;
    StdoutWriter out([&signals](int error) {
      if (error != EPIPE) std::cerr << "taskfarm: cannot write to standard output: " << std::strerror(error) << "\n";
      signals.stop(SIGPIPE);
    });
    TaskOutput task_output(out);
    std::optional<RowRelay> rows;
    if (go->wire.v[0] != 0) rows.emplace(fd);
    std::optional<CountRelay> progress;
    if (go->wire.v[1] != 0) progress.emplace(fd);
    FanoutObserver fanout;
    fanout.add(rows ? &*rows : nullptr);
    fanout.add(progress ? &*progress : nullptr);
    fanout.add(&task_output);
    signals.attach(*farm);
    RunReport r = farm->run(job, &fanout);
    signals.detach();
    if (rows) rows->flush();  // before the report: rank 0 writes every row before it ends
    if (progress) progress->on_tick(FarmTick{});
    farm.reset();
    out.flush();
    counts = {r.tasks, r.succeeded, r.failed_indices().size(), r.retries, r.worker_deaths,
              r.farm_error.empty() && !r.interrupted ? 0u : 1u};
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
  return counts[r_error] != 0 ? exit_farm : exit_ok;
}

}  // namespace taskfarm::cli::mpi
