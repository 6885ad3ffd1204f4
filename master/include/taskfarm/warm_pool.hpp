// WarmPool: fork-mode workers kept warm across calls, with Python Pool's contract. Workers are
// forked from the calling thread at the first call (and to replace a dead one) and serve every
// later call; each call names a kernel that does not depend on the caller's memory at the call —
// a function pointer or a captureless lambda (WarmKernel) — and passes what it needs as
// arguments: values travel serialised with cereal, SharedArrays as handles, which workers keep
// mapped while the next call names them again. Pool (fork at each call, `[&]` lambdas) is the
// other way to run lambdas; this one is for many short calls, where Pool's per-call forks and
// first touches of every shared page dominate (docs/design.md §16).
// A WarmPool is used from one thread, only in the process that made it, one call at a time; at
// a call that thread must be the process's only one (it may fork), as for Pool.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/detail/warm_kernels.hpp"
#include "taskfarm/pool.hpp"

namespace taskfarm {

/// Results and arguments are as for Pool: T trivially copyable (written straight into shared
/// memory) or any cereal-serialisable type; an argument is a SharedArray<E> (attached by handle
/// in the workers: the kernel takes it as `const SharedArray<E>&`) or a cereal-serialisable
/// value (the kernel takes `const A&`). PoolOptions as for Pool's fork backend: the initializer
/// runs once in each worker when it is forked; Backend::threads is refused.
class WarmPool {
 public:
  explicit WarmPool(PoolOptions options = {});
  WarmPool(WarmPool&&) noexcept;
  WarmPool& operator=(WarmPool&&) noexcept;
  /// Stops and reaps the workers, removes the pool's segments (in the process that made it).
  ~WarmPool();

  std::size_t workers() const;
  const PoolOptions& options() const noexcept { return options_; }
  const RunReport& last_report() const noexcept { return report_; }

  /// fn(i, args...) (fn(i, j, args...) ... for 2-D/3-D extents) for every index, in row-major
  /// order; throws TaskFailed as Pool::map does.
  template <class T, WarmKernel F, class... A>
  std::vector<T> map(const Extent& extent, F fn, const A&... args) {
    MapResult<T> r = try_map<T>(extent, fn, args...);
    throw_if_failed();
    return std::move(r.values);
  }

  /// Like map, but failed indices are listed instead of thrown.
  template <class T, WarmKernel F, class... A>
  MapResult<T> try_map(const Extent& extent, F fn, const A&... args);

  /// fn(i, args...) for every index, for its side effects (writes into a SharedArray argument).
  template <WarmKernel F, class... A>
  void for_each(const Extent& extent, F fn, const A&... args) {
    JobSpec job = spec(extent, ResultMode::none, detail::encode_warm_call<void>(fn, {}, args...));
    run(job, nullptr);
    throw_if_failed();
  }

  /// Streams results as they complete: sink(i, T&&), as Pool::imap_unordered.
  template <class T, WarmKernel F, class Sink, class... A>
  void imap_unordered(const Extent& extent, F fn, Sink sink, const A&... args) {
    detail::DecodingObserver<T, Sink> obs(sink);
    JobSpec job = spec(extent, ResultMode::blobs, detail::encode_warm_call<T>(fn, {}, args...));
    run(job, &obs);
    throw_if_failed();
  }

  /// Stops and reaps the workers, removes the segments; the next call forks new workers.
  void close();

 private:
  struct State;
  static JobSpec spec(const Extent& extent, ResultMode results, std::string kernel);
  /// Runs `job` after the checks (moved from, re-entry, forked copy, busy); sets report_.
  void run(const JobSpec& job, FarmObserver* obs);
  /// The pool's result segment, at least `bytes` long (reused across calls); its name.
  std::pair<void*, std::string> result_buffer(std::size_t bytes);
  void throw_if_failed() const;
  void release() noexcept;

  PoolOptions options_;
  RunReport report_;
  std::unique_ptr<State> state_;
};

template <class T, WarmKernel F, class... A>
MapResult<T> WarmPool::try_map(const Extent& extent, F fn, const A&... args) {
  MapResult<T> r;
  const std::uint64_t n = extent.size();
  if constexpr (std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>) {
    auto [out, name] = result_buffer(n * sizeof(T));
    run(spec(extent, ResultMode::none, detail::encode_warm_call<T>(fn, name, args...)), nullptr);
    const T* first = static_cast<const T*>(out);
    r.values.assign(first, first + n);  // one pass: no zero-filling first
  } else {
    r.values.resize(n);
    auto store = [&r](std::uint64_t i, T&& v) { r.values[i] = std::move(v); };
    detail::DecodingObserver<T, decltype(store)> obs(store);
    run(spec(extent, ResultMode::blobs, detail::encode_warm_call<T>(fn, {}, args...)), &obs);
  }
  r.failures = report_.failures;
  r.failed = detail::undelivered_indices(report_);
  return r;
}

}  // namespace taskfarm
