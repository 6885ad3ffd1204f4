// WarmPool's kernels (detail of taskfarm/warm_pool.hpp): how a call travels to warm forked
// workers that do not share the caller's memory as it is at the call. The Job's kernel string
// holds the address of an instantiation of warm_entry<T, F, A...> (valid in every fork of this
// binary), the function pointer (or 0 for a captureless lambda, which the entry default-
// constructs) and the result segment's name's length as three 64-bit words, that name, then a
// cereal archive of each argument — a SharedArray as its handle, anything else as cereal
// encodes it. Encoded in the master, decoded in a worker.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "taskfarm/detail/pool_kernels.hpp"
#include "taskfarm/serialize.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/worker.hpp"

namespace taskfarm {

/// What a WarmPool call may run: a function pointer, or a lambda (or function object) that
/// captures nothing. A warm worker was forked before the call, so it does not see the caller's
/// variables as they are at the call: whatever the kernel needs travels as arguments. A lambda
/// that captures anything, by reference or by value, does not satisfy this concept, so the call
/// does not compile (`[&]` belongs to Pool, which forks at each call).
template <class F>
concept WarmKernel = (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) ||
                     (std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F> &&
                      std::is_trivially_copyable_v<F>);

namespace detail {

template <class A>
struct IsSharedArray : std::false_type {};
template <class E>
struct IsSharedArray<SharedArray<E>> : std::true_type {};

/// A warm worker's attachments: the shm arrays and result segments calls named stay mapped, so
/// a later call that names them again writes into pages mapped already (a fresh mapping faults
/// once per page, ~1 us here). shm names are random and never reused, so a name still in
/// /dev/shm is the same segment; one the master removed is unmapped at the next call, and so is
/// one no call named for kForgetAfter calls. A .npy array is attached again at every call (its
/// path may name a new file by now). Lives in the worker process, one thread.
class WarmAttachments {
 public:
  static constexpr std::uint64_t kForgetAfter = 16;
  /// Unmaps what was removed or not named for long; call once per job, before its lookups.
  void begin_job();
  template <class E>
  std::shared_ptr<SharedArray<E>> array(const std::string& handle) {
    const bool cacheable = handle.starts_with("shm");
    // typeid drops const: a read-only view and a writable one of one array are two entries.
    const std::string key = std::string(typeid(E).name()) + (std::is_const_v<E> ? "c|" : "|") + handle;
    if (cacheable)
      if (auto v = find(key)) return std::static_pointer_cast<SharedArray<E>>(v);
    auto a = std::make_shared<SharedArray<E>>(SharedArray<E>::attach(handle));
    if (cacheable) keep(key, a->name(), a);
    return a;
  }
  std::shared_ptr<ShmSegment> segment(const std::string& name);

