// Pool: the library face of taskfarm — multiprocessing.Pool / joblib in C++, with lambdas.
// Fork mode (default) forks workers from the calling thread at each call, so a kernel sees
// the program's memory exactly as a serial loop at that point would; results come back
// through shared memory. The threads backend runs the same API on threads (no isolation).
// A Pool is used from one thread. In fork mode that thread must be the process's only one
// at the time of a call (fork is only safe then), and the Pool starts no threads of its own.
// The threads backend starts its task threads: a map's are joined before it returns, a
// submitted call's when the call is collected, or when the Pool closes (which waits for them).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/detail/pool_kernels.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/range_set.hpp"
#include "taskfarm/serialize.hpp"
#include "taskfarm/worker.hpp"

namespace taskfarm {

namespace detail {
struct Call;
}

enum class Backend : std::uint8_t { fork, threads };

/// Backend::threads honours workers, chunk, retries, halt, halt_after and initializer (once per
/// thread per call); it refuses task_timeout, memory_limit, max_tasks_per_worker, chaos_rate and
/// reap_descendants with an Error at construction (a thread cannot be killed, limited or
/// recycled). The options about worker processes (start_timeout, kill_grace, arena_bytes,
/// set_thread_env, forward_stderr, ...) have nothing to act on there.
struct PoolOptions : FarmOptions {
  Backend backend = Backend::fork;
  std::function<void()> initializer;  ///< runs once in each worker before its first task
  bool throw_on_failure = true;       ///< map/for_each throw TaskFailed listing every failure
};

/// A call did not deliver every result. map/for_each/imap/imap_unordered throw it when an index
/// finally failed or was never finished (the run ended early: halt policy), if
/// PoolOptions::throw_on_failure, and always when the farm itself stopped the run
/// (RunReport::farm_error); what() says how many tasks succeeded and lists every failure.
/// Future::get throws it for a call that finally failed (of_call).
class TaskFailed : public Error {
 public:
  /// what(): how many failed, the first named ("1 task failed: index 5 (attempt 0, ...): ...").
  explicit TaskFailed(std::vector<FailureRecord> failures);
  /// A submitted call's failure, its record's index the call's number (Pool::submit counts its
  /// calls from 0): "submitted call 5 failed (attempt 0, pid 4122): threw std::domain_error: bad 5".
  static TaskFailed of_call(const FailureRecord& failure);
  /// From the report of a run that did not deliver every index.
  explicit TaskFailed(const RunReport& report);
  const std::vector<FailureRecord>& failures() const noexcept { return failures_; }
  /// Of the run's tasks: how many succeeded, and how many were never finished (map_reduce's:
  /// of its blocks).
  std::uint64_t succeeded() const noexcept { return succeeded_; }
  std::uint64_t unfinished() const noexcept { return unfinished_; }

