// The Dispatcher's run, its planning pass (starts and top-ups), the handshake, kills it decides
// and fault injection. Results are in dispatcher_results.cpp, failures in dispatcher_failures.cpp.
#include "dispatcher.hpp"

#include <algorithm>

namespace taskfarm {
namespace {

// "5 s", "1.5 s", "300 ms": for messages.
std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  if (d.count() > 1000) return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

// An observer that throws ends the run as --halt now does: no worker is blamed for it (it was
// the user's code), nothing more is handed out, and Supervisor::run rethrows it.
Dispatcher::Dispatcher(Config config)
    : cfg_(std::move(config)), opt_(cfg_.options), guard_([this] {
        if (sched_) sched_->stop();
        halting_now_ = true;
      }) {}

void Dispatcher::begin_run(const JobSpec& job, FarmObserver* observer, Clock::time_point now, std::uint64_t chaos_entropy) {
  job_ = &job;
  guard_.attach(observer);
  obs_ = observer != nullptr ? &guard_ : nullptr;
  report_ = RunReport{};
  final_failures_ = 0;
  deaths_without_progress_ = 0;
  spawn_failures_in_a_row_ = 0;
  hold_new_work_ = false;
  for (auto& s : slots_) s.retry_at = {}, s.spawn_failures = 0, s.died = false;
  halting_now_ = false;
  starting_ = false;
  pending_.clear();
  pending_bytes_ = 0;
  skipped_.clear();
  delivered_.clear();
  ++job_id_;

  SchedulerConfig sc;
  sc.ranges = job.ranges;
  std::uint64_t n = 1;
  for (auto d : job.extent) n *= d;
  if (job.extent.empty()) n = 0;
  if (sc.ranges.empty() && !job.feed) sc.ranges.emplace_back(0, n);
  feed_open_ = job.feed != nullptr;
  asked_ = false;
  low_water_ = job.feed ? job.feed->low_water() : 0;
  extent_size_ = n;
  sc.open = feed_open_;
  // Never more workers than tasks: the others would never get work (-j 100000 --tasks 3).
  // A run with a feed does not know its tasks: all its workers may get work.
  std::uint64_t tasks = 0;
  for (auto [b, e] : sc.ranges) tasks += e > b ? e - b : 0;
  run_workers_ = static_cast<std::size_t>(std::clamp<std::uint64_t>(job.feed ? cfg_.workers : tasks, 1, cfg_.workers));
  if (slots_.size() < run_workers_) slots_.resize(run_workers_);  // slots are made as runs need them
  benched_.assign(slots_.size(), false);
  report_.workers = run_workers_;
  sc.chunk = opt_.chunk;
  sc.workers = run_workers_;
  sc.retries = opt_.retries;
  sc.ordered = job.ordered;
  ranges_ = sc.ranges;
  frontier_ = ranges_.empty() ? 0 : ranges_.front().first;
  sched_.emplace(std::move(sc));
  report_.tasks = sched_->total();
  // Seeded per run, so a fixed seed does not replay the same (maybe empty) schedule each run.
  if (opt_.chaos_rate > 0) {
    rng_.seed((opt_.chaos_seed != 0 ? opt_.chaos_seed : chaos_entropy) + job_id_);
    schedule_chaos(now);
  }
}

Command Dispatcher::take_command() {
  Command c = std::move(commands_[head_++]);
  if (head_ == commands_.size()) {  // all carried out: reuse the storage
    commands_.clear();
    head_ = 0;
  }
  return c;
}

bool Dispatcher::any_held() const noexcept {
  for (const auto& s : slots_)
    if (!s.held.empty()) return true;
  return false;
}

bool Dispatcher::any_live() const noexcept {
  for (const auto& s : slots_)
    if (s.live) return true;
  return false;
}

bool Dispatcher::finished() const noexcept {
  return !any_held() && (sched_->stopped() || (sched_->drained() && !feed_open_));
}

void Dispatcher::plan(Clock::time_point now) {
  if (!starting_) plan_from(0, now);
  ask_if_low();
}

void Dispatcher::plan_from(std::size_t first, Clock::time_point now) {
  for (std::size_t i = first; i < run_workers_ && !halting_now_; ++i) {
    Slot& s = slots_[i];
    if (s.live) {
      top_up(i, now);
      continue;
    }
    // A worker is started only while there is work to hand out: once everything is out, one
    // started while the last workers finish (in fork mode, only to be told to stop) is a fork
    // wasted — 63 of them in a one-second tail of a 2-worker run. A slot backing off after a
    // start that failed for want of resources waits its turn.
    if (sched_->stopped() || sched_->drained() || hold_new_work_ || (s.retry_at != Clock::time_point{} && now < s.retry_at)) continue;
    if (benched(i)) continue;
    if (probe_holds(now)) continue;  // the first start's Hello comes first (or its grace passes)
    // One start at a time: the new worker gets its first chunks before the next one is started,
    // so it works while the others start (on_started / on_spawn_failed go on from here).
    starting_ = true;
    queue(Command{Command::Kind::start, static_cast<int>(i), false, {}, false, {}});
    return;
  }
}

void Dispatcher::on_started(int slot, pid_t pid, Clock::time_point now) {
  const auto i = static_cast<std::size_t>(slot);
  Slot& s = slots_[i];
  if (cfg_.probe_first && !greeted_ && !any_live()) probe_started_ = now;  // the probe, alone
  if (s.died) ++report_.workers_replaced;
  s = Slot{};  // a new worker: nothing held, nothing said, no backoff
  s.live = true;
  s.pid = pid;
  s.last_end = now;
  spawn_failures_in_a_row_ = 0;
  starting_ = false;
  if (obs_) obs_->on_worker_started(slot, pid);
  top_up(i, now);
  plan_from(i + 1, now);
}

void Dispatcher::on_spawn_failed(int slot, const SpawnFailure& f, Clock::time_point now) {
  const auto i = static_cast<std::size_t>(slot);
  starting_ = false;
  spawn_failed(i, f, now);
  plan_from(i + 1, now);
}

void Dispatcher::top_up(std::size_t i, Clock::time_point now) {
  Slot& s = slots_[i];
  if (!s.live || s.stop_sent || s.kill_cause || s.chaos_killed) return;
  Command a{Command::Kind::assign, static_cast<int>(i), s.job_sent != job_id_, {}, false, {}};
  s.job_sent = job_id_;
  const std::size_t depth = sched_->depth();
  // Hysteresis: fewer, larger messages. A worker that holds work and has not reported since it
  // was last given some gets no more: it may be stuck in a long task, and held chunks are not
  // taken back, so what the planning pass queued behind that task would wait while the others
  // idle (the first measurement raises the depth from 2 to hundreds). Its own Done tops it up.
  // A chunk to run alone is the only one its worker holds until it has reported it.
  const bool holds_alone = !s.held.empty() && s.held.back().task.alone;
  if (!holds_alone && !hold_new_work_ && (s.held.empty() || (!s.fed && s.held.size() * 2 <= depth))) {
    // Never hold more than a fair share of the unfinished work: held chunks are not taken back,
    // so a worker given more than that would finish last while the others idle.
    std::uint64_t unfinished = sched_->unassigned();
    for (const auto& o : slots_) unfinished += o.held_indices;
    const std::uint64_t share = (unfinished + run_workers_ - 1) / run_workers_;
    while (s.held.size() < depth && a.chunks.size() < proto::kMaxBatch && !s.retiring &&
           (s.held_indices == 0 || s.held_indices + sched_->chunk_size() <= share)) {
      // A worker recycled after max_tasks_per_worker is never handed more than that.
      const std::uint64_t allowance = opt_.max_tasks_per_worker != 0 ? opt_.max_tasks_per_worker - s.assigned : ~std::uint64_t{0};
      auto t = sched_->next(allowance, s.held.empty());
      if (!t) break;
      s.held.push_back(Held{*t, t->begin, {}, now});
      a.chunks.push_back(proto::Chunk{t->id, t->begin, t->end, t->attempt, t->budget_ns});
      s.held_indices += t->size();
      s.assigned += t->size();
      if (obs_) obs_->on_chunk_started(static_cast<int>(i), s.pid, t->begin, t->end, t->attempt);
      if (opt_.max_tasks_per_worker != 0 && s.assigned >= opt_.max_tasks_per_worker) s.retiring = true;
      if (t->alone) break;
    }
  }
  if (!a.chunks.empty()) s.fed = true;
  if (a.send_job || !a.chunks.empty()) queue(std::move(a));
  // A worker stops once its queue is empty. A retiring one is told with its last chunks (it
  // gets no more: one round trip less per recycled worker, and per submitted call, design §8);
  // in fork mode, once nothing is left to hand out, each is told at once (with its last chunks,
  // if any), so it exits as soon as it has reported them, while the others finish (a crash
  // after this gets a fresh worker). Not while it holds a probe: the probe's rest may come back
  // (ChunkDone::returned), and is best run by the worker that has it, not by a fresh fork.
  const bool probing = std::any_of(s.held.begin(), s.held.end(), [](const Held& h) { return h.task.budget_ns != 0; });
  if (!probing && ((s.retiring && !s.stop_sent) || (cfg_.stop_when_drained && sched_->drained() && !feed_open_))) {
    s.stop_sent = true;
    queue(Command{Command::Kind::stop, static_cast<int>(i), false, {}, false, {}});
  }
}

void Dispatcher::on_message(int slot, const proto::Message& m, PieceRecords& records, Clock::time_point now) {
  const auto i = static_cast<std::size_t>(slot);
  Slot& s = slots_[i];
  if (!s.live || s.kill_cause) return;  // killed: what it says no longer counts
  try {
    if (const auto* hello = std::get_if<proto::Hello>(&m)) {
      if (s.hello || hello->pid != s.pid) throw proto::ProtocolError("unexpected Hello (pid " + std::to_string(hello->pid) + ")");
      s.hello = true;
      greeted_ = true;
    } else if (const auto* d = std::get_if<proto::Done>(&m)) {
      on_done(i, *d, records, now);
    } else if (const auto* e = std::get_if<proto::TaskError>(&m)) {
      on_task_error(i, *e);
    } else {
      throw proto::ProtocolError(std::string("unexpected ") + std::string(proto::message_name(m)) + " from a worker");
    }
  } catch (const std::exception& e) {
    // The message or its records were not valid (ProtocolError), or could not be taken in.
    // What the observer throws never lands here (ObserverGuard): the worker is not at fault.
    kill(i, FailureCause::protocol, e.what());
  }
}

void Dispatcher::on_protocol_error(int slot, const std::string& what) { kill(static_cast<std::size_t>(slot), FailureCause::protocol, what); }

void Dispatcher::on_send_failed(int slot, const SendFailure& f) {
  Slot& s = slots_[static_cast<std::size_t>(slot)];
  if (f.was_stop) s.stop_sent = false;  // it was not told: its end is not the expected one
  // Closed: it exited or is exiting, and on_gone tells how. Else it does not read its channel:
  // the channel has room for far more than is ever in flight, so it is hung or faulty.
  if (!f.closed) kill(static_cast<std::size_t>(slot), FailureCause::protocol, "not reading its channel: " + f.what);
}

void Dispatcher::on_overdue(int slot, Overdue what) {
  const auto i = static_cast<std::size_t>(slot);
  if (what == Overdue::start) {
    if (slots_[i].hello) return;
    kill(i, FailureCause::start, cfg_.worker_name + " did not start the taskfarm protocol within " +
                                     format_duration(opt_.start_timeout) +
                                     " — is it a worker program (does it call run_worker)? If it is one that starts slowly "
                                     "(work before run_worker), raise the start timeout (--start-timeout, start_timeout)");
  } else if (what == Overdue::serve) {
    // A task timeout bounds what the user's code does while it holds work, also before its
    // first task: a worker stuck after its greeting (a hung import) with every other worker
    // stuck too waited for ever, --timeout or not (outside pass h12b N7). A death without
    // progress: replaced, and the run stops after max_start_failures of them in a row.
    Slot& s = slots_[i];
    if (!s.live || !s.hello || s.held.empty() || s.stop_sent || s.kill_cause || s.chaos_killed) return;
    kill(i, FailureCause::start,
         "greeted but had begun none of the work it was given " + format_duration(opt_.start_timeout + opt_.task_timeout) +
             " after its start (start_timeout + task_timeout: --start-timeout + --timeout): stuck before it serves — in an "
             "import after `import taskfarm`, before run_worker?");
  } else if (what == Overdue::unserved) {
    // It greeted (`import taskfarm` does, first thing) and was handed work, which waits in its
    // channel until it serves — and it has not begun any: it is still importing, or stuck before
    // run_worker. Meanwhile the others have nothing left to do. It ran no task, so stopping it
    // costs nothing and charges nobody: its work goes to them, and its slot stays empty for the
    // rest of the run (a fresh worker would start as slowly). Unbounded before (outside pass h12
    // F13: a worker stuck after its greeting held half the tasks for ever, --timeout or not).
    Slot& s = slots_[i];
    if (!s.live || !s.hello || s.held.empty() || s.stop_sent || s.kill_cause || s.chaos_killed) return;
    if (i < benched_.size()) benched_[i] = true;
    kill(i, FailureCause::start,
         "slot " + std::to_string(slot) + " (pid " + std::to_string(s.pid) + ") had not begun its work " +
             format_duration(kUnservedGrace) +
             " after its start (a slow start after `import taskfarm`, or stuck before run_worker) while the other workers "
             "had nothing left to do: stopped, having run no task; its " + std::to_string(s.held_indices) +
             (s.held_indices == 1 ? " task goes" : " tasks go") + " to them");
  } else if (what == Overdue::hung_up) {
    // Its end of the channel was closed, and it did not exit: a task closed or replaced the
    // worker's descriptors and goes on (hangs, or reads a socket of its own in the channel's
    // place). It can never report again. Killed without a cause of ours, so that its death is
    // judged as its own: the task it was running is charged, or the tasks it ran unheard are
    // isolated (on_gone) — the kill only makes sure it comes.
    Slot& s = slots_[i];
    if (!s.live || s.stop_sent || s.kill_cause || s.hung_up || s.chaos_killed) return;
    s.hung_up = true;
    queue(Command{Command::Kind::kill, slot, false, {}, false, std::nullopt});
  } else {
    kill(i, FailureCause::timeout,
         "ran longer than " + std::to_string(opt_.task_timeout.count()) + " ms; sent SIGTERM, then SIGKILL after " +
             std::to_string(opt_.kill_grace.count()) + " ms",
         /*term_first=*/true);
  }
}

void Dispatcher::kill(std::size_t i, FailureCause cause, std::string message, bool term_first) {
  Slot& s = slots_[i];
  if (!s.live || s.kill_cause) return;
  s.kill_cause = cause;
  s.kill_message = std::move(message);
  queue(Command{Command::Kind::kill, static_cast<int>(i), false, {}, term_first, cause});
}

void Dispatcher::on_time(Clock::time_point now) {
  if (opt_.chaos_rate <= 0 || now < next_chaos_) return;
  std::vector<std::size_t> busy;
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].live && !slots_[i].held.empty() && !slots_[i].kill_cause) busy.push_back(i);
  if (!busy.empty()) {
    const std::size_t i = busy[rng_() % busy.size()];
    slots_[i].chaos_killed = true;
    queue(Command{Command::Kind::kill, static_cast<int>(i), false, {}, false, std::nullopt});
  }
  schedule_chaos(now);
}

