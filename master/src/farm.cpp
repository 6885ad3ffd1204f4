// The engine's event loop: one epoll over every worker's pidfd, channel and stderr pipe, plus
// an eventfd for stop requests. Every wait has a deadline; nothing here blocks on state a
// worker could leave behind (see docs/design.md).
#include "taskfarm/farm.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <typeinfo>

#include "descendants.hpp"
#include "farm_impl.hpp"
#include "taskfarm/detail/carry.hpp"
#include "proc_info.hpp"
#include "taskfarm/detail/slot.hpp"
#include "taskfarm/detail/worker_loop.hpp"

namespace taskfarm {
namespace {

constexpr auto kStopGrace = std::chrono::milliseconds(1000);
constexpr std::size_t kMaxPendingBytes = 32u << 20;  // ordered delivery: results held for order

enum Source : std::uint64_t { kPidfd = 0, kChannel = 1, kStderr = 2, kControl = 3 };
std::uint64_t tag(std::size_t slot, Source s) { return (static_cast<std::uint64_t>(slot) << 2) | s; }

}  // namespace

Farm::Impl::Impl() {
  epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) throw_errno("epoll_create1");
  stop_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd) throw_errno("eventfd");
  watch(stop_fd.get(), tag(0, kControl));
}

void Farm::Impl::watch(int fd, std::uint64_t data) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = data;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl add");
}

void Farm::Impl::unwatch(int fd) {
  if (fd >= 0) ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
}

SpawnLimits Farm::Impl::limits() const {
  SpawnLimits l;
  l.memory_limit = opt.memory_limit;
  if (opt.set_thread_env) {
    const std::string per = std::to_string(std::max(1, usable_cpus() / static_cast<int>(n_workers)));
    for (const char* k : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"})
      l.env.emplace_back(k, per);
  }
  return l;
}

std::vector<int> Farm::Impl::master_fds(std::size_t except) const {
  std::vector<int> fds{epoll.get(), stop_fd.get()};
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (i == except || !slots[i].proc) continue;
    const WorkerProcess& p = *slots[i].proc;
    fds.insert(fds.end(), {p.pidfd(), p.channel_fd(), p.stderr_fd()});
  }
  return fds;
}

void Farm::Impl::spawn(std::size_t i) {
  SlotRun& s = slots[i];
  if (!s.seg) s.seg = create_slot(opt.arena_bytes);
  reset_slot(slot_state(s.seg));
  s.held.clear();
  s.held_indices = 0;
  s.hello = s.retiring = s.stop_sent = s.chaos_killed = false;
  s.kill_cause.reset();
  s.kill_message.clear();
  s.job_sent = 0;
  s.assigned = 0;
  s.spawned_at = Clock::now();
  s.last_end = s.spawned_at;
  s.seen_chunk = kNoChunk;  // what reset_slot wrote: progress is counted from the spawn
  s.seen_index = s.seen_done = 0;
  s.seen_started = 0;
  s.seen_since_ns = monotonic_ns();
  s.stall_reported = false;
  if (fork_mode) {
    const ForkKernelFactory* f = factory;
    auto body = [f](Channel ch, ShmSegment seg) {
      detail::RunnerFactory make = [f](const JobInfo&) { return (*f)(); };
      return detail::serve(std::move(ch), std::move(seg), make);
    };
    s.proc.emplace(spawn_forked(std::move(s.seg), spawn_limits, master_fds(i), body));
  } else {
    s.proc.emplace(spawn_program(std::move(s.seg), spawn_limits, program, args));
  }
  watch(s.proc->pidfd(), tag(i, kPidfd));
  watch(s.proc->channel().fd(), tag(i, kChannel));
  watch(s.proc->stderr_fd(), tag(i, kStderr));
  if (obs) obs->on_worker_started(static_cast<int>(i), s.proc->pid());
}

bool Farm::Impl::send(std::size_t i, const proto::Message& m) {
  SlotRun& s = slots[i];
  try {
    // The channel has room for far more than we ever hold in flight; a worker that stops
    // reading for a second is hung (the per-task timeout catches it if set).
    s.proc->channel().send(m, std::chrono::milliseconds(1000));
    return true;
  } catch (const ChannelClosed&) {
    return false;  // it exited or is exiting: its pidfd tells how
  } catch (const std::exception& e) {
    kill_worker(i, FailureCause::protocol, std::string("not reading its channel: ") + e.what());
    return false;
  }
}

