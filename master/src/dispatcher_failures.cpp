// What a failure costs: a task failed (retry or give up, halt policy); a worker died (charge only
// the index it was running, requeue the rest of what it held uncharged, isolate what it ran but
// never delivered, count deaths without progress, never charge a chaos kill); a worker could not start (back off for want of
// resources, stop the run when it never will). Part of Dispatcher (dispatcher.hpp).
#include "dispatcher.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>

namespace taskfarm {
namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

/// Why a worker under a memory limit died before its handshake, most likely: RLIMIT_AS counts
/// the program's libraries and the farm's segments, and a small limit leaves no room to load them.
std::string memory_limit_hint(std::uint64_t limit) {
  return "each worker may use at most " + format_bytes(limit) +
         " of memory (--mem-limit, memory_limit): too little to load the program is the likely cause";
}

}  // namespace

void Dispatcher::task_failed(std::size_t i, FailureRecord f, const ChunkTask& t) {
  f.attempt = t.attempt;
  f.chunk_begin = t.begin;
  f.chunk_end = t.end;
  f.slot = static_cast<int>(i);
  if (slots_[i].live) {
    f.pid = slots_[i].pid;
    if (f.stderr_tail.empty() && cfg_.stderr_tail) f.stderr_tail = cfg_.stderr_tail(static_cast<int>(i));
  }
  f.final = !sched_->may_retry(t.attempt);
  if (!f.final) {
    ++report_.retries;
    sched_->requeue(*f.index, *f.index + 1, t.attempt + 1);
  } else {
    ++final_failures_;
    if (job_->ordered) {
      skipped_.insert(*f.index);
      advance_frontier();
    }
  }
  if (obs_) obs_->on_failure(f);
  if (f.final) {
    report_.failures.push_back(std::move(f));
    halt_if_due();
  }
}

// The halt policy after a final failure.
void Dispatcher::halt_if_due() {
  if (opt_.halt == Halt::never || final_failures_ < opt_.halt_after) return;
  report_.halted = true;
  sched_->stop();
  if (opt_.halt == Halt::now) halting_now_ = true;
}

void Dispatcher::fail_run(FailureRecord f, std::string farm_error) {
  report_.farm_error = std::move(farm_error);
  report_.failures.push_back(std::move(f));
  sched_->stop();
  halting_now_ = true;
}

