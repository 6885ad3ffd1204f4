// The worker side of taskfarm. A worker program links taskfarm::worker, and from main() calls
// run_worker() with its kernel(s); the runtime then serves chunks from the master that
// started it until told to stop. Started by hand (no master), run_worker() prints one line
// saying how to run the program and returns 2.
// Everything here runs in the worker process, on the thread that called run_worker().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "taskfarm/error.hpp"
#include "taskfarm/serialize.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm {

/// What one job tells its workers (built from the master's Job message).
struct JobInfo {
  std::uint64_t job_id = 0;
  std::string kernel;
  std::vector<std::uint64_t> extent;   ///< index-space shape
  std::string output_handle, input_handle, lines_handle;
  bool wants_result = false;           ///< the master expects one value per index
};

/// Worker side of one job: runs its indices one at a time. One instance per job per worker.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  /// Called once per job before its first index on this worker.
  virtual void begin_job(const JobInfo& /*job*/) {}
  /// Runs index `i`; if the job wants results, appends exactly one value's bytes to `result`.
  virtual void run(std::uint64_t i, std::string& result) = 0;
  /// Runs [begin, end) in order, storing each index in `current` before running it (so the
  /// master can name the index if the process dies). Called instead of run() when the job
  /// wants no per-index results and no per-task timing. An exception leaves `current` at the
  /// index that threw; the caller reports it and resumes after it. Override it to keep the
  /// loop free of a virtual call per index (the fork-mode runners do).
  virtual void run_range(std::uint64_t begin, std::uint64_t end, std::atomic<std::uint64_t>& current) {
    std::string unused;
    for (std::uint64_t i = begin; i < end; ++i) {
      current.store(i, std::memory_order_release);
      run(i, unused);
    }
  }
};

/// Thrown by a kernel to report its failure in its own language's terms (bindings: the Python
/// module throws one for every exception a Python kernel raises). The master records `type()`
/// ("ZeroDivisionError") as the exception's type instead of this class's C++ name, and a
/// failure `out_of_memory()` (a Python MemoryError) as cause `memory`, as it does std::bad_alloc.
class KernelError : public Error {
 public:
  KernelError(std::string type, const std::string& message, bool out_of_memory = false)
      : Error(message), type_(std::move(type)), out_of_memory_(out_of_memory) {}
  const std::string& type() const noexcept { return type_; }
  bool out_of_memory() const noexcept { return out_of_memory_; }

 private:
  std::string type_;
  bool out_of_memory_;
};

/// What a kernel sees of the task it runs.
class TaskContext {
 public:
  /// Flat, row-major task index.
  std::uint64_t index() const noexcept { return index_; }
  /// Coordinate along `axis` of a multi-dimensional index space (--shape AxB).
  std::uint64_t coord(std::size_t axis) const;
  const std::vector<std::uint64_t>& extent() const noexcept { return job_->extent; }
  const JobInfo& job() const noexcept { return *job_; }

  /// The run's output array (--output); throws Error if the run has none.
  AnySharedArray& output();
  /// The output as an ArrayView<T> (checked dtype). Built once per job and cached: use it
  /// directly or by reference (`const auto& out = t.output_as<float>()`) — a copy of a view
  /// allocates.
  template <class T>
  const ArrayView<T>& output_as() { return cached<T>(false); }
  /// The run's read-only input array (--input); throws Error if the run has none.
  const AnySharedArray& input();
  template <class T>
  const ArrayView<const T>& input_as() { return cached<const T>(true); }
  /// Line `index()` of --input-lines (without its newline); throws Error if the run has none.
  std::string_view line() const;
  /// Shares ownership of what this job attached (its output, input and lines): memory reached
  /// through output(), input() or line() stays mapped while the pointer lives, also after the
  /// job. For bindings whose views may outlive a call (the Python module's NumPy arrays); equal
  /// pointers mean the same attachments.
  std::shared_ptr<const void> attachments() const;
  /// Line `k` of --input-lines, any of them (an index space that combines several lists of
  /// values keeps them all in one lines segment); throws Error if there is none or no line k.
  std::string_view line(std::uint64_t k) const;

  /// Sets this task's result value (Pool program mode: `map<T>("kernel", n)`).
  template <class T>
  void set_result(const T& value) {
    result_->clear();
    detail::append_serialized(*result_, value);
    has_result_ = true;
  }