 private:
  struct Entry {
    std::string key, shm_name;
    std::shared_ptr<void> value;
    std::uint64_t last_job = 0;
  };
  std::shared_ptr<void> find(const std::string& key);
  void keep(const std::string& key, const std::string& shm_name, std::shared_ptr<void> value);
  std::vector<Entry> entries_;
  std::uint64_t job_ = 0;
};

/// Worker side: builds the runner of the call `payload` encodes.
using WarmEntry = std::unique_ptr<JobRunner> (*)(const JobInfo&, std::string_view payload, WarmAttachments&);

/// How an argument is held in the worker: a SharedArray through its (cached) attachment,
/// anything else by value.
template <class A>
struct WarmArg {
  A value{};
  void load(cereal::BinaryInputArchive& ar, WarmAttachments&) { ar(value); }
  const A& get() const noexcept { return value; }
};
template <class E>
struct WarmArg<SharedArray<E>> {
  std::shared_ptr<SharedArray<E>> array;
  void load(cereal::BinaryInputArchive& ar, WarmAttachments& att) {
    std::string handle;
    ar(handle);
    array = att.array<E>(handle);
  }
  const SharedArray<E>& get() const noexcept { return *array; }
};

template <class A>
void encode_arg(cereal::BinaryOutputArchive& ar, const A& a) {
  if constexpr (IsSharedArray<A>::value) ar(a.handle());
  else ar(a);
}

/// Calls fn with the coordinates of flat index i (as invoke_at does), then the arguments.
template <class F, class... A>
decltype(auto) invoke_with(F& fn, const std::vector<std::uint64_t>& dims, std::uint64_t i, const A&... a) {
  if constexpr (std::is_invocable_v<F&, std::uint64_t, std::uint64_t, std::uint64_t, const A&...>) {
    const std::uint64_t k = i % dims.at(2), j = (i / dims[2]) % dims[1];
    return fn(i / (dims[1] * dims[2]), j, k, a...);
  } else if constexpr (std::is_invocable_v<F&, std::uint64_t, std::uint64_t, const A&...>) {
    return fn(i / dims.at(1), i % dims[1], a...);
  } else {
    return fn(i, a...);
  }
}

/// Worker side: the fixed head of a call's payload (what follows the entry's address): the
/// function pointer (0 for a lambda), the result segment's name, then the arguments' archive.
/// Plain bytes, not a cereal archive: a call without arguments then costs no stream.
struct WarmCallHead {
  explicit WarmCallHead(std::string_view payload);
  std::uint64_t fn_address = 0;
  std::string_view results, args;
};

/// Worker side of one warm call: the kernel, its decoded arguments and where results go.
template <class T, class F, class... A>
class WarmRunner final : public JobRunner {
 public:
  WarmRunner(const JobInfo& job, std::string_view payload, WarmAttachments& att) : dims_(job.extent) {
    WarmCallHead head(payload);
    if constexpr (std::is_pointer_v<F>) fn_ = reinterpret_cast<F>(static_cast<std::uintptr_t>(head.fn_address));
    if constexpr (sizeof...(A) > 0) {
      SpanReadBuf buf({head.args.data(), head.args.size()});
      std::istream is(&buf);
      cereal::BinaryInputArchive ar(is);
      std::apply([&](auto&... arg) { (arg.load(ar, att), ...); }, args_);
    }
    if (!head.results.empty()) {
      results_ = att.segment(std::string(head.results));
      out_ = static_cast<Out*>(results_->data());
    }
  }
  void run(std::uint64_t i, std::string& result) override {
    if constexpr (std::is_void_v<T>) {
      call(i);
    } else if (out_ != nullptr) {
      out_[i] = call(i);
    } else {
      append_serialized(result, static_cast<const T&>(call(i)));
    }
  }
  void run_range(std::uint64_t begin, std::uint64_t end, std::atomic<std::uint64_t>& current) override {
    if constexpr (!std::is_void_v<T>) {
      if (out_ == nullptr) return JobRunner::run_range(begin, end, current);
    }
    for (std::uint64_t i = begin; i < end; ++i) {
      current.store(i, std::memory_order_release);
      if constexpr (std::is_void_v<T>) call(i);
      else out_[i] = call(i);
    }
  }

 private:
  using Out = std::conditional_t<std::is_void_v<T>, char, T>;
  decltype(auto) call(std::uint64_t i) {
    return std::apply([&](const auto&... arg) -> decltype(auto) { return invoke_with(fn_, dims_, i, arg.get()...); }, args_);
  }
  F fn_{};
  std::vector<std::uint64_t> dims_;
  std::tuple<WarmArg<A>...> args_;
  std::shared_ptr<ShmSegment> results_;
  Out* out_ = nullptr;
};

template <class T, class F, class... A>
std::unique_ptr<JobRunner> warm_entry(const JobInfo& job, std::string_view payload, WarmAttachments& att) {
  return std::make_unique<WarmRunner<T, F, A...>>(job, payload, att);
}

/// Master side: the kernel string of a call of `fn` with `args`, results into segment `results`
/// ("" when they travel as bytes or there are none).
template <class T, class F, class... A>
std::string encode_warm_call(F fn, const std::string& results, const A&... args) {
  const WarmEntry entry = &warm_entry<T, F, A...>;
  std::uint64_t head[3] = {static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(entry)), 0, results.size()};
  if constexpr (std::is_pointer_v<F>) head[1] = reinterpret_cast<std::uintptr_t>(fn);
  std::string out(reinterpret_cast<const char*>(head), sizeof head);
  out += results;
  if constexpr (sizeof...(A) > 0) {
    StringAppendBuf buf(out);
    std::ostream os(&buf);
    cereal::BinaryOutputArchive ar(os);
    (encode_arg(ar, args), ...);
  }
  return out;
}

/// Worker side: the runner of the call whose kernel string is `job.kernel`.
std::unique_ptr<JobRunner> make_warm_runner(const JobInfo& job, WarmAttachments& att);

}  // namespace detail
}  // namespace taskfarm