void Dispatcher::on_gone(int slot, const WorkerGone& g, Clock::time_point now) {
  const auto i = static_cast<std::size_t>(slot);
  Slot& s = slots_[i];
  const ExitStatus& st = g.status;
  // Told to stop and gone with nothing left: a clean exit, or one whose status another wait()
  // in this process took (a SIGCHLD handler, SIGCHLD ignored).
  const bool expected = s.stop_sent && s.held.empty() && !s.kill_cause && (st.unknown || (!st.signaled && st.code == 0));
  std::optional<std::uint64_t> suspect;
  const Held* running = nullptr;
  if (g.current_chunk != kNoChunk && !g.delivering) {
    const Held* h = find_held(s, g.current_chunk);
    if (h != nullptr && g.current_index >= h->committed && g.current_index < h->task.end) {
      suspect = g.current_index;
      running = h;
    }
  }
  // Died with no task running, or while talking to the master: after tasks that returned, before
  // their results reached it (a task closed the channel's descriptors, or left a thread that
  // crashed). Those tasks are the suspects. They run again in pieces, each delivered on its own,
  // until one, run alone, kills its worker again: that one is charged. A lone suspect that did
  // not run alone is not charged yet either — a thread a task left behind may strike while a
  // later, innocent task runs. Uncharged meanwhile, and not deaths without progress: each such
  // death shrinks the suspects.
  const bool own_cause = !expected && !s.kill_cause && !s.chaos_killed && !halting_now_;
  const std::vector<const Held*> unheard = own_cause && !suspect ? unheard_chunks(s, g.last_chunk) : std::vector<const Held*>{};
  std::uint64_t unheard_indices = 0;
  for (const Held* h : unheard) unheard_indices += h->task.end - h->committed;
  if (unheard_indices == 1 && unheard.front()->task.alone) {
    running = unheard.front();
    suspect = running->committed;
  }
  FailureRecord f;
  f.slot = slot;
  f.pid = s.pid;
  f.stderr_tail = g.stderr_tail;
  f.runtime = now - began(s, running, now);
  // A worker that crashed on its own (e.g. SIGSEGV while dumping core) after it was to be
  // killed for its timeout died of its own cause, not ours.
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
      f.message = cfg_.worker_name + " exited with code " + std::to_string(st.code) +
                  " before starting the taskfarm protocol: " +
                  (opt_.memory_limit != 0 ? memory_limit_hint(opt_.memory_limit)
                                          : "it is not a worker program (use --exec to run a command per task), or it "
                                            "failed before its run_worker call");
    }
  }
  if (s.hung_up && f.message.empty())
    f.message = "it closed its channel to the master and had not exited " + std::to_string(kHungUpGrace.count()) +
                " ms later: killed (a task that closes or replaces descriptors it did not open can do this)";
  if (!expected && !benched(i)) {  // (one stopped for not serving while others idled did not die of itself)
    ++report_.worker_deaths;
    s.died = true;
    if (s.chaos_killed) ++report_.chaos_kills;
  }
  const bool isolating = unheard_indices > 1 || (unheard_indices == 1 && !suspect);
  if (suspect && !unheard.empty())
    f.message = "it died after this task returned, before its result reached the master, and again when the task ran alone (a "
                "task that closes descriptors it did not open, or leaves a thread behind, can do this)";
  if (isolating)
    f.message = "it died after tasks returned, before their results reached the master (a task that closes descriptors it did "
                "not open, or leaves a thread behind, can do this): " + describe_unheard(unheard) +
                " run again, each piece delivered on its own, to find the task that does it; none is charged for this death";
  // Everything it held goes back; only the index it was running is charged an attempt.
  for (Held& h : s.held) {
    const ChunkTask& t = h.task;
    if (isolating && std::find(unheard.begin(), unheard.end(), &h) != unheard.end()) {
      // Halves of a lone suspect piece, else each piece alone: each such death shrinks the suspects.
      const std::uint64_t mid = unheard.size() == 1 ? h.committed + (t.end - h.committed) / 2 : t.end;
      sched_->requeue(h.committed, mid, t.attempt, /*alone=*/true);
      sched_->requeue(mid, t.end, t.attempt, /*alone=*/true);
    } else if (suspect && &h == running && !s.chaos_killed && !halting_now_) {
      sched_->requeue(h.committed, *suspect, t.attempt);
      sched_->requeue(*suspect + 1, t.end, t.attempt);
      FailureRecord charged = f;
      charged.index = *suspect;
      task_failed(i, std::move(charged), t);
    } else {
      sched_->requeue(h.committed, t.end, t.attempt);
    }
  }
  const bool charged = suspect && !s.chaos_killed;
  if (s.chaos_killed && obs_) {  // observers (a trace, an event stream) see injected kills too
    f.message = "fault injection (chaos): not charged to any index";
    obs_->on_failure(f);
  }
  if (isolating) {
    if (obs_) obs_->on_failure(f);
  } else if (!expected && !charged && !halting_now_ && !s.chaos_killed && benched(i)) {
    // Stopped for not serving (Overdue::unserved): not a death without progress. Said while the
    // run goes on, as a start that failed (ETIMEDOUT: it did not begin within kUnservedGrace).
    f.error = ETIMEDOUT;
    if (obs_) obs_->on_failure(f);
  } else if (!expected && !charged && !halting_now_ && !s.chaos_killed) {
    ++deaths_without_progress_;
    if (obs_) obs_->on_failure(f);
    // A handshake that never came from a program that has never made one: it will not come
    // from the next worker either (each attempt would cost start_timeout).
    // Nor from a program whose first worker exited before its Hello (Config::probe_first).
    const bool never_greets =
        f.cause == FailureCause::start && !greeted_ && (s.kill_cause == FailureCause::start || cfg_.probe_first);
    if (deaths_without_progress_ >= opt_.max_start_failures || never_greets) {
      std::string error;
      if (f.cause == FailureCause::start)
        error = f.message + (deaths_without_progress_ > 1 ? " (" + std::to_string(deaths_without_progress_) + " workers in a row)" : "");
      else
        // The count is of deaths in a row since the last progress: tasks may have succeeded before.
        error = "workers keep dying without completing a task: " + std::to_string(deaths_without_progress_) + " in a row, " +
                (report_.succeeded == 0 ? std::string("before any task succeeded")
                                        : "after " + std::to_string(report_.succeeded) + " of " + std::to_string(report_.tasks) + " tasks succeeded") +
                "; last: " + f.describe();
      if (f.cause != FailureCause::start && !s.hello && opt_.memory_limit != 0)  // (a start failure says it)
        error += "; it died before its handshake: " + memory_limit_hint(opt_.memory_limit);
      if (!f.stderr_tail.empty()) error += "\nits stderr ends with:\n" + f.stderr_tail;
      fail_run(f, std::move(error));
    }
  }
  on_released(slot);
}