void Dispatcher::schedule_chaos(Clock::time_point now) {
  std::exponential_distribution<double> gap(opt_.chaos_rate);
  next_chaos_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng_)));
}

void Dispatcher::on_stop_requested() {
  sched_->stop();
  halting_now_ = true;
}

bool Dispatcher::idle_worker_waiting() const noexcept {
  if (!sched_->drained() || sched_->stopped()) return false;
  for (std::size_t i = 0; i < run_workers_ && i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.live && s.hello && s.held.empty() && !s.stop_sent && !s.retiring && !s.kill_cause && !s.chaos_killed) return true;
  }
  return false;
}

void Dispatcher::on_released(int slot) {
  Slot& s = slots_[static_cast<std::size_t>(slot)];
  const Clock::time_point retry_at = s.retry_at;
  const int failures = s.spawn_failures;
  const bool died = s.died;
  s = Slot{};
  s.retry_at = retry_at;
  s.spawn_failures = failures;
  s.died = died;
}

std::size_t Dispatcher::live_workers() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < run_workers_; ++i)
    if (slots_[i].live && !slots_[i].kill_cause) ++n;
  return n;
}

bool Dispatcher::probe_holds(Clock::time_point now) const noexcept {
  return cfg_.probe_first && !greeted_ && any_live() && now < probe_started_ + cfg_.probe_grace;
}

Clock::time_point Dispatcher::next_wakeup(Clock::time_point now) const noexcept {
  Clock::time_point t = Clock::time_point::max();
  if (probe_holds(now)) t = probe_started_ + cfg_.probe_grace;
  if (opt_.chaos_rate > 0) t = std::min(t, next_chaos_);
  for (std::size_t i = 0; i < run_workers_; ++i)
    if (!slots_[i].live && slots_[i].retry_at > now) t = std::min(t, slots_[i].retry_at);
  return t;
}

std::optional<std::uint64_t> Dispatcher::running(int slot, std::uint64_t chunk, std::uint64_t index, bool& first) const noexcept {
  if (chunk == kNoChunk) return std::nullopt;
  for (const Held& h : slots_[static_cast<std::size_t>(slot)].held)
    if (h.task.id == chunk) {
      if (index < h.committed || index >= h.task.end) return std::nullopt;
      first = index == h.task.begin;
      return index;
    }
  return std::nullopt;
}

}  // namespace taskfarm