void Farm::Impl::top_up(std::size_t i) {
  SlotRun& s = slots[i];
  if (!s.proc || s.proc->reaped() || s.stop_sent || s.kill_cause || s.chaos_killed) return;
  if (s.job_sent != job_id) {
    proto::Job j{job_id, job->kernel, job->extent, job->output_handle, job->input_handle, job->lines_handle,
                 job->results == ResultMode::blobs, job->capture_stdout, opt.task_timeout.count() > 0};
    if (!send(i, j)) return;
    s.job_sent = job_id;
  }
  const std::size_t depth = sched->depth();
  if (s.held.size() * 2 > depth && !s.held.empty()) return;  // hysteresis: fewer, larger messages
  // Never hold more than a fair share of the unfinished work: held chunks are not taken back,
  // so a worker given more than that would finish last while the others idle.
  std::uint64_t unfinished = sched->unassigned();
  for (const auto& o : slots) unfinished += o.held_indices;
  const std::uint64_t share = (unfinished + run_workers - 1) / run_workers;
  proto::Assign a{job_id, {}};
  const Clock::time_point now = Clock::now();
  while (s.held.size() < depth && a.chunks.size() < proto::kMaxBatch && !s.retiring &&
         (s.held_indices == 0 || s.held_indices + sched->chunk_size() <= share)) {
    // A worker recycled after max_tasks_per_worker is never handed more than that.
    const std::uint64_t allowance = opt.max_tasks_per_worker != 0 ? opt.max_tasks_per_worker - s.assigned : ~std::uint64_t{0};
    auto t = sched->next(allowance);
    if (!t) break;
    s.held.push_back(Held{*t, t->begin, {}, now});
    a.chunks.push_back(proto::Chunk{t->id, t->begin, t->end, t->attempt, t->budget_ns});
    s.held_indices += t->size();
    s.assigned += t->size();
    if (obs) obs->on_chunk_started(static_cast<int>(i), s.proc->pid(), t->begin, t->end, t->attempt);
    if (opt.max_tasks_per_worker != 0 && s.assigned >= opt.max_tasks_per_worker) s.retiring = true;
  }
  if (!a.chunks.empty()) send(i, a);
  // A worker stops once its queue is empty. Retiring ones are told when idle; in fork mode,
  // once nothing is left to hand out, each is told at once (with its last chunks, if any), so
  // it exits as soon as it has reported them, while the others finish (a crash after this
  // gets a fresh worker).
  if (!s.stop_sent && ((s.retiring && s.held.empty()) || (fork_mode && sched->drained()))) {
    s.stop_sent = send(i, proto::Stop{});
  }
}

void Farm::Impl::drain_channel(std::size_t i) {
  SlotRun& s = slots[i];
  if (!s.proc || s.kill_cause) return;
  try {
    while (auto m = s.proc->channel().try_receive()) handle(i, *m);
  } catch (const ChannelClosed&) {
    unwatch(s.proc->channel().fd());  // the pidfd reports the exit itself
  } catch (const std::exception& e) {
    kill_worker(i, FailureCause::protocol, e.what());
  }
}

void Farm::Impl::handle(std::size_t i, const proto::Message& m) {
  SlotRun& s = slots[i];
  if (const auto* hello = std::get_if<proto::Hello>(&m)) {
    if (s.hello || hello->pid != s.proc->pid()) throw proto::ProtocolError("unexpected Hello (pid " + std::to_string(hello->pid) + ")");
    s.hello = true;
  } else if (const auto* d = std::get_if<proto::Done>(&m)) {
    // Closed however this ends; the channel checked it comes with a carried entry, its only one.
    UniqueFd carried = s.proc->channel().take_fd();
    if (!s.hello || d->job_id != job_id) throw proto::ProtocolError("Done for job " + std::to_string(d->job_id) + ", expected " + std::to_string(job_id));
    for (const auto& c : d->chunks) commit(i, c, std::move(carried));
  } else if (const auto* e = std::get_if<proto::TaskError>(&m)) {
    if (e->job_id != job_id) throw proto::ProtocolError("TaskError for another job");
    Held* h = find_held(s, e->chunk_id);
    if (h == nullptr || e->index < h->committed || e->index >= h->task.end) throw proto::ProtocolError("TaskError for index " + std::to_string(e->index) + " outside its chunk");
    FailureRecord f;
    f.cause = e->out_of_memory ? FailureCause::memory : FailureCause::exception;
    f.index = e->index;
    f.exception_type = e->type;
    f.message = e->out_of_memory && opt.memory_limit ? e->what + " (worker memory limit " + format_bytes(opt.memory_limit) + ")" : e->what;
    h->failed.try_emplace(e->index, std::move(f));  // the first cause (the kernel's) wins over a later one (its record)
  } else {
    throw proto::ProtocolError(std::string("unexpected ") + std::string(proto::message_name(m)) + " from a worker");
  }
}