  /// Names the process that runs this task, for a kernel whose task is a process of its own (a
  /// command per task, as `taskfarm run --exec` runs): a stall report (`stall_warning`) then
  /// names it and says whether it is stopped. Call it with the pid once the process started and
  /// with 0 once it ended, before it is reaped (until then the pid cannot be another process's);
  /// it is cleared when the kernel returns. The master names only a child of this worker, or a
  /// process in its process group.
  void set_task_process(pid_t pid) noexcept;

 private:
  friend class KernelRunner;
  template <class T>
  const ArrayView<T>& cached(bool input) {
    if (auto* v = static_cast<const ArrayView<T>*>(find_view(input, typeid(T)))) return *v;
    auto view = std::make_shared<ArrayView<T>>(input ? this->input().template as<T>() : output().template as<T>());
    const ArrayView<T>& ref = *view;
    keep_view(input, typeid(T), std::move(view));
    return ref;
  }
  const void* find_view(bool input, const std::type_info& type) const;
  void keep_view(bool input, const std::type_info& type, std::shared_ptr<const void> view);

  std::uint64_t index_ = 0;
  const JobInfo* job_ = nullptr;
  class Resources* res_ = nullptr;
  const std::shared_ptr<Resources>* owner_ = nullptr;  // holds res_
  std::string* result_ = nullptr;
  bool has_result_ = false;
  std::atomic<std::int32_t>* task_pid_ = nullptr;  // in the slot segment; null where there is none
  bool named_process_ = false;                     // set_task_process was called with a pid
};

/// Thrown by a kernel whose task is a process of its own (a command run per task, as
/// `taskfarm run --exec` does) when that process failed: the master records the attempt as cause
/// `exit` with `exit_code`, or `signal` with `signal` — what the process did, not an exception —
/// with `what()` (the command as run) for its message and the process's `stderr_tail`.
/// `runtime` (how long the process ran) goes to the joblog; `out_of_memory` makes the cause
/// `memory` (the process failed for want of memory under the worker's limit), status kept.
class TaskProcessFailed : public Error {
 public:
  /// Exactly one of `exit_code` (1-255) and `signal` (1-64) is non-zero.
  TaskProcessFailed(const std::string& command, int exit_code, int signal, std::string stderr_tail,
                    std::chrono::nanoseconds runtime = {}, bool out_of_memory = false)
      : Error(command), exit_code_(exit_code), signal_(signal), stderr_tail_(std::move(stderr_tail)),
        runtime_(runtime), out_of_memory_(out_of_memory) {}
  int exit_code() const noexcept { return exit_code_; }
  int signal() const noexcept { return signal_; }
  const std::string& stderr_tail() const noexcept { return stderr_tail_; }
  std::chrono::nanoseconds runtime() const noexcept { return runtime_; }
  bool out_of_memory() const noexcept { return out_of_memory_; }

 private:
  int exit_code_ = 0, signal_ = 0;
  std::string stderr_tail_;
  std::chrono::nanoseconds runtime_{};
  bool out_of_memory_ = false;
};

/// A kernel: does task `ctx.index()`.
using Kernel = std::function<void(TaskContext&)>;

/// Serves the master with one kernel. Returns the process exit code (0 after an orderly stop;
/// 2 when started by hand, after printing how to run the program).
int run_worker(Kernel kernel);
/// Serves the master with named kernels (the job names the kernel to run).
int run_worker(std::map<std::string, Kernel> kernels);

/// What a worker program may add to serving.
struct WorkerOptions {
  /// Called once per job on this worker, after its arrays are attached and before its first
  /// task is taken — outside every task's clock (task_timeout): for work a job needs once that
  /// is too slow to do inside its first task (the Python runtime imports NumPy here when the
  /// job has an array, which t.output / t.input are views of). What it throws ends the worker
  /// as a failed start of the job.
  std::function<void(const JobInfo&)> on_job;
};
int run_worker(std::map<std::string, Kernel> kernels, WorkerOptions options);

/// True when this process was started by a taskfarm master (TASKFARM_WORKER is set).
bool started_by_master() noexcept;

/// Says Hello to the master now, before slow start-up work (Python's imports, loading a
/// model), so the master's start timeout (`--start-timeout`, 5 s) covers only the process's own
/// start; the master hands out work meanwhile, which waits until run_worker serves it. Without
/// it run_worker says Hello first thing. Does nothing when not started by a master, or twice.
/// Throws taskfarm::Error if the master cannot be told (its channel is gone).
void greet();

}  // namespace taskfarm