 private:
  friend class Pool;  // map_reduce's, in the user's indices
  TaskFailed(const std::string& what, std::vector<FailureRecord> failures) : Error(what), failures_(std::move(failures)) {}
  std::vector<FailureRecord> failures_;
  std::uint64_t succeeded_ = 0, unfinished_ = 0;
};

/// What one call of map, try_map, for_each, imap or imap_unordered does besides its work (fork
/// backend; the threads backend refuses both with an Error).
struct CallOptions {
  /// Hears the call's events as `taskfarm run` does — a Joblog, Trace, Progress, EventStream,
  /// or several through a FanoutObserver — on the calling thread. Not owned.
  FarmObserver* observer = nullptr;
  /// Runs only these [begin, end) of the index space, ascending, disjoint, non-empty, inside
  /// it (a resume: Joblog::todo()); unset, all of it. for_each, imap and imap_unordered only:
  /// map and try_map return a value for every index, so they refuse it.
  std::optional<std::vector<IndexRange>> only;
};

/// A multi-dimensional index space, visited in row-major order (the nested `for i, for j`).
struct Extent {
  std::vector<std::uint64_t> dims;
  Extent(std::uint64_t n) : dims{n} {}  // NOLINT: a plain count is a 1-D extent
  Extent(std::initializer_list<std::uint64_t> d) : dims(d) {}
  std::uint64_t size() const noexcept;
};

/// Results with their failures: values[i] is meaningful only where ok(i), i.e. where its
/// result was delivered.
template <class T>
struct MapResult {
  std::vector<T> values;
  std::vector<FailureRecord> failures;  ///< final failures (see also Pool::last_report())
  /// Sorted indices whose result was not delivered: finally failed (see `failures`), or never
  /// finished because the run ended early (RunReport::unfinished).
  std::vector<std::uint64_t> failed;
  bool ok(std::uint64_t i) const { return !std::binary_search(failed.begin(), failed.end(), i); }
};

namespace detail {

/// The sorted indices of a run whose result was not delivered: finally failed or unfinished.
std::vector<std::uint64_t> undelivered_indices(const RunReport& report);

}  // namespace detail

template <class R>
class Future;

/// Moving a Pool moves everything it owns: futures of calls submitted before the move keep
/// working (they follow the pool, not the Pool object). A moved-from Pool owns nothing: only
/// destruction, assignment, options() and last_report() are valid on it; any other call throws
/// Error ("... used after it was moved from").
/// A Pool runs one call at a time and only in the process that created it: a call from inside
/// one of its own tasks (a worker process or a task thread), from a sink of a running call, or
/// in a forked copy of the process throws Error saying so. A new Pool made inside a task works.
class Pool {
 public:
  explicit Pool(PoolOptions options = {});
  Pool(Pool&&) noexcept;
  /// Closes this Pool first (as the destructor does), then takes over `other`'s.
  Pool& operator=(Pool&& other) noexcept;
  /// Closes the pool: submitted calls still running are killed, their futures then throw.
  ~Pool();

  /// Workers per call.
  std::size_t workers() const;
  const PoolOptions& options() const noexcept { return options_; }
  /// The report of the last call (failures, retries, wall time).
  const RunReport& last_report() const noexcept { return report_; }

  /// fn(i) (or fn(i, j), fn(i, j, k) for 2-D/3-D extents) for every index; results in
  /// row-major index order. T: trivially copyable (written straight into shared memory) or
  /// any cereal-serialisable type (std::string, std::vector<...>, your structs).
  template <class T, class F>
  std::vector<T> map(const Extent& extent, F fn, const CallOptions& call = {}) {
    check_usable("map");
    MapResult<T> r = try_map<T>(extent, std::move(fn), call);
    throw_if_failed();
    return std::move(r.values);
  }

  /// Like map, but never throws for failed tasks: failed indices are listed.
  template <class T, class F>
  MapResult<T> try_map(const Extent& extent, F fn, const CallOptions& call = {});

  /// map for functions returning std::optional<T>: empty results are dropped (order kept).
  template <class T, class F>
  std::vector<T> filter_map(const Extent& extent, F fn) {
    std::vector<std::optional<T>> all = map<std::optional<T>>(extent, std::move(fn));
    std::vector<T> kept;
    for (auto& v : all)
      if (v) kept.push_back(std::move(*v));
    return kept;
  }

  /// fn(i) for every index, for its side effects (typically writes into a SharedArray).
  template <class F>
  void for_each(const Extent& extent, F fn, const CallOptions& call = {}) {
    check_usable("for_each");
    run_job<void>(extent, fn, nullptr, nullptr, false, call);
    throw_if_failed();
  }

  /// Streams results as they complete: sink(i, T&&) in completion order. Master memory stays
  /// bounded by workers × chunk, whatever n is. A sink (or a decoding) that throws fails that
  /// index with the exception — retried, then listed by TaskFailed — and the run goes on.
  template <class T, class F, class Sink>
  void imap_unordered(const Extent& extent, F fn, Sink sink, const CallOptions& call = {}) {
    check_usable("imap_unordered");
    detail::DecodingObserver<T, Sink> obs(sink);
    run_job<T>(extent, fn, nullptr, &obs, false, call);
    throw_if_failed();
  }