Clock::time_point Farm::Impl::began(const SlotRun& s, const Held* h, Clock::time_point now) const {
  Clock::time_point t = s.last_end;
  if (h != nullptr) t = std::max(t, h->assigned_at);
  return std::min(t, now);
}

Held* Farm::Impl::find_held(SlotRun& s, std::uint64_t chunk_id) {
  for (auto& h : s.held)
    if (h.task.id == chunk_id) return &h;
  return nullptr;
}

void Farm::Impl::commit(std::size_t i, const proto::ChunkDone& c, UniqueFd carried) {
  SlotRun& s = slots[i];
  Held* h = find_held(s, c.chunk_id);
  // Only a chunk with a budget may come back unfinished, and then possibly with nothing new.
  if (h == nullptr || c.upto > h->task.end || c.upto < h->committed || (c.upto == h->committed && !c.returned) ||
      (c.returned && (h->task.budget_ns == 0 || c.upto == h->task.begin || c.upto == h->task.end)))
    throw proto::ProtocolError("Done for chunk " + std::to_string(c.chunk_id) + " up to " + std::to_string(c.upto) + " that it does not hold");
  const std::uint64_t begin = h->committed, end = c.upto;
  if (c.arena_len != 0 || c.carried) deliver_records(i, begin, end, c, std::move(carried));
  else if (end > begin && (job->results == ResultMode::blobs || job->capture_stdout)) throw proto::ProtocolError("Done without results for a job that wants them");
  std::vector<std::uint64_t> failed_here;  // stays empty (no allocation) on the usual path
  std::uint64_t ok_from = begin;
  for (auto it = h->failed.lower_bound(begin); it != h->failed.end() && it->first < end; ++it) {
    failed_here.push_back(it->first);
    delivered.insert(ok_from, it->first);
    ok_from = it->first + 1;
    task_failed(i, it->second, h->task);
  }
  delivered.insert(ok_from, end);
  report.succeeded += (end - begin) - failed_here.size();
  sched->measured(end - begin, c.elapsed_ns);
  h->committed = end;
  s.held_indices -= end - begin;
  if (end > begin) deaths_without_progress = 0;
  // Every committed piece is reported, so a joblog knows about it even if the worker dies
  // before the rest of its chunk. It ran for elapsed_ns, ending no later than now (Done messages
  // come in batches), starting no earlier than the chunk was handed out or its previous piece ended.
  if (end > begin) {
    const Clock::time_point now = Clock::now();
    TasksDone t{static_cast<int>(i), s.proc->pid(), begin, end, h->task.attempt, failed_here, {}, {}};
    t.start = std::max(now - std::chrono::nanoseconds(c.elapsed_ns), std::max(s.last_end, h->assigned_at));
    t.stop = t.start + std::chrono::nanoseconds(c.elapsed_ns);
    s.last_end = t.stop;
    if (obs) obs->on_tasks_done(t);
  }
  if (c.returned && end < h->task.end) {
    // Its budget ran out: the rest was never started, so it goes back uncharged.
    sched->requeue(end, h->task.end, h->task.attempt);
    if (obs) obs->on_chunk_returned(static_cast<int>(i), s.proc->pid(), end, h->task.end, h->task.attempt);
    s.assigned -= h->task.end - end;
    s.held_indices -= h->task.end - end;
    if (s.retiring && !s.stop_sent && s.assigned < opt.max_tasks_per_worker) s.retiring = false;
    h->task.end = end;
  }
  if (end == h->task.end) s.held.erase(s.held.begin() + (h - &s.held.front()));
}

