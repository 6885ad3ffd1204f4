#include "taskfarm/pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <atomic>

#include "call_engine.hpp"
#include "spawn.hpp"
#include "pool_threads.hpp"
#include "thread_calls.hpp"
#include "task_mark.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm {

std::uint64_t Extent::size() const noexcept {
  if (dims.empty()) return 0;
  std::uint64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

namespace detail {
namespace {
std::uintptr_t page_size() noexcept {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  return page;
}
}  // namespace

NotInherited::NotInherited(void* data, std::size_t bytes) noexcept {
  const std::uintptr_t page = page_size();
  const auto lo = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
  const auto hi = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(page - 1);
  if (data == nullptr || hi <= lo) return;
  if (::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTFORK) != 0) {
    ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DOFORK);  // it may have failed part-way
    return;
  }
  begin_ = reinterpret_cast<void*>(lo);
  bytes_ = hi - lo;
}

NotInherited::~NotInherited() {
  if (bytes_ != 0) ::madvise(begin_, bytes_, MADV_DOFORK);
}

BlockMarks::BlockMarks(std::uint64_t blocks) {
  if (blocks == 0) return;
  if (blocks > SIZE_MAX / sizeof(std::uint64_t))
    throw Error("map_reduce: " + std::to_string(blocks) + " blocks");
  bytes_ = static_cast<std::size_t>(blocks) * sizeof(std::uint64_t);
  void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw_errno("map_reduce: cannot map its notes of " + std::to_string(blocks) + " blocks");
  words_ = static_cast<std::uint64_t*>(p);
}

BlockMarks::~BlockMarks() {
  if (words_ != nullptr) ::munmap(words_, bytes_);
}

std::optional<std::uint64_t> BlockMarks::threw_at(std::uint64_t b) const noexcept {
  if (words_ == nullptr || b >= bytes_ / sizeof(std::uint64_t) || words_[b] == 0)
    return std::nullopt;
  return words_[b] - 1;
}

void map_for_writing(const void* data, std::size_t bytes) noexcept {
  if (bytes == 0) return;
  const auto* p = static_cast<const volatile char*>(data);
  static_cast<void>(p[0]);  // the first page, then the first byte of every page after it
  const std::uintptr_t page = page_size();
  for (std::size_t off = page - reinterpret_cast<std::uintptr_t>(data) % page; off < bytes; off += page)
    static_cast<void>(p[off]);
}

}  // namespace detail

namespace {
// One line per failure (only those of a task, with `tasks_only`), at most 20.
std::string describe_each(const std::vector<FailureRecord>& failures, bool tasks_only = false) {
  std::string s;
  std::size_t shown = 0, listed = 0;
  for (const auto& f : failures) {
    if (tasks_only && !f.index) continue;
    ++listed;
    if (shown < 20) s += "\n  " + f.describe(), ++shown;
  }
  if (listed > shown) s += "\n  ... and " + std::to_string(listed - shown) + " more";
  return s;
}

// "37 of 2000 tasks succeeded, 1 failed, 1962 not run: <why>", then the failures, one a line.
std::string summarise(const RunReport& r) {
  const std::uint64_t failed = r.failed_indices().size(), unfinished = r.unfinished_count();
  std::string s = std::to_string(r.succeeded) + " of " + std::to_string(r.tasks) + " tasks succeeded";
  if (failed != 0) s += ", " + std::to_string(failed) + " failed";
  if (unfinished != 0) s += ", " + std::to_string(unfinished) + " not run";
  // The farm's error already describes the worker that ended the run: list the tasks' failures.
  if (!r.farm_error.empty()) s += "; the farm stopped the run: " + r.farm_error;
  else if (unfinished != 0 && r.halted) s += ": the run halted (PoolOptions::halt)";
  else if (unfinished != 0 && r.interrupted) s += ": the run was interrupted";
  else if (unfinished != 0) s += ": the run ended early";
  for (const std::string& path : r.restored_headers) s += "; " + restored_header_message(path);
  return s + describe_each(r.failures, true);
}
}  // namespace

