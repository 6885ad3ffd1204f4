// Stopping workers — at the end of a fork-mode run, on halt or interruption, at close — with a
// deadline for each step (Stop, then TERM, then KILL), and the descendants that escaped them.
// Part of Supervisor (supervisor.hpp).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "descendants.hpp"
#include "supervisor.hpp"

namespace taskfarm {
namespace {

constexpr auto kStopGrace = std::chrono::milliseconds(1000);

}  // namespace

void Supervisor::request_stop() noexcept {
  stop_requested_.store(true);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(stop_fd_.get(), &one, sizeof one);
}

void Supervisor::close() {
  stop_all(false);
  kill_strays();
}

void Supervisor::send_stops() {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    WorkerSlot& w = slots_[i];
    if (!w.proc || d_.stop_sent(static_cast<int>(i))) continue;
    if (!d_.greeted(static_cast<int>(i)) || w.proc->reaped()) {
      w.proc->kill_group(SIGKILL);
      continue;
    }
    try {
      w.proc->channel().try_send(proto::Stop{});
    } catch (...) {
      w.proc->kill_group(SIGKILL);
    }
  }
}

void Supervisor::stop_all(bool now) {
  if (now) {
    for (auto& w : slots_)
      if (w.proc) w.proc->kill_group(SIGKILL);
  } else {
    send_stops();
  }
  const auto deadline = Clock::now() + kStopGrace;
  bool termed = false;
  for (;;) {
    bool left = false;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      WorkerSlot& w = slots_[i];
      if (!w.proc) continue;
      const bool gone = w.proc->try_reap() || w.proc->reaped();
      w.proc->drain_stderr(opt_.forward_stderr, /*last=*/gone, &opt_.forward_stderr_to);
      if (gone) {
        release(i);
        d_.on_released(static_cast<int>(i));
      } else {
        left = true;
      }
    }
    if (!left) return;
    const auto now_t = Clock::now();
    if (now_t >= deadline) {
      for (std::size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].proc) {
          slots_[i].proc->kill_and_reap();
          release(i);
          d_.on_released(static_cast<int>(i));
        }
      return;
    }
    if (!termed && now_t >= deadline - kStopGrace / 2) {
      for (auto& w : slots_)
        if (w.proc) w.proc->kill_group(SIGTERM);
      termed = true;
    }
    wait_for_exits(10);
  }
}

void Supervisor::wait_for_exits(int timeout_ms) {
  std::vector<pollfd> fds;
  for (auto& w : slots_)
    if (w.proc && !w.proc->reaped()) fds.push_back(pollfd{w.proc->pidfd(), POLLIN, 0});
  if (!fds.empty()) ::poll(fds.data(), fds.size(), timeout_ms);
}

std::vector<pid_t> Supervisor::worker_pids() const {
  std::vector<pid_t> pids;
  for (const auto& w : slots_)
    if (w.proc && !w.proc->reaped()) pids.push_back(w.proc->pid());
  return pids;
}

std::uint64_t Supervisor::kill_strays() {
  if (!opt_.reap_descendants) return 0;
  return descendants::kill_and_reap(worker_pids(), kStopGrace);
}

void Supervisor::release(std::size_t i) {
  WorkerSlot& w = slots_[i];
  unwatch(w.proc->pidfd());
  unwatch(w.proc->channel().fd());
  unwatch(w.proc->stderr_fd());
  w.seg = w.proc->take_slot();
  w.proc.reset();
  // A TERM → KILL deadline dies with its worker: left set, it would make every later wait 0 ms.
  w.kill_deadline = {};
}

}  // namespace taskfarm