void Farm::Impl::deliver_records(std::size_t i, std::uint64_t begin, std::uint64_t end, const proto::ChunkDone& c, UniqueFd carried) {
  SlotRun& s = slots[i];
  Held* h = find_held(s, c.chunk_id);
  if (c.carried) {
    // Larger than the arena: the records came in a sealed memfd (docs/design.md §3).
    if (c.arena_pos != 0) throw proto::ProtocolError("a carried result with an arena position");
    std::optional<CarriedRecords> rec;
    try {
      rec.emplace(std::move(carried), c.arena_len);
    } catch (const CarryUnmappable& e) {  // this process's limit, not the worker's fault: the indices fail
      for (std::uint64_t idx = begin; idx < end; ++idx) {
        FailureRecord f;
        f.cause = FailureCause::memory;
        f.index = idx;
        f.exception_type = "taskfarm::CarryUnmappable";
        f.message = e.what();
        h->failed.try_emplace(idx, std::move(f));
      }
      return;
    }
    decode_records(i, begin, end, *h, rec->bytes());
    return;
  }
  SlotState& st = slot_state(s.proc->slot());
  ArenaReader reader(st, static_cast<const char*>(s.proc->slot().data()) + st.arena_offset);
  decode_records(i, begin, end, *h, reader.read(c.arena_pos, c.arena_len));
  reader.release(c.arena_pos, c.arena_len);
  if (st.arena_waiting.load(std::memory_order_seq_cst) != 0) send(i, proto::Wake{});
}

void Farm::Impl::decode_records(std::size_t i, std::uint64_t begin, std::uint64_t end, Held& h, std::span<const char> rec) {
  auto take = [&rec](std::span<const char>& out) {
    std::uint32_t n = 0;
    if (rec.size() < sizeof n) throw proto::ProtocolError("truncated result record");
    std::memcpy(&n, rec.data(), sizeof n);
    if (rec.size() - sizeof n < n) throw proto::ProtocolError("result record longer than its arena entry");
    out = rec.subspan(sizeof n, n);
    rec = rec.subspan(sizeof n + n);
  };
  // Checked whole before anything is delivered: a malformed piece delivers nothing (its
  // indices run again elsewhere), so no index reaches the observer twice.
  const std::span<const char> all = rec;
  std::span<const char> value, text;
  for (std::uint64_t idx = begin; idx < end; ++idx) {
    take(value);
    take(text);
  }
  if (!rec.empty()) throw proto::ProtocolError("trailing bytes in a result record");
  rec = all;
  for (std::uint64_t idx = begin; idx < end; ++idx) {
    IndexResult r{idx, {}, {}};
    take(r.value);
    take(r.text);
    if (h.failed.count(idx) == 0) deliver(i, r, h);
  }
}

void Farm::Impl::settle_unfinished() {
  // An ordered run that ended early holds results back behind indices that will never come:
  // they go out now, in index order (the gaps are in report.unfinished), so every index the
  // run counts as succeeded has reached the observer (as a joblog's ok rows say it has).
  for (const auto& [idx, p] : pending) hand_over(idx, p, false);
  pending.clear();
  pending_bytes = 0;
  const std::vector<std::uint64_t> failed = report.failed_indices();
  if (report.succeeded + failed.size() < report.tasks) report.unfinished = delivered.missing(ranges, failed);
  delivered.clear();
}

namespace {

// The observer could not take an index's result: decoding it threw, memory ran out, or the
// user's sink threw. That index fails with the cause; it never passes for delivered.
FailureRecord delivery_failure(std::uint64_t index, const std::exception& e) {
  FailureRecord f;
  f.cause = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ? FailureCause::memory : FailureCause::exception;
  f.index = index;
  int status = 0;
  char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
  f.exception_type = status == 0 && name != nullptr ? name : typeid(e).name();
  std::free(name);
  f.message = std::string("its result could not be handed over in the master: ") + e.what();
  return f;
}

}  // namespace

void Farm::Impl::deliver(std::size_t i, const IndexResult& r, Held& h) {
  if (!obs) return;
  try {
    if (!job->ordered) return obs->on_result(r);
    pending.emplace(r.index, PendingResult{std::string(r.value.data(), r.value.size()), std::string(r.text.data(), r.text.size()),
                                           h.task.attempt, static_cast<int>(i)});
  } catch (const std::exception& e) {
    h.failed.try_emplace(r.index, delivery_failure(r.index, e));  // commit() retries or fails it
    return;
  }
  pending_bytes += r.value.size() + r.text.size();
  advance_frontier();
}

