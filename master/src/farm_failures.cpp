// What the farm does when things go wrong: a task failed (retry or give up, halt policy), a
// worker died (drain, classify, charge only the index it was running, requeue the rest), a
// task ran past its deadline, and chaos fault injection. Part of Farm::Impl (farm_impl.hpp).
#include <signal.h>

#include "farm_impl.hpp"
#include "taskfarm/detail/slot.hpp"

namespace taskfarm {
namespace {

// "5 s", "1.5 s", "300 ms": for messages.
std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  if (d.count() > 1000) return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

void Farm::Impl::task_failed(std::size_t i, FailureRecord f, const ChunkTask& t) {
  f.attempt = t.attempt;
  f.chunk_begin = t.begin;
  f.chunk_end = t.end;
  f.slot = static_cast<int>(i);
  if (slots[i].proc) {
    f.pid = slots[i].proc->pid();
    if (f.stderr_tail.empty()) f.stderr_tail = slots[i].proc->stderr_tail();
  }
  f.final = !sched->may_retry(t.attempt);
  if (!f.final) {
    ++report.retries;
    sched->requeue(*f.index, *f.index + 1, t.attempt + 1);
  } else {
    ++final_failures;
    if (job->ordered) {
      skipped.insert(*f.index);
      advance_frontier();
    }
  }
  if (obs) obs->on_failure(f);
  if (f.final) {
    report.failures.push_back(std::move(f));
    if (opt.halt != Halt::never && final_failures >= opt.halt_after) {
      report.halted = true;
      sched->stop();
      if (opt.halt == Halt::now) halting_now = true;
    }
  }
}

void Farm::Impl::kill_worker(std::size_t i, FailureCause cause, std::string message) {
  SlotRun& s = slots[i];
  if (!s.proc || s.proc->reaped() || s.kill_cause) return;
  s.kill_cause = cause;
  s.kill_message = std::move(message);
  s.proc->kill_group(SIGKILL);
}

void Farm::Impl::on_exit(std::size_t i, ExitStatus st) {
  SlotRun& s = slots[i];
  drain_channel(i);
  s.proc->drain_stderr(opt.forward_stderr, /*last=*/true);
  SlotState& ss = slot_state(s.proc->slot());
  // Told to stop and gone with nothing left: a clean exit, or one whose status another wait()
  // in this process took (a SIGCHLD handler, SIGCHLD ignored).
  const bool expected = s.stop_sent && s.held.empty() && !s.kill_cause && (st.unknown || (!st.signaled && st.code == 0));
  std::optional<std::uint64_t> suspect;
  std::uint64_t suspect_chunk = ss.current_chunk.load();
  if (suspect_chunk != kNoChunk) {
    Held* h = find_held(s, suspect_chunk);
    const std::uint64_t idx = ss.current_index.load();
    if (h != nullptr && idx >= h->committed && idx < h->task.end) suspect = idx;
  }
  FailureRecord f;
  f.slot = static_cast<int>(i);
  f.pid = s.proc->pid();
  f.stderr_tail = s.proc->stderr_tail();
  const Clock::time_point now = Clock::now();
  f.runtime = now - began(s, suspect ? find_held(s, suspect_chunk) : nullptr, now);
  // A worker that crashed on its own (e.g. SIGSEGV while dumping core) after we decided to
  // kill it died of its own cause, not ours.
  const bool own_death = st.signaled && st.code != SIGTERM && st.code != SIGKILL;
  if (s.kill_cause == FailureCause::timeout && own_death) s.kill_cause.reset();
  if (s.kill_cause) {
    f.cause = *s.kill_cause;
    f.message = s.kill_message;
    f.signal = st.signaled ? st.code : 0;
  } else if (st.signaled) {
    f.cause = FailureCause::signal;
    f.signal = st.code;
  } else {
    f.cause = FailureCause::exit;
    f.exit_code = st.code;
    if (st.unknown) f.message = "its exit status was taken by another wait() in this process";
    if (!s.hello) {
      f.cause = FailureCause::start;
      f.message = worker_name() + " exited with code " + std::to_string(st.code) +
                  " before starting the taskfarm protocol: it is not a worker program, or it failed before its "
                  "run_worker call";
    }
  }
  if (s.hello) greeted = true;
  if (!expected) {
    ++report.worker_deaths;
    if (s.chaos_killed) ++report.chaos_kills;
  }
  // Everything it held goes back; only the index it was running is charged an attempt.
  for (Held& h : s.held) {
    const ChunkTask& t = h.task;
    if (suspect && h.task.id == suspect_chunk && !s.chaos_killed && !halting_now) {
      sched->requeue(h.committed, *suspect, t.attempt);
      sched->requeue(*suspect + 1, t.end, t.attempt);
      FailureRecord g = f;
      g.index = *suspect;
      task_failed(i, std::move(g), t);
    } else {
      sched->requeue(h.committed, t.end, t.attempt);
    }
  }
  const bool charged = suspect && !s.chaos_killed;
  if (s.chaos_killed && obs) {  // observers (a trace, an event stream) see injected kills too
    f.message = "fault injection (chaos): not charged to any index";
    obs->on_failure(f);
  }
  if (!expected && !charged && !halting_now && !s.chaos_killed) {
    ++deaths_without_progress;
    if (obs) obs->on_failure(f);
    // A handshake that never came from a program that has never made one: it will not come
    // from the next worker either (each attempt would cost start_timeout).
    const bool never_greets = f.cause == FailureCause::start && s.kill_cause == FailureCause::start && !greeted;
    if (deaths_without_progress >= opt.max_start_failures || never_greets) {
      if (f.cause == FailureCause::start)
        report.farm_error = f.message + (deaths_without_progress > 1 ? " (" + std::to_string(deaths_without_progress) + " workers in a row)" : "");
      else
        // The count is of deaths in a row since the last progress: tasks may have succeeded before.
        report.farm_error = "workers keep dying without completing a task: " + std::to_string(deaths_without_progress) + " in a row, " +
                            (report.succeeded == 0 ? std::string("before any task succeeded")
                                                   : "after " + std::to_string(report.succeeded) + " of " + std::to_string(report.tasks) + " tasks succeeded") +
                            "; last: " + f.describe();
      if (!f.stderr_tail.empty()) report.farm_error += "\nits stderr ends with:\n" + f.stderr_tail;
      report.failures.push_back(f);
      sched->stop();
      halting_now = true;
    }
  }
  s.held.clear();
  s.held_indices = 0;
  unwatch(s.proc->pidfd());
  unwatch(s.proc->channel().fd());
  unwatch(s.proc->stderr_fd());
  s.seg = s.proc->take_slot();
  s.proc.reset();
}

void Farm::Impl::check_deadlines(Clock::time_point now) {
  const std::int64_t now_ns = monotonic_ns();
  for (std::size_t i = 0; i < slots.size(); ++i) {
    SlotRun& s = slots[i];
    if (!s.proc || s.proc->reaped()) continue;
    if (s.hello) greeted = true;
    // A master that was stopped or busy past the deadline may find the Hello waiting: look first.
    if (!s.hello && !s.kill_cause && opt.start_timeout.count() > 0 && now - s.spawned_at >= opt.start_timeout) drain_channel(i);
    if (!s.proc || s.proc->reaped()) continue;
    if (s.hello) greeted = true;
    if (!s.hello && !s.kill_cause && opt.start_timeout.count() > 0 && now - s.spawned_at >= opt.start_timeout) {
      kill_worker(i, FailureCause::start, worker_name() + " did not start the taskfarm protocol within " +
                                              format_duration(opt.start_timeout) +
                                              " — is it a worker program (does it call run_worker)?");
      continue;
    }
    if (s.kill_cause && s.kill_deadline != Clock::time_point{} && now >= s.kill_deadline) {
      s.proc->kill_group(SIGKILL);
      s.kill_deadline = {};
    }
    if (opt.task_timeout.count() > 0 && !s.kill_cause) {
      const std::int64_t started = slot_state(s.proc->slot()).task_started_ns.load();
      if (started != 0 && now_ns - started > std::chrono::nanoseconds(opt.task_timeout).count()) {
        s.kill_cause = FailureCause::timeout;
        s.kill_message = "ran longer than " + std::to_string(opt.task_timeout.count()) + " ms; sent SIGTERM, then SIGKILL after " + std::to_string(opt.kill_grace.count()) + " ms";
        s.proc->kill_group(SIGTERM);
        s.kill_deadline = now + opt.kill_grace;
      }
    }
  }
  if (opt.chaos_rate > 0 && now >= next_chaos) {
    std::vector<std::size_t> busy;
    for (std::size_t i = 0; i < slots.size(); ++i)
      if (slots[i].proc && !slots[i].proc->reaped() && !slots[i].held.empty() && !slots[i].kill_cause) busy.push_back(i);
    if (!busy.empty()) {
      SlotRun& s = slots[busy[rng() % busy.size()]];
      s.chaos_killed = true;
      s.proc->kill_group(SIGKILL);
    }
    schedule_chaos(now);
  }
}

std::string Farm::Impl::worker_name() const { return fork_mode ? std::string("a forked worker") : program; }

void Farm::Impl::schedule_chaos(Clock::time_point now) {
  std::exponential_distribution<double> gap(opt.chaos_rate);
  next_chaos = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
}

}  // namespace taskfarm
