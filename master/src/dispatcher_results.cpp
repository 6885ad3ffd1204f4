// The Dispatcher's side of results: a Done's pieces are checked against what the worker holds
// (anything else is a protocol failure), their records decoded and delivered — in index order
// for an ordered job, bounded in bytes — and what was delivered recorded, so that a run that
// ends early names every index it did not deliver. Part of Dispatcher (dispatcher.hpp).
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <typeinfo>

#include "dispatcher.hpp"
#include "taskfarm/detail/carry.hpp"

namespace taskfarm {
namespace {

constexpr std::size_t kMaxPendingBytes = 32u << 20;  // ordered delivery: results held for order
constexpr std::size_t kKeptNotCopied = 64u << 10;     // ... larger ones from a memfd: kept, not copied

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

void Dispatcher::on_done(std::size_t i, const proto::Done& d, PieceRecords& records, Clock::time_point now) {
  if (!slots_[i].hello || d.job_id != job_id_)
    throw proto::ProtocolError("Done for job " + std::to_string(d.job_id) + ", expected " + std::to_string(job_id_));
  slots_[i].fed = false;  // it reports: top_up may give it more
  for (const auto& c : d.chunks) commit(i, c, records, now);
}

void Dispatcher::on_task_error(std::size_t i, const proto::TaskError& e) {
  if (e.job_id != job_id_) throw proto::ProtocolError("TaskError for another job");
  Held* h = find_held(slots_[i], e.chunk_id);
  if (h == nullptr || e.index < h->committed || e.index >= h->task.end)
    throw proto::ProtocolError("TaskError for index " + std::to_string(e.index) + " outside its chunk");
  FailureRecord f;
  f.cause = e.out_of_memory ? FailureCause::memory : FailureCause::exception;
  f.index = e.index;
  f.exception_type = e.type;
  f.message = e.out_of_memory && opt_.memory_limit ? e.what + " (worker memory limit " + format_bytes(opt_.memory_limit) + ")" : e.what;
  if (e.exit_code != 0 || e.signal != 0) {  // the task's own process (a command per task) failed
    f.cause = e.out_of_memory ? FailureCause::memory : e.signal != 0 ? FailureCause::signal : FailureCause::exit;
    f.task_process = true;
    f.runtime = std::chrono::nanoseconds(e.runtime_ns);
    f.exit_code = e.exit_code;
    f.signal = e.signal;
    f.stderr_tail = e.stderr_tail;
  }
  h->failed.try_emplace(e.index, std::move(f));  // the first cause (the kernel's) wins over a later one (its record)
}

Dispatcher::Held* Dispatcher::find_held(Slot& s, std::uint64_t chunk_id) noexcept {
  for (auto& h : s.held)
    if (h.task.id == chunk_id) return &h;
  return nullptr;
}

Clock::time_point Dispatcher::began(const Slot& s, const Held* h, Clock::time_point now) noexcept {
  Clock::time_point t = s.last_end;
  if (h != nullptr) t = std::max(t, h->assigned_at);
  return std::min(t, now);
}

void Dispatcher::commit(std::size_t i, const proto::ChunkDone& c, PieceRecords& records, Clock::time_point now) {
  Slot& s = slots_[i];
  Held* h = find_held(s, c.chunk_id);
  // Only a chunk with a budget may come back unfinished, and then possibly with nothing new.
  if (h == nullptr || c.upto > h->task.end || c.upto < h->committed || (c.upto == h->committed && !c.returned) ||
      (c.returned && (h->task.budget_ns == 0 || c.upto == h->task.begin || c.upto == h->task.end)))
    throw proto::ProtocolError("Done for chunk " + std::to_string(c.chunk_id) + " up to " + std::to_string(c.upto) + " that it does not hold");
  const std::uint64_t begin = h->committed, end = c.upto;
  if (c.arena_len != 0 || c.carried) read_records(i, begin, end, c, *h, records);
  else if (end > begin && (job_->results == ResultMode::blobs || job_->capture_stdout)) throw proto::ProtocolError("Done without results for a job that wants them");
  failed_here_.clear();  // stays without allocation on the usual path (no failure)
  std::uint64_t ok_from = begin;
  for (auto it = h->failed.lower_bound(begin); it != h->failed.end() && it->first < end; ++it) {
    failed_here_.push_back(it->first);
    delivered_.insert(ok_from, it->first);
    ok_from = it->first + 1;
    task_failed(i, it->second, h->task);
  }
  delivered_.insert(ok_from, end);
  report_.succeeded += (end - begin) - failed_here_.size();
  sched_->measured(end - begin, c.elapsed_ns);
  h->committed = end;
  s.held_indices -= end - begin;
  if (end > begin) {
    deaths_without_progress_ = 0;
    // Every committed piece is reported, so a joblog knows about it even if the worker dies
    // before the rest of its chunk. It ran for elapsed_ns, ending no later than now (Done
    // messages come in batches), starting no earlier than the chunk was handed out or its
    // previous piece ended.
    const auto elapsed = std::chrono::nanoseconds(c.elapsed_ns);
    TasksDone t{static_cast<int>(i), s.pid, begin, end, h->task.attempt, failed_here_, {}, {}};
    t.start = std::max(now - elapsed, std::max(s.last_end, h->assigned_at));
    t.stop = t.start + elapsed;
    s.last_end = t.stop;
    if (obs_) obs_->on_tasks_done(t);
  }
  if (c.returned && end < h->task.end) {
    // Its budget ran out: the rest was never started, so it goes back uncharged.
    sched_->requeue(end, h->task.end, h->task.attempt);
    if (obs_) obs_->on_chunk_returned(static_cast<int>(i), s.pid, end, h->task.end, h->task.attempt);
    s.assigned -= h->task.end - end;
    s.held_indices -= h->task.end - end;
    if (s.retiring && !s.stop_sent && s.assigned < opt_.max_tasks_per_worker) s.retiring = false;
    h->task.end = end;
  }
  if (end == h->task.end) s.held.erase(s.held.begin() + (h - &s.held.front()));
}

void Dispatcher::read_records(std::size_t i, std::uint64_t begin, std::uint64_t end, const proto::ChunkDone& c, Held& h,
                              PieceRecords& records) {
  // Larger than the arena: the records came in a sealed memfd (docs/design.md §3).
  if (c.carried && c.arena_pos != 0) throw proto::ProtocolError("a carried result with an arena position");
  std::span<const char> rec;
  try {
    rec = records.read(c);
  } catch (const CarryUnmappable& e) {  // this process's limit, not the worker's fault: the indices fail
    for (std::uint64_t idx = begin; idx < end; ++idx) {
      FailureRecord f;
      f.cause = FailureCause::memory;
      f.index = idx;
      f.exception_type = "taskfarm::CarryUnmappable";
      f.message = e.what();
      h.failed.try_emplace(idx, std::move(f));
    }
    return;
  }
  decode_records(i, begin, end, h, rec, &records);
  records.consumed(c);
}

void Dispatcher::decode_records(std::size_t i, std::uint64_t begin, std::uint64_t end, Held& h, std::span<const char> rec,
                                const PieceRecords* records) {
  const int file = records != nullptr ? records->file() : -1;
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
    if (file >= 0) {  // (a large text can then be kept as a range of the memfd, not copied)
      r.text_fd = file;
      r.text_offset = static_cast<std::uint64_t>(r.text.data() - all.data());
    }
    if (h.failed.count(idx) == 0) deliver(i, r, h, records);
  }
}

void Dispatcher::deliver(std::size_t i, const IndexResult& r, Held& h, const PieceRecords* records) {
  if (!obs_) return;
  try {
    if (!job_->ordered) return obs_->on_result(r);
    Pending p;
    p.attempt = h.task.attempt;
    p.slot = static_cast<int>(i);
    // A large result that came in a memfd waits for its turn in that memfd, its mapping kept:
    // copied, four tasks of 200 MB with -k had put 966 MB into the master's memory (h14 F1).
    if (r.value.size() + r.text.size() > kKeptNotCopied && r.text_fd >= 0 && records != nullptr)
      p.kept = records->keep();
    if (p.kept) {
      p.kept_value = r.value;
      p.kept_text = r.text;
      p.text_fd = r.text_fd;
      p.text_offset = r.text_offset;
    } else {
      p.value.assign(r.value.data(), r.value.size());
      p.text.assign(r.text.data(), r.text.size());
    }
    pending_.emplace(r.index, std::move(p));
  } catch (const std::exception& e) {
    h.failed.try_emplace(r.index, delivery_failure(r.index, e));  // commit() retries or fails it
    return;
  }
  pending_bytes_ += r.value.size() + r.text.size();
  advance_frontier();
}

// Hands a result held for order to the observer; if that throws, the index (counted succeeded
// at its commit) fails: requeued when `may_retry` and it has attempts left (returns false: the
// frontier waits for it), else finally.
bool Dispatcher::hand_over(std::uint64_t index, const Pending& p, bool may_retry) {
  try {
    if (p.kept) obs_->on_result(IndexResult{index, p.kept_value, p.kept_text, p.text_fd, p.text_offset});
    else obs_->on_result(IndexResult{index, p.value, p.text});
    return true;
  } catch (const std::exception& e) {
    FailureRecord f = delivery_failure(index, e);
    f.attempt = p.attempt;
    f.slot = p.slot;
    f.chunk_begin = index;
    f.chunk_end = index + 1;
    f.final = !may_retry || !sched_->may_retry(p.attempt);
    --report_.succeeded;
    delivered_.erase(index);
    if (!f.final) {
      ++report_.retries;
      sched_->requeue(index, index + 1, p.attempt + 1);
    } else {
      ++final_failures_;
    }
    const bool final = f.final;
    obs_->on_failure(f);
    if (final) {
      report_.failures.push_back(std::move(f));
      halt_if_due();
    }
    return final;
  }
}

void Dispatcher::advance_frontier() {
  for (;;) {
    if (auto it = pending_.find(frontier_); it != pending_.end()) {
      pending_bytes_ -= it->second.size();
      const bool passed = hand_over(frontier_, it->second, true);
      pending_.erase(it);
      if (!passed) break;  // requeued: the frontier waits for its next attempt
    } else if (skipped_.erase(frontier_) == 0) {
      break;
    }
    ++frontier_;
    // Jump over the gaps between ranges (a resumed run computes only some indices).
    for (const auto& [b, e] : ranges_)
      if (frontier_ < e) {
        frontier_ = std::max(frontier_, b);
        break;
      }
  }
  sched_->set_frontier(frontier_);
  // Results held for order are bounded in bytes too, not only in indices: tasks that print a lot
  // behind a slow one would otherwise fill the master's memory (window × output per task).
  sched_->hold_ahead(pending_bytes_ > kMaxPendingBytes);
}

RunReport Dispatcher::end_run() {
  // An ordered run that ended early holds results back behind indices that will never come:
  // they go out now, in index order (the gaps are in report.unfinished), so every index the
  // run counts as succeeded has reached the observer (as a joblog's ok rows say it has).
  for (const auto& [idx, p] : pending_) hand_over(idx, p, false);
  pending_.clear();
  pending_bytes_ = 0;
  const std::vector<std::uint64_t> failed = report_.failed_indices();
  if (report_.succeeded + failed.size() < report_.tasks) report_.unfinished = delivered_.missing(ranges_, failed);
  delivered_.clear();
  obs_ = nullptr;
  job_ = nullptr;
  return std::move(report_);
}

}  // namespace taskfarm