bool Farm::Impl::hand_over(std::uint64_t index, const PendingResult& p, bool may_retry) {
  try {
    obs->on_result(IndexResult{index, p.value, p.text});
    return true;
  } catch (const std::exception& e) {
    FailureRecord f = delivery_failure(index, e);
    f.attempt = p.attempt;
    f.slot = p.slot;
    f.chunk_begin = index;
    f.chunk_end = index + 1;
    f.final = !may_retry || !sched->may_retry(p.attempt);
    --report.succeeded;
    delivered.erase(index);
    if (!f.final) {
      ++report.retries;
      sched->requeue(index, index + 1, p.attempt + 1);
    } else {
      ++final_failures;
    }
    const bool final = f.final;
    obs->on_failure(f);
    if (final) {
      report.failures.push_back(std::move(f));
      halt_if_due();
    }
    return final;
  }
}

// The halt policy after a final failure (as task_failed applies it).
void Farm::Impl::halt_if_due() {
  if (opt.halt == Halt::never || final_failures < opt.halt_after) return;
  report.halted = true;
  sched->stop();
  if (opt.halt == Halt::now) halting_now = true;
}

void Farm::Impl::advance_frontier() {
  for (;;) {
    if (auto it = pending.find(frontier); it != pending.end()) {
      pending_bytes -= it->second.value.size() + it->second.text.size();
      const bool passed = hand_over(frontier, it->second, true);
      pending.erase(it);
      if (!passed) break;  // requeued: the frontier waits for its next attempt
    } else if (skipped.erase(frontier) == 0) {
      break;
    }
    ++frontier;
    // Jump over the gaps between ranges (a resumed run computes only some indices).
    for (const auto& [b, e] : ranges)
      if (frontier < e) {
        frontier = std::max(frontier, b);
        break;
      }
  }
  sched->set_frontier(frontier);
  // Results held for order are bounded in bytes too, not only in indices: tasks that print a lot
  // behind a slow one would otherwise fill the master's memory (window × output per task).
  sched->hold_ahead(pending_bytes > kMaxPendingBytes);
}

int Farm::Impl::wait_ms(Clock::time_point now) const {
  auto wait = std::chrono::milliseconds(100);
  if (opt.task_timeout.count() > 0) wait = std::min(wait, std::max(std::chrono::milliseconds(1), opt.task_timeout / 10));
  for (const auto& s : slots) {
    if (s.kill_deadline != Clock::time_point{})
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(s.kill_deadline - now) + std::chrono::milliseconds(1));
    if (s.proc && !s.hello && opt.start_timeout.count() > 0)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(s.spawned_at + opt.start_timeout - now) + std::chrono::milliseconds(1));
  }
  if (opt.chaos_rate > 0) wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(next_chaos - now) + std::chrono::milliseconds(1));
  if (obs != nullptr && opt.tick_interval.count() > 0)
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now) + std::chrono::milliseconds(1));
  for (std::size_t i = 0; i < run_workers; ++i)
    if (!slots[i].proc && slots[i].retry_at > now)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(slots[i].retry_at - now) + std::chrono::milliseconds(1));
  return static_cast<int>(std::max<std::int64_t>(0, wait.count()));
}

bool Farm::Impl::busy() const {
  for (const auto& s : slots)
    if (!s.held.empty()) return true;
  return false;
}

void Farm::Impl::poll_once(int timeout_ms) {
  epoll_event evs[64];
  const int n = ::epoll_wait(epoll.get(), evs, 64, timeout_ms);
  if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
  std::vector<std::size_t> exited;
  for (int k = 0; k < n; ++k) {
    const std::size_t i = evs[k].data.u64 >> 2;
    switch (static_cast<Source>(evs[k].data.u64 & 3)) {
      case kControl: {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(stop_fd.get(), &v, sizeof v);
        break;
      }
      case kChannel: drain_channel(i); break;
      case kStderr:
        if (slots[i].proc) slots[i].proc->drain_stderr(opt.forward_stderr);
        break;
      case kPidfd: exited.push_back(i); break;
    }
  }
  for (std::size_t i : exited) {
    if (!slots[i].proc) continue;
    if (auto st = slots[i].proc->try_reap()) on_exit(i, *st);
  }
}

