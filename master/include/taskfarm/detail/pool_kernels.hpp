// Pool's kernels (detail of taskfarm/pool.hpp): how a lambda is called at a flat index, run in
// a forked worker (LambdaRunner, worker side), and how results are decoded in the master
// (DecodingObserver). Included by pool.hpp only; not an API of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/serialize.hpp"
#include "taskfarm/worker.hpp"

namespace taskfarm::detail {

/// Calls fn with the coordinates of flat index i: fn(i), fn(i, j) or fn(i, j, k).
template <class F>
decltype(auto) invoke_at(F& fn, const std::vector<std::uint64_t>& dims, std::uint64_t i) {
  if constexpr (std::is_invocable_v<F&, std::uint64_t, std::uint64_t, std::uint64_t>) {
    const std::uint64_t k = i % dims.at(2), j = (i / dims[2]) % dims[1];
    return fn(i / (dims[1] * dims[2]), j, k);
  } else if constexpr (std::is_invocable_v<F&, std::uint64_t, std::uint64_t>) {
    return fn(i / dims.at(1), i % dims[1]);
  } else {
    return fn(i);
  }
}

/// Pool::map_reduce's notes of where each block's fn threw: one word per block, 0 (it did not)
/// or the index + 1, in memory shared with the workers (MAP_SHARED | MAP_ANONYMOUS, made by the
/// master before the call forks them; pages taken only where a block threw). Owned by the
/// master's call, unmapped by the destructor; a worker writes its block's word, the master reads.
class BlockMarks {
 public:
  explicit BlockMarks(std::uint64_t blocks);  ///< throws SystemError if it cannot be mapped
  ~BlockMarks();
  BlockMarks(const BlockMarks&) = delete;
  BlockMarks& operator=(const BlockMarks&) = delete;
  std::uint64_t* data() const noexcept { return words_; }
  /// The index where block b's fn threw, if it did.
  std::optional<std::uint64_t> threw_at(std::uint64_t b) const noexcept;

 private:
  std::uint64_t* words_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Maps the pages of [data, data + bytes), shared memory this forked process has not touched
/// yet, by reading one byte per page: a read fault maps 16 neighbours at once (fault-around)
/// and shared memory maps them writable, where a write fault maps one page (~1 us here).
void map_for_writing(const void* data, std::size_t bytes) noexcept;

/// Fork-mode runner that calls a lambda: writes trivially copyable results straight into
/// shared memory (`out`), or serialises them (`out == nullptr`), or discards them (void).
template <class T, class F>
class LambdaRunner final : public JobRunner {
 public:
  LambdaRunner(F& fn, std::vector<std::uint64_t> dims, T* out) : fn_(fn), dims_(std::move(dims)), out_(out) {}
  void run(std::uint64_t i, std::string& result) override {
    if constexpr (std::is_void_v<T>) {
      invoke_at(fn_, dims_, i);
    } else if (out_ != nullptr) {
      out_[i] = invoke_at(fn_, dims_, i);
    } else {
      append_serialized(result, static_cast<const T&>(invoke_at(fn_, dims_, i)));
    }
  }
  // Only for jobs without per-index bytes: void, or results written into `out`.
  void run_range(std::uint64_t begin, std::uint64_t end, std::atomic<std::uint64_t>& current) override {
    if constexpr (!std::is_void_v<T>) {
      if (out_ == nullptr) return JobRunner::run_range(begin, end, current);
      map_for_writing(out_ + begin, (end - begin) * sizeof(T));
    }
    for (std::uint64_t i = begin; i < end; ++i) {
      current.store(i, std::memory_order_release);
      if constexpr (std::is_void_v<T>) invoke_at(fn_, dims_, i);
      else out_[i] = invoke_at(fn_, dims_, i);
    }
  }

 private:
  F& fn_;
  std::vector<std::uint64_t> dims_;
  T* out_;
};

/// Keeps the whole pages of [data, data + bytes) out of processes forked while it lives
/// (MADV_DONTFORK), so fork does not write-protect them in this one. Only for memory no worker
/// can reach (the master's own result vector). Best effort: without it, only speed changes.
class NotInherited {
 public:
  NotInherited(void* data, std::size_t bytes) noexcept;
  NotInherited(const NotInherited&) = delete;
  NotInherited& operator=(const NotInherited&) = delete;
  ~NotInherited();

 private:
  void* begin_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Master-side observer that decodes each index's bytes into T and hands it on.
template <class T, class Sink>
class DecodingObserver final : public FarmObserver {
 public:
  explicit DecodingObserver(Sink& sink) : sink_(sink) {}
  void on_result(const IndexResult& r) override { sink_(r.index, deserialize<T>(r.value)); }

 private:
  Sink& sink_;
};

}  // namespace taskfarm::detail
