// Liveness: every tick_interval, whatever else happens, the Supervisor looks at each worker of
// the run through its slot segment — the chunk and task it is running, how many tasks it has
// done — and reports how long each has shown no progress (on_tick); a worker that has held work
// without progress for stall_warning (a line on stderr, on_stall), with the process that holds
// its task when that is not the worker (an --exec command, or what it started) and whether it is
// stopped — once per stall, and again whenever what is stopped in it changes. It only reads what
// workers write anyway, so their hot path pays nothing (docs/design.md §11). Part of Supervisor.
#include <unistd.h>

#include <cstdio>

#include "descendants.hpp"
#include "taskfarm/detail/write_out.hpp"
#include "proc_info.hpp"
#include "supervisor.hpp"

#include "taskfarm/outlet.hpp"

namespace taskfarm {

std::string WorkerLiveness::describe_stall(std::string_view timeout_hint) const {
  const double secs = std::chrono::duration<double>(since_progress).count();
  char for_[32];  // "60 s", or "0.4 s" for a short stall_warning
  std::snprintf(for_, sizeof for_, secs < 10 ? "%.1f s " : "%.0f s ", secs);
  std::string s = "slot " + std::to_string(slot) + " (pid " + std::to_string(pid) + ") has shown no progress for " + for_ +
                  (index ? "on task " + std::to_string(*index) : std::string("with work it has not started"));
  const std::string w = std::to_string(pid), c = std::to_string(task_pid);
  if (stopped() && task_stopped()) s += "; it and its command (pid " + c + ") are stopped (SIGSTOP?): kill -CONT " + w + " " + c + " resumes them";
  else if (stopped()) s += "; it is stopped (SIGSTOP?): kill -CONT " + w + " resumes it";
  else if (task_stopped()) s += "; its command (pid " + c + ") is stopped (SIGSTOP?): kill -CONT " + c + " resumes it";
  else if (state == 'D') s += "; it is in uninterruptible sleep (disk or network I/O)";
  else if (traced()) s += "; it is traced (a debugger or strace holds it at times; kill -CONT does not resume that)";
  if (task_pid != 0 && !task_stopped()) {
    if (task_state == 'D') s += "; its command (pid " + c + ") is in uninterruptible sleep (disk or network I/O)";
    else if (task_state == 't') s += "; its command (pid " + c + ") is traced (a debugger or strace holds it at times; kill -CONT does not resume that)";
    else if (task_state == 'Z') s += "; its command (pid " + c + ") has ended";
    else s += "; its command is pid " + c;
  }
  if (stopped_pid != 0)
    s += "; pid " + std::to_string(stopped_pid) + " in its process group is stopped (SIGSTOP?): kill -CONT " +
         std::to_string(stopped_pid) + " resumes it";
  if (stopped_again) s += "; it ran and stopped again since the last line (a process reading /dev/tty from the background stops at every read: SIGTTIN)";
  if (!timeout_hint.empty()) s += "; " + std::string(timeout_hint);
  return s;
}

namespace {

// The process the worker's slot says runs its task. The slot is the worker's to write, so the
// pid is named only if that process is the worker's child (a command it started) or in its
// process group (what that command started): a pid a worker killed at any instant left there,
// since reused, or any number a faulty worker wrote names nobody else's process.
void task_process(WorkerLiveness& w, std::int32_t slot_pid) noexcept {
  const auto p = static_cast<pid_t>(slot_pid);
  if (p <= 0 || p == w.pid) return;
  const proc::Stat st = proc::stat_of(p);
  if (st.state == '?' || (st.ppid != w.pid && st.pgrp != w.pid)) return;
  w.task_pid = p;
  w.task_state = st.state;
}

}  // namespace

WorkerLiveness Supervisor::observe(std::size_t i, std::int64_t now_ns) {
  WorkerSlot& s = slots_[i];
  const int slot = static_cast<int>(i);
  const SlotState& st = slot_state(s.proc->slot());
  const std::uint64_t chunk = st.current_chunk.load(std::memory_order_acquire);
  const std::uint64_t index = st.current_index.load(std::memory_order_acquire);
  const std::int64_t started = st.task_started_ns.load(std::memory_order_acquire);
  const std::uint64_t done = st.tasks_done.load(std::memory_order_relaxed);
  WorkerLiveness w;
  w.slot = slot;
  w.pid = s.proc->pid();
  w.started = d_.greeted(slot);
  w.busy = d_.busy(slot);
  bool first_of_chunk = false;
  w.index = d_.running(slot, chunk, index, first_of_chunk);
  // Any change of these is progress: a new chunk or task, a finished chunk, a new stamp.
  const bool moved = chunk != s.seen_chunk || index != s.seen_index || done != s.seen_done || started != s.seen_started;
  if (moved) {
    s.seen_chunk = chunk;
    s.seen_index = index;
    s.seen_done = done;
    s.seen_started = started;
    s.seen_since_ns = now_ns;
    s.stall_reported = false;
    s.stopped_said = s.seen_stopped = 0;
    // The slot says when this task started if it stamps every task (a task timeout is set) or
    // the task is the first of its chunk (each chunk's start is stamped); else the first tick
    // that saw it is the best bound (at most one tick late).
    if (w.index && started > 0 && started <= now_ns && (opt_.task_timeout.count() > 0 || first_of_chunk))
      s.seen_since_ns = started;
  }
  w.since_progress = std::chrono::nanoseconds(now_ns - s.seen_since_ns);
  // Only for those that look stuck (a read per worker, and one per command), or that are to be
  // reported now: a stall_warning shorter than a tick is due at the first tick that sees the task.
  const bool due = opt_.stall_warning.count() > 0 && w.since_progress >= opt_.stall_warning;
  if (!moved || due) {
    w.state = proc::state_of(w.pid);
    task_process(w, st.task_pid.load(std::memory_order_acquire));
  }
  return w;
}

// What is stopped of a stalled worker's work: the worker or its command (read at every tick by
// observe), else a process of its group that its task started — a scan of /proc, so done when
// the stall is first reported, when the process last seen stopped no longer is (one step of a
// pipeline resumed: another may still be), and once per stall_warning (one stopped since).
// Said again when that changes — after the `kill -CONT` a line suggested, another process still
// stopped is named at once, else the run would wait in silence — and when the process named last
// ran and stopped again (a command that stops itself again, or reads /dev/tty: SIGTTIN), at most
// once per stall_warning (one stopped and resumed all the time is not said at every tick).
void Supervisor::stall_check(WorkerSlot& s, const WorkerLiveness& w, std::int64_t now_ns) {
  const bool first = !s.stall_reported;
  const std::int64_t warn_ns = std::chrono::nanoseconds(opt_.stall_warning).count();
  pid_t stopped = w.stopped() ? w.pid : w.task_stopped() ? w.task_pid : 0;
  if (stopped == 0) {
    const pid_t seen = s.seen_stopped;
    const proc::Stat st = seen > 0 && seen != w.pid && seen != w.task_pid ? proc::stat_of(seen) : proc::Stat{};
    if (st.state == 'T' && st.pgrp == w.pid) {
      stopped = seen;  // the group member seen stopped is still stopped: no scan
    } else if (first || seen != 0 || now_ns >= s.next_scan_ns) {
      // What this task started, not what an earlier task left stopped in the group (h12 F12,
      // h12b N1): its command's descendants or younger processes; for a kernel that names no
      // process, ones started since its chunk began (the slot stamps each chunk's start).
      const std::int64_t chunk_started = s.seen_started;
      const std::uint64_t since = w.task_pid != 0 ? proc::stat_of(w.task_pid).start
                                  : chunk_started > 0 && chunk_started <= now_ns ? proc::ticks_since_boot(now_ns - chunk_started)
                                                                                 : 0;
      stopped = proc::stopped_in_group(w.pid, {w.pid}, since, w.task_pid);
      s.next_scan_ns = now_ns + warn_ns;
    }
  }
  s.seen_stopped = stopped;
  s.stall_reported = true;
  bool again = false;
  if (!first && stopped == 0) return;
  const std::int64_t switches = stopped != 0 ? proc::switches(stopped) : -1;
  if (!first && stopped == s.stopped_said) {
    // The same one: said again only if it ran since (its context switches moved: a stopped
    // process is never switched in), and not sooner than stall_warning after the last line.
    if (now_ns - s.said_at_ns < warn_ns || switches == s.said_switches) return;
    again = true;
  }
  s.stopped_said = stopped;
  s.said_switches = switches;
  s.said_at_ns = now_ns;
  WorkerLiveness stall = w;
  if (stopped != w.pid && stopped != w.task_pid) stall.stopped_pid = stopped;
  stall.stopped_again = again;
  if (opt_.stall_to_stderr)
    detail::write_best_effort(STDERR_FILENO, "taskfarm: " + stall.describe_stall(opt_.task_timeout.count() > 0 ? std::string_view{}
                                                                 : "task_timeout would kill and retry a task that runs too long") +
                                                 "\n");
  if (obs_ != nullptr) obs_->on_stall(stall);
}

void Supervisor::tick(Clock::time_point now) {
  next_tick_ = now + opt_.tick_interval;
  if (opt_.reap_descendants) descendants::reap_exited(worker_pids());  // adopted ones that ended
  // An outlet waiting on more than the one descriptor it names (stdout and stderr apart) is
  // tried at each tick as well.
  if (job_->outlet != nullptr && job_->outlet->fd() >= 0) job_->outlet->writable();
  if (!ticking()) return;
  const std::int64_t now_ns = monotonic_ns();
  FarmTick t;
  t.elapsed = now - run_start_;
  for (std::size_t i = 0; i < d_.run_workers() && i < slots_.size(); ++i) {
    WorkerSlot& s = slots_[i];
    if (!s.proc || s.proc->reaped()) continue;
    WorkerLiveness w = observe(i, now_ns);
    if (opt_.stall_warning.count() > 0 && w.busy && w.since_progress >= opt_.stall_warning) {
      stall_check(s, w, now_ns);
      // What the stall found stopped in its process group, as of this tick (for --progress).
      if (s.seen_stopped != w.pid && s.seen_stopped != w.task_pid) w.stopped_pid = s.seen_stopped;
    }
    t.workers.push_back(w);
  }
  if (obs_ != nullptr) obs_->on_tick(t);
}

}  // namespace taskfarm