RunReport Farm::Impl::run(const JobSpec& j, FarmObserver* o, const ForkKernelFactory* f) {
  const auto t0 = Clock::now();
  run_start = t0;
  next_tick = t0 + opt.tick_interval;
  job = &j;
  obs = o;
  factory = f;
  report = RunReport{};
  final_failures = 0;
  deaths_without_progress = 0;
  spawn_failures_in_a_row = 0;
  for (auto& sl : slots) sl.retry_at = {}, sl.spawn_failures = 0;
  halting_now = false;
  frontier = 0;
  pending.clear();
  pending_bytes = 0;
  skipped.clear();
  delivered.clear();
  ++job_id;

  SchedulerConfig sc;
  sc.ranges = j.ranges;
  std::uint64_t n = 1;
  for (auto d : j.extent) n *= d;
  if (j.extent.empty()) n = 0;
  if (sc.ranges.empty()) sc.ranges.emplace_back(0, n);
  // Never more workers than tasks: the others would never get work (-j 100000 --tasks 3).
  std::uint64_t tasks = 0;
  for (auto [b, e] : sc.ranges) tasks += e > b ? e - b : 0;
  run_workers = static_cast<std::size_t>(std::clamp<std::uint64_t>(tasks, 1, n_workers));
  if (slots.size() < run_workers) slots.resize(run_workers);  // slots are made as runs need them
  report.workers = run_workers;
  sc.chunk = opt.chunk;
  sc.workers = run_workers;
  sc.retries = opt.retries;
  sc.ordered = j.ordered;
  ranges = sc.ranges;
  frontier = ranges.front().first;
  sched.emplace(std::move(sc));
  report.tasks = sched->total();
  // Seeded per run, so a fixed seed does not replay the same (maybe empty) schedule each run.
  if (opt.chaos_rate > 0) {
    rng.seed((opt.chaos_seed != 0 ? opt.chaos_seed : std::random_device{}()) + job_id);
    schedule_chaos(Clock::now());
  }

  try {
    loop();
  } catch (...) {
    stop_all(true);
    throw;
  }
  if (fork_mode || halting_now || stop_requested) stop_all(halting_now || stop_requested);
  settle_unfinished();
  report.strays_killed = kill_strays();
  report.interrupted = stop_requested.exchange(false);
  report.wall = Clock::now() - t0;
  return std::move(report);
}

void Farm::Impl::loop() {
  if (sched->total() == 0) return;
  // Each new worker gets its first chunks before the next one is started, so it works while
  // the others are forked.
  for (std::size_t i = 0; i < run_workers && !halting_now; ++i) {
    if (!slots[i].proc) start_or_fail(i);
    if (slots[i].proc) top_up(i);
  }
  while (!halting_now) {
    if (stop_requested) {
      sched->stop();
      halting_now = true;
      break;
    }
    for (std::size_t i = 0; i < run_workers; ++i) {
      if (halting_now) break;
      if (!slots[i].proc && !sched->stopped() && (!sched->drained() || busy())) start_or_fail(i);
      else if (slots[i].proc) top_up(i);
    }
    if (!busy() && (sched->drained() || sched->stopped())) break;
    const auto now = Clock::now();
    check_deadlines(now);
    if (opt.tick_interval.count() > 0 && now >= next_tick) tick(now);  // on time, events or not
    poll_once(wait_ms(now));
  }
}

void Farm::Impl::send_stops() {
  for (auto& s : slots) {
    if (!s.proc || s.stop_sent) continue;
    if (!s.hello || s.proc->reaped()) {
      s.proc->kill_group(SIGKILL);
      continue;
    }
    try {
      s.proc->channel().try_send(proto::Stop{});
    } catch (...) {
      s.proc->kill_group(SIGKILL);
    }
    s.stop_sent = true;
  }
}