  /// Streams results in index order: sink(i, T&&) for i = 0, 1, 2, ...; bounded read-ahead.
  /// A run that ends early (halt) still hands over, in index order, every result it counts as
  /// succeeded, skipping the indices it did not finish, then throws TaskFailed.
  template <class T, class F, class Sink>
  void imap(const Extent& extent, F fn, Sink sink, const CallOptions& call = {}) {
    check_usable("imap");
    detail::DecodingObserver<T, Sink> obs(sink);
    run_job<T>(extent, fn, nullptr, &obs, true, call);
    throw_if_failed();
  }

  /// op-fold of fn over [0, n) with a fixed association: fixed blocks of `block` (>= 1, else
  /// Error; a block of n or more is one block) indices are
  /// folded left to right in the workers, block results left to right onto `init` in the
  /// master. Identical on every run and for every worker count. A block that failed leaves no
  /// result: TaskFailed, whatever throw_on_failure says, naming your indices — the one whose fn
  /// (or op folding it in) threw, or for a crash or timeout, where which index is unknown, the
  /// block's range. Its failures() say the same: `index` that index (or the block's first),
  /// chunk_begin/chunk_end the block's indices. last_report() is the run over blocks.
  template <class T, class F, class Op>
  T map_reduce(std::uint64_t n, F fn, Op op, T init, std::uint64_t block = 1024) {
    check_usable("map_reduce");
    if (block == 0) throw Error("map_reduce: block must be at least 1");
    // (Not (n + block - 1) / block: that wrapped for a block near 2^64 — zero blocks, `init`
    // returned as if it were the fold: h14 F2.)
    const std::uint64_t blocks = n / block + (n % block != 0 ? 1 : 0);
    detail::BlockMarks marks(blocks);  // where each block's fn threw, seen by the workers
    std::uint64_t* threw_at = marks.data();
    MapResult<T> partial = try_map<T>(blocks, [&fn, &op, n, block, threw_at](std::uint64_t b) {
      const std::uint64_t begin = b * block, end = begin + std::min(block, n - begin);
      std::uint64_t i = begin;
      try {
        T acc = fn(i);
        for (++i; i < end; ++i) acc = op(std::move(acc), fn(i));
        return acc;
      } catch (...) {
        threw_at[b] = i + 1;  // noted, then on as it was: its type and what() unchanged
        throw;
      }
    });
    if (!partial.failed.empty() || !report_.farm_error.empty() || !report_.restored_headers.empty())
      throw_map_reduce_failed(n, block, marks);
    for (auto& p : partial.values) init = op(std::move(init), std::move(p));
    return init;
  }

  /// Runs fn(args...) asynchronously in a process of its own (a thread on the threads
  /// backend), at most workers() at a time; hundreds may be queued. fn and args are copied at
  /// the call, and run when a slot is free (like std::async: references must stay valid).
  /// Each call is a one-index task of the same engine as map, its process a map worker forked
  /// after the submit: memory_limit, thread environment, stderr captured
  /// (FailureRecord::stderr_tail) and forwarded, own process group. A call past
  /// task_timeout gets SIGTERM, then SIGKILL after kill_grace (cause `timeout`); one past
  /// memory_limit fails with cause `memory`; a crash or throw is retried up to `retries`, like
  /// map's tasks. halt and max_tasks_per_worker concern map-like runs, not these independent calls.
  template <class F, class... A>
  auto submit(F fn, A... args) -> Future<std::invoke_result_t<F&, A&...>> {
    using R = std::invoke_result_t<F&, A&...>;
    static_assert(!std::is_void_v<R>, "submit needs a function that returns a value");
    check_usable("submit");
    auto run = [fn = std::move(fn), ... args = std::move(args)](std::string& out) mutable {
      detail::append_serialized(out, static_cast<const R&>(fn(args...)));
    };
    return Future<R>(state_, submit_raw(std::move(run)));
  }
  /// Submitted calls that have finished (including final failures).
  std::size_t completed();
  /// Submitted calls not finished yet (queued or running).
  std::size_t in_flight();
  /// Waits until a submitted call finishes that no earlier wait_any counted (at once if one
  /// has already), at most `timeout`; drives the pool meanwhile. Returns how many calls have
  /// finished since the last wait_any: 0 if it timed out or nothing is in flight. A progress
  /// loop around it makes one iteration per completion (or per timeout), never spins.
  std::size_t wait_any(std::chrono::milliseconds timeout);