TaskFailed::TaskFailed(std::vector<FailureRecord> failures)
    : Error(failures.empty()       ? std::string("no task failed")
            : failures.size() == 1 ? "1 task failed: " + failures[0].describe()
                                   : std::to_string(failures.size()) + " tasks failed, the first: " + failures[0].describe() +
                                         describe_each(failures)),
      failures_(std::move(failures)) {}

TaskFailed TaskFailed::of_call(const FailureRecord& f) {
  // Its index is the call's number, its slot none (a call is not a slot's task): named as a call.
  std::string what = "submitted call " + (f.index ? std::to_string(*f.index) : std::string("?")) + " failed (attempt " +
                     std::to_string(f.attempt) + (f.pid > 0 ? ", pid " + std::to_string(f.pid) : std::string()) +
                     "): " + f.describe_cause();
  return TaskFailed(what, {f});
}

TaskFailed::TaskFailed(const RunReport& report)
    : Error("taskfarm: " + summarise(report)), failures_(report.failures), succeeded_(report.succeeded), unfinished_(report.unfinished_count()) {}

namespace detail {
std::vector<std::uint64_t> undelivered_indices(const RunReport& report) {
  std::vector<std::uint64_t> v = report.failed_indices();
  if (report.unfinished.empty()) return v;
  const std::size_t failed = v.size();
  for (auto [b, e] : report.unfinished)
    for (std::uint64_t i = b; i < e; ++i) v.push_back(i);
  std::inplace_merge(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(failed), v.end());
  return v;
}
}  // namespace detail

struct Pool::State {
  std::unique_ptr<detail::Calls> calls;  // runs submitted calls; made at the first submit
  std::optional<Farm> farm;
  ShmSegment buffer;  // results of trivially copyable types land here, reused across calls
  std::size_t counted = 0;  // submitted calls finished as of the last wait_any
  pid_t owner = ::getpid();  // workers, segments and submitted calls belong to this process
  std::atomic<bool> busy{false};  // a call is running (set by Busy)
};

namespace detail {
namespace {
thread_local const void* t_task_of = nullptr;
}  // namespace
const void* task_of() noexcept { return t_task_of; }
void set_task_of(const void* pool) noexcept { t_task_of = pool; }
}  // namespace detail

namespace {
using detail::TaskOf;

std::string closed_message(const char* call) {
  return std::string("taskfarm::") + call +
         ": its Pool was closed (or destroyed) before the call finished, which stopped the call; keep "
         "the Pool alive until its futures are collected";
}
}  // namespace

Pool::Pool(PoolOptions options) : options_(std::move(options)), state_(std::make_shared<State>()) {
  if (options_.backend == Backend::fork) {
    state_->farm.emplace(Farm::fork(options_));
  } else {
    detail::refuse_for_threads(options_);
    resolve_workers(options_.workers);  // validate now, like the fork backend does
  }
}

Pool::Pool(Pool&&) noexcept = default;

Pool& Pool::operator=(Pool&& other) noexcept {
  if (this == &other) return *this;
  release();  // what this Pool owned is closed first, as if it went out of scope
  options_ = std::move(other.options_);
  report_ = std::move(other.report_);
  state_ = std::move(other.state_);
  return *this;
}

Pool::~Pool() { release(); }

void Pool::release() noexcept {
  if (!state_) return;
  if (state_->owner != ::getpid()) {
    // A forked copy of the process: the workers, calls and segments are the creator's to
    // stop and remove. Leave them be (this copy of the memory dies with the process).
    new std::shared_ptr<State>(std::move(state_));  // NOLINT: deliberately never freed
    return;
  }
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm: closing a Pool: %s\n", e.what());
  }
  state_.reset();
}