void Farm::Impl::stop_all(bool now) {
  if (now) {
    for (auto& s : slots)
      if (s.proc) s.proc->kill_group(SIGKILL);
  } else {
    send_stops();
  }
  const auto deadline = Clock::now() + kStopGrace;
  bool termed = false;
  for (;;) {
    bool left = false;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      SlotRun& s = slots[i];
      if (!s.proc) continue;
      const bool gone = s.proc->try_reap() || s.proc->reaped();
      s.proc->drain_stderr(opt.forward_stderr, /*last=*/gone);
      if (gone) {
        release_slot(i);
      } else {
        left = true;
      }
    }
    if (!left) return;
    const auto now_t = Clock::now();
    if (now_t >= deadline) {
      for (std::size_t i = 0; i < slots.size(); ++i)
        if (slots[i].proc) {
          slots[i].proc->kill_and_reap();
          release_slot(i);
        }
      return;
    }
    if (!termed && now_t >= deadline - kStopGrace / 2) {
      for (auto& s : slots)
        if (s.proc) s.proc->kill_group(SIGTERM);
      termed = true;
    }
    wait_for_exits(10);
  }
}

void Farm::Impl::wait_for_exits(int timeout_ms) {
  std::vector<pollfd> fds;
  for (auto& s : slots)
    if (s.proc && !s.proc->reaped()) fds.push_back(pollfd{s.proc->pidfd(), POLLIN, 0});
  if (!fds.empty()) ::poll(fds.data(), fds.size(), timeout_ms);
}

std::vector<pid_t> Farm::Impl::worker_pids() const {
  std::vector<pid_t> pids;
  for (const auto& s : slots)
    if (s.proc && !s.proc->reaped()) pids.push_back(s.proc->pid());
  return pids;
}

std::uint64_t Farm::Impl::kill_strays() {
  if (!opt.reap_descendants) return 0;
  return descendants::kill_and_reap(worker_pids(), kStopGrace);
}

void Farm::Impl::release_slot(std::size_t i) {
  SlotRun& s = slots[i];
  unwatch(s.proc->pidfd());
  unwatch(s.proc->channel().fd());
  unwatch(s.proc->stderr_fd());
  s.seg = s.proc->take_slot();
  s.proc.reset();
  s.held.clear();
  s.held_indices = 0;
}


Farm::Farm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Farm::Farm(Farm&&) noexcept = default;
Farm& Farm::operator=(Farm&&) noexcept = default;
Farm::~Farm() {
  if (impl_) close();
}

Farm Farm::program(FarmOptions options, std::string program, std::vector<std::string> args) {
  sweep_dead_segments();  // what an earlier master killed with SIGKILL left behind
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->program = resolve_program(program);
  impl->args = std::move(args);
  if (impl->opt.reap_descendants) descendants::become_subreaper();
  impl->n_workers = static_cast<std::size_t>(resolve_workers(impl->opt.workers));
  impl->spawn_limits = impl->limits();  // reads the affinity mask and cgroup files: once
  return Farm(std::move(impl));
}

Farm Farm::fork(FarmOptions options) {
  sweep_dead_segments();
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->fork_mode = true;
  if (impl->opt.reap_descendants) descendants::become_subreaper();
  impl->n_workers = static_cast<std::size_t>(resolve_workers(impl->opt.workers));
  impl->spawn_limits = impl->limits();  // reads the affinity mask and cgroup files: once
  return Farm(std::move(impl));
}

RunReport Farm::run(const JobSpec& job, FarmObserver* observer, const ForkKernelFactory& factory) {
  if (impl_->fork_mode && !factory) throw Error("Farm::run in fork mode needs a kernel factory");
  const std::string ro = AnySharedArray::read_only_handle(job.input_handle);
  if (ro != job.input_handle) {  // every worker attaches the input read-only, whatever it was given
    JobSpec read_only = job;
    read_only.input_handle = ro;
    return impl_->run(read_only, observer, &factory);
  }
  if (impl_->fork_mode) proc::require_single_thread(impl_->opt.fork_with_threads, "fork mode");
  return impl_->run(job, observer, &factory);
}

void Farm::request_stop() noexcept {
  impl_->stop_requested.store(true);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(impl_->stop_fd.get(), &one, sizeof one);
}

void Farm::close() {
  impl_->stop_all(false);
  impl_->kill_strays();
}

std::size_t Farm::worker_count() const noexcept { return impl_->n_workers; }
const FarmOptions& Farm::options() const noexcept { return impl_->opt; }

}  // namespace taskfarm