std::vector<const Dispatcher::Held*> Dispatcher::unheard_chunks(const Slot& s, std::uint64_t last_chunk) {
  // A worker runs its chunks in the order it was given them: every held chunk up to the one it
  // began last has run, and what of it the master has not committed is what it has not heard.
  std::vector<const Held*> v;
  if (last_chunk == kNoChunk) return v;
  for (const Held& h : s.held) {
    if (h.committed < h.task.end) v.push_back(&h);
    if (h.task.id == last_chunk) return v;
  }
  return {};  // it names no chunk held: all it began has been heard
}

std::string Dispatcher::describe_unheard(const std::vector<const Held*>& unheard) {
  if (unheard.size() == 1 && unheard.front()->task.end - unheard.front()->committed == 1)
    return "index " + std::to_string(unheard.front()->committed);
  std::string out = "indices ";
  for (const Held* h : unheard) {
    if (h != unheard.front()) out += ", ";
    out += std::to_string(h->committed);
    if (h->task.end - h->committed > 1) out += "-" + std::to_string(h->task.end - 1);
  }
  return out;
}

void Dispatcher::spawn_failed(std::size_t i, const SpawnFailure& e, Clock::time_point now) {
  FailureRecord f;
  f.cause = FailureCause::start;
  f.slot = static_cast<int>(i);
  f.error = e.error;
  if (e.fatal) {  // the program cannot be executed at all
    f.message = e.what;
    if (obs_) obs_->on_failure(f);
    fail_run(f, e.what);
    return;
  }
  Slot& s = slots_[i];
  ++report_.failed_spawns;
  ++spawn_failures_in_a_row_;
  const auto backoff = std::min<Clock::duration>(kMaxBackoff, kFirstBackoff * (1 << std::min(s.spawn_failures, 10)));
  ++s.spawn_failures;
  s.retry_at = now + backoff;
  const std::size_t live = live_workers();
  if (live == 0 && spawn_failures_in_a_row_ >= opt_.max_start_failures) {
    f.final = true;  // the run stops: nothing more will be tried
    f.message = "cannot start any worker: " + e.what + " (" + std::to_string(spawn_failures_in_a_row_) + " attempts in a row)";
    if (obs_) obs_->on_failure(f);
    fail_run(f, f.message);
    return;
  }
  // Said once per streak, not per attempt: the same limit usually stops every slot at once.
  if (spawn_failures_in_a_row_ == 1 && obs_) {
    f.message = "cannot start a worker: " + e.what + "; carrying on with " + std::to_string(live) + " of " +
                std::to_string(run_workers_) + " workers, trying again";
    obs_->on_failure(f);
  }
}

}  // namespace taskfarm