  /// Stops and reaps every worker, removes every segment; submitted calls still running are
  /// killed (their futures throw Error). Called by the destructor. The Pool stays usable.
  void close();

 private:
  template <class R>
  friend class Future;
  struct State;

  /// Throws Error if `call` cannot run now: the Pool was moved from, or this is a task of its
  /// own, a forked copy of its process, or a call made while another call of it runs.
  void check_usable(const char* call) const;
  /// Holds the Pool busy for a call's duration (after check_usable), so that re-entry is seen.
  class Busy {
   public:
    Busy(const Pool& pool, const char* call);
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;
    ~Busy();

   private:
    State* state_;
  };
  /// What the destructor does: closes the pool (in the process that made it), then owns nothing.
  void release() noexcept;
  std::size_t worker_count() const;  // workers() without the checks
  /// In a forked worker, before its first task: marks this process as one of the Pool's tasks.
  void enter_worker() const noexcept;

  std::shared_ptr<detail::Call> submit_raw(std::function<void(std::string&)> run);
  /// Drives the pool of a Future (which may have moved since) until `task` finished or
  /// `timeout` passed; throws Error if that pool was closed before the task finished.
  static bool task_wait(const std::weak_ptr<State>& pool, const detail::Call& task,
                        std::chrono::milliseconds timeout, const char* call);
  /// The value's bytes of a finished task; throws TaskFailed if it finally failed.
  static std::span<const char> task_result(const detail::Call& task);

  template <class T, class F>
  void run_job(const Extent& extent, F& fn, T* out, FarmObserver* obs, bool ordered, const CallOptions& call);
  /// Throws Error naming what of `call` this call cannot do: anything on the threads backend;
  /// `only` in map/try_map (`selects` false) or not ascending, disjoint, inside [0, n).
  void check_call(const CallOptions& call, std::uint64_t n, bool selects) const;
  void run_fork(const JobSpec& job, FarmObserver* obs, const ForkKernelFactory& factory);
  void run_threads(const Extent& extent, const std::function<void(std::uint64_t)>& body);
  void* fixed_buffer(std::size_t bytes);  // pool-owned shared buffer, reused across calls
  /// Throws TaskFailed if the last call did not deliver every result (see TaskFailed).
  void throw_if_failed() const;
  /// map_reduce's TaskFailed: the last call's failures (over blocks of `block` indices of
  /// [0, n)) in the user's indices.
  [[noreturn]] void throw_map_reduce_failed(std::uint64_t n, std::uint64_t block,
                                            const detail::BlockMarks& marks) const;

  PoolOptions options_;
  RunReport report_;
  std::shared_ptr<State> state_;  // shared only with futures, which hold it weakly
};

/// The result of Pool::submit. Used from the Pool's thread; it follows its Pool when the Pool is
/// moved. Waiting drives the pool (it has no background thread): ready() and wait_for() also
/// start queued calls and collect finished ones. A call that finished before its Pool was
/// closed or destroyed still delivers; one that had not makes every method throw Error.
template <class R>
class Future {
 public:
  /// True once the call has finished (or finally failed). Never blocks.
  bool ready() const;
  /// Waits at most `timeout` for the call to finish; true if it has.
  bool wait_for(std::chrono::milliseconds timeout) const;
  /// Waits for the call and returns its value; throws TaskFailed with the cause if it finally
  /// failed. With a task_timeout (fork mode) the wait is bounded: every attempt ends by its
  /// timeout plus kill_grace, after the calls queued before it. Without one, get waits as long
  /// as your call runs — that is your call's choice; wait_for(timeout) first to bound it.
  R get() const;