void Pool::check_usable(const char* call) const {
  const std::string what = std::string("taskfarm::Pool::") + call;
  if (!state_) throw Error(what + ": this Pool was used after it was moved from (it owns nothing now; use the Pool it was moved into)");
  if (detail::task_of() == state_.get())
    throw Error(what + " called from inside a task of the same Pool (" +
                (options_.backend == Backend::threads ? "on one of its task threads" : "in a worker process") +
                "): make a new Pool inside the task, or call the serial loop");
  if (state_->owner != ::getpid())
    throw Error(what + " called in process " + std::to_string(::getpid()) + ", a fork of process " +
                std::to_string(state_->owner) + " that made this Pool and owns its workers: make a new Pool in this process");
  if (state_->busy.load())
    throw Error(what + " called while another call of the same Pool is running (from a sink of that call, or from "
                       "another thread): a Pool runs one call at a time; use a second Pool");
}

Pool::Busy::Busy(const Pool& pool, const char* call) : state_(pool.state_.get()) {
  pool.check_usable(call);
  state_->busy.store(true);
}

Pool::Busy::~Busy() { state_->busy.store(false); }

void Pool::enter_worker() const noexcept { detail::set_task_of(state_.get()); }

std::size_t Pool::workers() const {
  check_usable("workers");
  return worker_count();
}

std::size_t Pool::worker_count() const {
  return state_->farm ? state_->farm->worker_count() : static_cast<std::size_t>(resolve_workers(options_.workers));
}

void Pool::close() {
  if (!state_) return;  // moved from: nothing to close
  check_usable("close");
  state_->calls.reset();  // kills and reaps submitted calls still running; their futures throw
  if (state_->farm) state_->farm->close();
}

std::shared_ptr<detail::Call> Pool::submit_raw(std::function<void(std::string&)> run) {
  Busy busy(*this, "submit");
  if (!state_->calls) {
    if (options_.backend == Backend::threads)
      state_->calls = std::make_unique<detail::ThreadCalls>(worker_count(), options_.retries);
    else
      state_->calls = std::make_unique<detail::CallEngine>(options_, worker_count(), state_.get());
  }
  if (options_.backend == Backend::fork) return state_->calls->submit(std::move(run));
  const void* pool = state_.get();
  return state_->calls->submit([pool, run = std::move(run)](std::string& out) {
    detail::TaskOf mark(pool);  // on its thread, for the call's duration
    run(out);
  });
}

bool Pool::task_wait(const std::weak_ptr<State>& weak, const detail::Call& task, std::chrono::milliseconds timeout,
                     const char* call) {
  using S = detail::Call::State;
  if (task.finished()) return true;
  const std::shared_ptr<State> state = weak.lock();
  if (task.state == S::closed || !state || !state->calls) throw Error(closed_message(call));
  if (detail::task_of() == state.get())
    throw Error(std::string("taskfarm::") + call +
                " called from inside a task of the same Pool: a submitted call cannot wait for another one");
  if (state->owner != ::getpid())
    throw Error(std::string("taskfarm::") + call + " called in process " + std::to_string(::getpid()) +
                ", a fork of process " + std::to_string(state->owner) + " that made its Pool");
  if (state->busy.load())
    throw Error(std::string("taskfarm::") + call + " called while a call of its Pool is running: wait after it returns");
  state->busy.store(true);
  struct Release {
    State& s;
    ~Release() { s.busy.store(false); }
  } release{*state};
  return state->calls->wait(task, timeout);
}

std::span<const char> Pool::task_result(const detail::Call& task) {
  if (task.state == detail::Call::State::failed) throw TaskFailed::of_call(*task.failure);
  return {task.bytes.data(), task.bytes.size()};
}

std::size_t Pool::completed() {
  Busy busy(*this, "completed");
  if (!state_->calls) return 0;
  state_->calls->poll(std::chrono::milliseconds(0));
  return state_->calls->completed();
}

std::size_t Pool::in_flight() {
  Busy busy(*this, "in_flight");
  if (!state_->calls) return 0;
  state_->calls->poll(std::chrono::milliseconds(0));
  return state_->calls->in_flight();
}

std::size_t Pool::wait_any(std::chrono::milliseconds timeout) {
  Busy busy(*this, "wait_any");
  if (!state_->calls) return 0;
  detail::Calls& a = *state_->calls;
  a.wait_completed(state_->counted + 1, timeout);
  const std::size_t finished = a.completed() - state_->counted;
  state_->counted = a.completed();
  return finished;
}

