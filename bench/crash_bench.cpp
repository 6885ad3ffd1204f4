// Issue 7, item 6: from SIGKILL of a busy worker to the farm acting on it, program mode, 2
// workers running 50 ms sleeping tasks (chunk 1). A killer thread sends SIGKILL through a pidfd
// at a recorded time; the farm's observer (on the farm's thread) records
//  crash.requeued*          on_failure for that worker. The farm requeues the charged index
//                           and reports it in the same step (Dispatcher::task_failed), so this
//                           is kill → death noticed → index requeued.
//  crash.handed_out_again*  on_chunk_started with attempt >= 1: the requeued index handed out
//                           to a worker again. Stricter, informative: it includes starting the
//                           replacement worker, which is the one that receives it.
// Baseline, interleaved with the kills: SIGKILL of a bare child (bench_child wait) through a
// pidfd until poll() reports the pidfd readable. Medians and p99 over the kills. Each kill and
// its baseline wait until the previous kill's replacement has run 15 ms: a farm that hands the
// requeued index out at once otherwise has the next kill land while that worker program still
// loads (the bare baseline, its code unchanged, measured ~0.3 ms slower: performance.md).
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <thread>

#include "measure.hpp"
#include "row.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/unique_fd.hpp"

extern char** environ;

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;
constexpr int kTaskMs = 50;
constexpr auto kEventWait = std::chrono::seconds(5);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

UniqueFd open_pidfd(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_errno("pidfd_open " + std::to_string(pid));
  return UniqueFd(fd);
}

void kill_through(const UniqueFd& pidfd) {
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0)
    throw_errno("pidfd_send_signal");
}

/// What the farm reports, written on the farm's thread and read by the killer thread.
class CrashWatch final : public FarmObserver {
 public:
  void on_worker_started(int slot, pid_t pid) override {
    const std::int64_t t = now_ns();
    std::lock_guard lock(mu_);
    pid_[static_cast<std::size_t>(slot)] = pid;
    started_ns_[static_cast<std::size_t>(slot)] = t;
    if (victim_ != 0 && detect_ns_ != 0 && respawn_ns_ == 0) respawn_ns_ = t;
    cv_.notify_all();
  }
  void on_failure(const FailureRecord& f) override {
    const std::int64_t t = now_ns();
    std::lock_guard lock(mu_);
    if (victim_ == 0 || f.pid != victim_ || detect_ns_ != 0) return;
    detect_ns_ = t;
    // Its slot has no worker until the replacement's on_worker_started (which comes after this).
    if (f.slot >= 0 && f.slot < kWorkers && pid_[static_cast<std::size_t>(f.slot)] == victim_)
      pid_[static_cast<std::size_t>(f.slot)] = 0;
    charged_ = f.index.has_value();
    cv_.notify_all();
  }
  void on_chunk_started(int, pid_t, std::uint64_t, std::uint64_t, std::uint32_t attempt) override {
    const std::int64_t t = now_ns();
    std::lock_guard lock(mu_);
    if (victim_ == 0 || detect_ns_ == 0 || attempt == 0 || requeue_ns_ != 0) return;
    requeue_ns_ = t;
    cv_.notify_all();
  }

  /// Waits until worker `slot` has run for at least `settle`; returns its pid.
  pid_t busy_worker(std::size_t slot, std::chrono::milliseconds settle) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kEventWait, [&] { return pid_[slot] != 0; }))
      throw Error("no worker in slot " + std::to_string(slot));
    const std::int64_t ready = started_ns_[slot] + std::chrono::nanoseconds(settle).count();
    lock.unlock();
    if (const std::int64_t wait = ready - now_ns(); wait > 0)
      std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    lock.lock();
    return pid_[slot];
  }

  /// Waits until every slot has a worker that has run for at least `settle`: the replacement
  /// of the previous kill has loaded and taken its task, so neither the next kill nor its
  /// baseline shares the CPUs with a worker program's start (exec, dynamic loading, Hello).
  void settled(std::chrono::milliseconds settle) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kEventWait, [&] {
          return std::all_of(pid_.begin(), pid_.end(), [](pid_t p) { return p != 0; });
        }))
      throw Error("the farm did not start a worker in every slot within 5 s");
    const std::int64_t ready =
        *std::max_element(started_ns_.begin(), started_ns_.end()) + std::chrono::nanoseconds(settle).count();
    lock.unlock();
    if (const std::int64_t wait = ready - now_ns(); wait > 0)
      std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
  }

  struct Outcome {
    double detect_ms = 0, requeue_ms = 0;
    double respawn_ms = -1;  ///< when the replacement worker was started, if before the requeue
    bool charged = false;
  };
  /// Kills `pid`, timing from just before the signal to the farm's reactions.
  Outcome kill_and_watch(pid_t pid) {
    const UniqueFd pidfd = open_pidfd(pid);
    std::unique_lock lock(mu_);
    victim_ = pid;
    detect_ns_ = requeue_ns_ = respawn_ns_ = 0;
    const std::int64_t kill_ns = now_ns();
    kill_through(pidfd);
    const bool seen = cv_.wait_for(
        lock, kEventWait, [&] { return detect_ns_ != 0 && (!charged_ || requeue_ns_ != 0); });
    victim_ = 0;
    if (!seen)
      throw Error("the farm did not report the death of worker pid " + std::to_string(pid) +
                  " within 5 s");
    Outcome o;
    o.detect_ms = static_cast<double>(detect_ns_ - kill_ns) / 1e6;
    o.charged = charged_;
    if (charged_) o.requeue_ms = static_cast<double>(requeue_ns_ - kill_ns) / 1e6;
    if (respawn_ns_ != 0 && respawn_ns_ <= requeue_ns_)
      o.respawn_ms = static_cast<double>(respawn_ns_ - kill_ns) / 1e6;
    return o;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<pid_t, kWorkers> pid_{};
  std::array<std::int64_t, kWorkers> started_ns_{};
  pid_t victim_ = 0;
  std::int64_t detect_ns_ = 0, requeue_ns_ = 0, respawn_ns_ = 0;
  bool charged_ = false;
};