 private:
  friend class Pool;
  Future(std::weak_ptr<Pool::State> pool, std::shared_ptr<detail::Call> task)
      : pool_(std::move(pool)), task_(std::move(task)) {}
  std::weak_ptr<Pool::State> pool_;
  std::shared_ptr<detail::Call> task_;
};

// ---- implementation of the templates ------------------------------------------------------

template <class T, class F>
void Pool::run_job(const Extent& extent, F& fn, T* out, FarmObserver* obs, bool ordered, const CallOptions& call) {
  Busy busy(*this, "map");
  check_call(call, extent.size(), true);  // try_map has refused `only` already
  if (options_.backend == Backend::threads) {
    // Results reach the observer one at a time, and in index order when asked for.
    std::mutex mu;
    std::map<std::uint64_t, std::string> held;
    std::function<void(std::uint64_t)> body = [&](std::uint64_t i) {
      if constexpr (std::is_void_v<T>) {
        detail::invoke_at(fn, extent.dims, i);
      } else if (out != nullptr) {
        out[i] = detail::invoke_at(fn, extent.dims, i);
      } else {
        std::string bytes;
        detail::append_serialized(bytes, static_cast<const T&>(detail::invoke_at(fn, extent.dims, i)));
        std::lock_guard lock(mu);
        if (ordered) held.emplace(i, std::move(bytes));
        else obs->on_result(IndexResult{i, std::span<const char>(bytes.data(), bytes.size()), {}});
      }
    };
    run_threads(extent, body);
    for (auto& [i, bytes] : held) obs->on_result(IndexResult{i, std::span<const char>(bytes.data(), bytes.size()), {}});
    return;
  }
  JobSpec job;
  job.extent = extent.dims;
  job.results = (std::is_void_v<T> || out != nullptr) ? ResultMode::none : ResultMode::blobs;
  job.ordered = ordered;
  if (call.only) {
    if (call.only->empty()) {  // nothing to run (a resume of a finished job): no worker starts
      report_ = RunReport{};
      return;
    }
    job.ranges = *call.only;
  }
  FanoutObserver both;  // the call's own result handling first, then the caller's observer
  if (obs != nullptr && call.observer != nullptr) {
    both.add(obs);
    both.add(call.observer);
    obs = &both;
  } else if (obs == nullptr) {
    obs = call.observer;
  }
  ForkKernelFactory factory = [&fn, &extent, out, this]() -> std::unique_ptr<JobRunner> {
    enter_worker();
    if (options_.initializer) options_.initializer();
    return std::make_unique<detail::LambdaRunner<T, F>>(fn, extent.dims, out);
  };
  run_fork(job, obs, factory);
}

template <class T, class F>
MapResult<T> Pool::try_map(const Extent& extent, F fn, const CallOptions& call) {
  check_usable("try_map");
  check_call(call, extent.size(), false);
  MapResult<T> r;
  const std::uint64_t n = extent.size();
  if constexpr (std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>) {
    T* out = static_cast<T*>(fixed_buffer(n * sizeof(T)));
    r.values.resize(n);
    {
      // Allocated before the fork and not inherited by the workers: the copy below then
      // writes pages fork did not write-protect (a fault per page costs more than the copy).
      detail::NotInherited keep(r.values.data(), n * sizeof(T));
      run_job<T>(extent, fn, out, nullptr, false, call);
    }
    if (n != 0) std::memcpy(static_cast<void*>(r.values.data()), out, n * sizeof(T));
  } else {
    r.values.resize(n);
    auto store = [&r](std::uint64_t i, T&& v) { r.values[i] = std::move(v); };
    detail::DecodingObserver<T, decltype(store)> obs(store);
    run_job<T>(extent, fn, nullptr, &obs, false, call);
  }
  r.failures = report_.failures;
  r.failed = detail::undelivered_indices(report_);
  return r;
}

template <class R>
bool Future<R>::ready() const {
  return Pool::task_wait(pool_, *task_, std::chrono::milliseconds(0), "Future::ready");
}

template <class R>
bool Future<R>::wait_for(std::chrono::milliseconds timeout) const {
  return Pool::task_wait(pool_, *task_, timeout, "Future::wait_for");
}

template <class R>
R Future<R>::get() const {
  while (!Pool::task_wait(pool_, *task_, std::chrono::hours(1), "Future::get")) {
  }
  return detail::deserialize<R>(Pool::task_result(*task_));
}

}  // namespace taskfarm