void* Pool::fixed_buffer(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (state_->buffer.size() < bytes) {
    state_->buffer = ShmSegment();  // drop the old one first: /dev/shm holds only one at a time
    state_->buffer = ShmSegment::create(bytes, "results");
  }
  return state_->buffer.data();
}

void Pool::throw_map_reduce_failed(std::uint64_t n, std::uint64_t block,
                                   const detail::BlockMarks& marks) const {
  // The run was over blocks: each failure is said in the user's indices — the one whose fn threw
  // (the block noted it), or the block's range when which one is unknown (a crash, a timeout).
  std::vector<FailureRecord> failures;
  std::string list;
  std::size_t listed = 0;
  for (FailureRecord f : report_.failures) {
    if (f.index) {
      const std::uint64_t b = *f.index, begin = b * block, end = std::min(n, begin + block);
      const std::optional<std::uint64_t> at =
          f.cause == FailureCause::exception ? marks.threw_at(b) : std::nullopt;
      const bool exact = at.has_value();
      f.index = exact ? *at : begin;
      f.chunk_begin = begin;
      f.chunk_end = end;
      const std::string range = std::to_string(begin) + "-" + std::to_string(end - 1);
      if (listed++ < 20)
        list += "\n  " +
                (exact ? "index " + std::to_string(*f.index) + " (block " + std::to_string(b) +
                             ": indices " + range + "; "
                       : "indices " + range + " (block " + std::to_string(b) + "; ") +
                "attempt " + std::to_string(f.attempt) + ", slot " + std::to_string(f.slot) +
                ", pid " + std::to_string(f.pid) + "): " + f.describe_cause();
    }
    failures.push_back(std::move(f));
  }
  if (listed > 20) list += "\n  ... and " + std::to_string(listed - 20) + " more";
  const std::uint64_t blocks = report_.tasks, failed = report_.failed_indices().size(),
                      unfinished = report_.unfinished_count();
  std::string what = "taskfarm: map_reduce over " + std::to_string(n) + " indices has no result: ";
  if (failed != 0)
    what += std::to_string(failed) + " of " + std::to_string(blocks) + " blocks of " +
            std::to_string(block) + " indices failed";
  if (unfinished != 0)
    what += std::string(failed != 0 ? ", " : "") + std::to_string(unfinished) + " of " +
            std::to_string(blocks) + " blocks not run";
  if (failed == 0 && unfinished == 0) what += "its run was not complete";
  if (!report_.farm_error.empty())
    what += "; the farm stopped the run: " + report_.farm_error;
  else if (unfinished != 0 && report_.halted)
    what += ": the run halted (PoolOptions::halt)";
  else if (unfinished != 0 && report_.interrupted)
    what += ": the run was interrupted";
  for (const std::string& path : report_.restored_headers)
    what += "; " + restored_header_message(path);
  TaskFailed e(what + list, std::move(failures));
  e.succeeded_ = report_.succeeded;
  e.unfinished_ = unfinished;
  throw e;
}

void Pool::throw_if_failed() const {
  const bool incomplete = !report_.failures.empty() || !report_.unfinished.empty() || !report_.restored_headers.empty();
  if (!report_.farm_error.empty() || (options_.throw_on_failure && incomplete)) throw TaskFailed(report_);
}

void Pool::run_fork(const JobSpec& job, FarmObserver* obs, const ForkKernelFactory& factory) {
  report_ = state_->farm->run(job, obs, factory);
}

}  // namespace taskfarm

namespace taskfarm {

void Pool::check_call(const CallOptions& call, std::uint64_t n, bool selects) const {
  const std::string what = "taskfarm::Pool: CallOptions::";
  if (options_.backend == Backend::threads && (call.observer != nullptr || call.only))
    throw Error(what + (call.observer != nullptr ? "observer" : "only") +
                " needs the fork backend: the threads backend reports no events and runs every index");
  if (!call.only) return;
  if (!selects)
    throw Error(what + "only selects indices to run, but map and try_map return a value for every index: "
                       "use for_each, imap or imap_unordered");
  check_ranges(*call.only, n, what + "only");
}

}  // namespace taskfarm