/// The baseline: SIGKILL a bare sleeping child through a pidfd, until poll() says it ended.
double bare_child_ms() {
  char* argv[] = {const_cast<char*>(BENCH_CHILD), const_cast<char*>("wait"), nullptr};
  pid_t pid = 0;
  if (::posix_spawn(&pid, BENCH_CHILD, nullptr, nullptr, argv, environ) != 0)
    throw_errno("posix_spawn " BENCH_CHILD);
  const UniqueFd pidfd = open_pidfd(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // let it reach pause()
  const auto t0 = Clock::now();
  kill_through(pidfd);
  pollfd p{pidfd.get(), POLLIN, 0};
  const int n = ::poll(&p, 1, 5000);
  const double ms = ms_since(t0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (n != 1) throw Error("pidfd of the bare child did not become readable within 5 s");
  return ms;
}

void crash(const BenchArgs& args) {
  const int kills = args.reps_or(200, 10);
  FarmOptions o;
  o.workers = kWorkers;
  o.chunk = 1;
  o.retries = 1'000'000;  // kills are charged to indices: never let one finally fail
  o.max_start_failures = 1'000'000;
  Farm farm = Farm::program(o, BENCH_WORKER, {"sleep_ms", std::to_string(kTaskMs)});
  JobSpec job;
  job.extent = {1'000'000'000};  // more than the kills will ever get through; stopped below
  CrashWatch watch;

  Samples detect, requeue, bare, respawn;
  int uncharged = 0;
  std::exception_ptr killer_error;
  std::thread killer([&] {
    try {
      std::mt19937 rng(12345);
      std::uniform_int_distribution<int> settle_ms(15, 40);  // after start, into a 50 ms task
      for (int k = 0; k < kills; ++k) {
        watch.settled(std::chrono::milliseconds(15));
        bare.add(bare_child_ms());
        const pid_t pid = watch.busy_worker(static_cast<std::size_t>(k % kWorkers),
                                            std::chrono::milliseconds(settle_ms(rng)));
        const CrashWatch::Outcome out = watch.kill_and_watch(pid);
        detect.add(out.detect_ms);
        if (out.charged) requeue.add(out.requeue_ms);
        if (out.respawn_ms >= 0)
          respawn.add(out.respawn_ms);
        else
          ++uncharged;
      }
    } catch (...) {
      killer_error = std::current_exception();
    }
    farm.request_stop();
  });
  const RunReport report = farm.run(job, &watch);
  killer.join();
  if (killer_error) std::rethrow_exception(killer_error);

  const std::vector<std::pair<std::string, double>> extra = {
      {"kills", static_cast<double>(kills)},
      {"uncharged_kills", uncharged},
      {"replacement_started_before_requeue", static_cast<double>(respawn.size())},
      {"replacement_started_ms_median", respawn.median()},
      {"worker_deaths", static_cast<double>(report.worker_deaths)}};
  const std::string base =
      "bare child: pidfd_send_signal(SIGKILL) until poll() on its pidfd returns";
  Row row("crash.requeued",
          "program mode, 2 workers: SIGKILL of a busy worker until its index is requeued "
          "(on_failure) (median)",
          "ms", "lower", detect, base, bare);
  row.extra = extra;
  emit(row);
  row.name = "crash.requeued_p99";
  row.what =
      "program mode, 2 workers: SIGKILL of a busy worker until its index is requeued "
      "(on_failure) (p99)";
  row.statistic = "p99";
  emit(row);
  row.name = "crash.handed_out_again";
  row.what = "SIGKILL until its requeued index is handed out again, attempt 1 (median)";
  row.statistic = "median";
  row.samples = requeue;
  emit(row);
  row.name = "crash.handed_out_again_p99";
  row.what = "SIGKILL until its requeued index is handed out again, attempt 1 (p99)";
  row.statistic = "p99";
  emit(row);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  return taskfarm::bench::bench_main("bench_crash", argc, argv, taskfarm::bench::crash);
}
