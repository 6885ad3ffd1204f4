// Program mode: the worker program's entry. The master passes the channel as fd 3 and the
// slot segment's name in TASKFARM_WORKER ("<fd>:<slot name>:<master pid>"); it has set the
// process group, the parent-death signal and the memory limit before the exec (spawn.cpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <typeinfo>

#include "taskfarm/detail/array_handle.hpp"
#include "taskfarm/detail/slot.hpp"
#include "taskfarm/detail/worker_loop.hpp"
#include "taskfarm/input_lines.hpp"

namespace taskfarm {

/// What a job's kernels can reach: the arrays and lines attached once per job.
class Resources {
 public:
  explicit Resources(const JobInfo& job) {
    if (!job.output_handle.empty()) output = AnySharedArray::attach(job.output_handle);
    // The input is read-only by contract, whatever its handle says: a stray write faults.
    if (!job.input_handle.empty()) input = AnySharedArray::attach_read_only(job.input_handle);
    if (!job.lines_handle.empty()) lines = InputLines::attach(job.lines_handle);
  }
  std::optional<AnySharedArray> output, input;
  std::optional<InputLines> lines;
  // Typed views handed out by output_as/input_as, one per array (its element type fixed).
  const std::type_info* view_type[2] = {nullptr, nullptr};
  std::shared_ptr<const void> view[2];
};

const void* TaskContext::find_view(bool input, const std::type_info& type) const {
  const int k = input ? 1 : 0;
  return res_->view_type[k] != nullptr && *res_->view_type[k] == type ? res_->view[k].get() : nullptr;
}

void TaskContext::keep_view(bool input, const std::type_info& type, std::shared_ptr<const void> view) {
  const int k = input ? 1 : 0;
  res_->view_type[k] = &type;
  res_->view[k] = std::move(view);
}

std::uint64_t TaskContext::coord(std::size_t axis) const {
  const auto& dims = job_->extent;
  if (axis >= dims.size()) throw Error("axis " + std::to_string(axis) + " out of range for a " + std::to_string(dims.size()) + "-D index space");
  std::uint64_t i = index_;
  for (std::size_t a = dims.size() - 1; a > axis; --a) i /= dims[a];
  return i % dims[axis];
}

std::shared_ptr<const void> TaskContext::attachments() const { return *owner_; }

void TaskContext::set_task_process(pid_t pid) noexcept {
  if (task_pid_ == nullptr) return;
  task_pid_->store(static_cast<std::int32_t>(pid), std::memory_order_release);
  named_process_ = pid != 0;
}

AnySharedArray& TaskContext::output() {
  if (!res_->output) throw Error("this run has no output array (taskfarm run --output)");
  return *res_->output;
}

const AnySharedArray& TaskContext::input() {
  if (!res_->input) throw Error("this run has no input array (taskfarm run --input)");
  return *res_->input;
}

std::string_view TaskContext::line() const {
  if (!res_->lines) throw Error("this run has no input lines (taskfarm run --input-lines)");
  return res_->lines->line(index_);
}

std::string_view TaskContext::line(std::uint64_t k) const {
  if (!res_->lines) throw Error("this run has no input lines (taskfarm run --input-lines)");
  return res_->lines->line(k);
}

/// The previous job's attachments, kept while the next job names the same files: a warm worker
/// then writes into pages it has mapped already (a page fault costs ~1 us here). "The same"
/// means the same handle and the same file behind it (device and inode, checked with a stat
/// per handle per job): a segment or .npy path may be removed and created anew under the same
/// name, and then it is attached again. An inode cannot be reused while it is mapped here, so
/// equal numbers mean the same file. Holds the mappings until the next job or the worker's exit.
class ResourceCache {
 public:
  std::shared_ptr<Resources> get(const JobInfo& job) {
    const std::array<std::string, 3> handles{job.output_handle, job.input_handle, job.lines_handle};
    if (res_ && handles == handles_ && identities(handles) == ids_ && all_known(ids_)) return res_;
    res_.reset();  // unmap the old ones first
    for (int attempt = 0;; ++attempt) {
      const auto before = identities(handles);
      res_ = std::make_shared<Resources>(job);
      ids_ = identities(handles);
      if (ids_ == before || attempt == 2) break;  // replaced while we attached: again
    }
    handles_ = handles;
    return res_;
  }

 private:
  using Identity = std::optional<std::pair<dev_t, ino_t>>;  // nullopt: cannot stat it
  static Identity identity(const std::string& handle, bool array) {
    if (handle.empty()) return std::pair<dev_t, ino_t>{0, 0};
    std::string path = "/dev/shm/" + handle;  // an input-lines segment
    if (array) {
      try {
        const detail::ParsedHandle h = detail::parse_handle(handle);
        path = h.backing == AnySharedArray::Backing::shm ? "/dev/shm/" + h.name : h.name;
      } catch (const Error&) {
        return std::nullopt;  // attaching it will say what is wrong with it
      }
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return std::pair<dev_t, ino_t>{st.st_dev, st.st_ino};
  }
  static std::array<Identity, 3> identities(const std::array<std::string, 3>& h) {
    return {identity(h[0], true), identity(h[1], true), identity(h[2], false)};
  }
  static bool all_known(const std::array<Identity, 3>& ids) {
    return std::all_of(ids.begin(), ids.end(), [](const Identity& i) { return i.has_value(); });
  }

  std::shared_ptr<Resources> res_;
  std::array<std::string, 3> handles_;
  std::array<Identity, 3> ids_;
};

/// Runs named kernels through a TaskContext.
class KernelRunner final : public JobRunner {
 public:
  KernelRunner(const std::map<std::string, Kernel>& kernels, ResourceCache& cache, std::atomic<std::int32_t>* task_pid,
               const WorkerOptions& options)
      : kernels_(kernels), cache_(cache), task_pid_(task_pid), options_(options) {}

  void begin_job(const JobInfo& job) override {
    job_ = &job;
    if (kernels_.size() == 1 && (job.kernel.empty() || kernels_.begin()->first.empty())) {
      kernel_ = &kernels_.begin()->second;
    } else {
      auto it = kernels_.find(job.kernel);
      if (it == kernels_.end()) throw Error("this worker program has no kernel named '" + job.kernel + "'");
      kernel_ = &it->second;
    }
    res_ = cache_.get(job);
    if (options_.on_job) options_.on_job(job);
  }

  void run(std::uint64_t i, std::string& result) override {
    TaskContext ctx;
    ctx.index_ = i;
    ctx.job_ = job_;
    ctx.res_ = res_.get();
    ctx.owner_ = &res_;
    ctx.result_ = &result;
    ctx.task_pid_ = task_pid_;
    const ForgetProcess forget{ctx};
    (*kernel_)(ctx);
    if (job_->wants_result && !ctx.has_result_) throw Error("kernel set no result for index " + std::to_string(i));
  }

  void run_range(std::uint64_t begin, std::uint64_t end, std::atomic<std::uint64_t>& current) override {
    std::string unused;  // no result is wanted on this path; set_result goes nowhere
    TaskContext ctx;
    ctx.job_ = job_;
    ctx.res_ = res_.get();
    ctx.owner_ = &res_;
    ctx.result_ = &unused;
    ctx.task_pid_ = task_pid_;
    const ForgetProcess forget{ctx};
    const Kernel& kernel = *kernel_;
    for (std::uint64_t i = begin; i < end; ++i) {
      current.store(i, std::memory_order_release);
      ctx.index_ = i;
      kernel(ctx);
    }
  }

 private:
  // A process a kernel named is not the task's once the kernel returned (or threw).
  struct ForgetProcess {
    TaskContext& ctx;
    ~ForgetProcess() {
      if (ctx.named_process_) ctx.set_task_process(0);
    }
  };

  const std::map<std::string, Kernel>& kernels_;
  ResourceCache& cache_;
  std::atomic<std::int32_t>* task_pid_;
  const WorkerOptions& options_;
  const JobInfo* job_ = nullptr;
  const Kernel* kernel_ = nullptr;
  std::shared_ptr<Resources> res_;
};

bool started_by_master() noexcept { return std::getenv("TASKFARM_WORKER") != nullptr; }

namespace {
bool g_greeted = false;  // greet() sent Hello: run_worker does not send it again
}  // namespace

void greet() {
  const char* env = std::getenv("TASKFARM_WORKER");
  int fd = -1;
  if (g_greeted || env == nullptr || std::sscanf(env, "%d:", &fd) != 1 || fd < 0) return;
  // A second descriptor of the channel: run_worker owns the first (closing this one does not
  // close the channel, a SEQPACKET socket of which the master holds the other end).
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup) throw_errno("greet: cannot duplicate the master's channel");
  Channel(std::move(dup)).send(proto::Hello{static_cast<std::int32_t>(::getpid())}, std::chrono::seconds(10));
  g_greeted = true;
}

int run_worker(Kernel kernel) { return run_worker(std::map<std::string, Kernel>{{"", std::move(kernel)}}); }

int run_worker(std::map<std::string, Kernel> kernels) { return run_worker(std::move(kernels), WorkerOptions{}); }

int run_worker(std::map<std::string, Kernel> kernels, WorkerOptions options) {
  const char* env = std::getenv("TASKFARM_WORKER");
  if (env == nullptr) {
    char exe[512] = "this program";
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = '\0';
    std::fprintf(stderr, "%s is a taskfarm worker program: run it through the master, e.g. `taskfarm run --tasks N -- %s ...`\n", exe, exe);
    return detail::kExitStartedByHand;
  }
  int fd = -1, master = 0;
  char name[256] = {};
  if (std::sscanf(env, "%d:%255[^:]:%d", &fd, name, &master) != 3 || fd < 0) {
    std::fprintf(stderr, "taskfarm worker: malformed TASKFARM_WORKER='%s'\n", env);
    return detail::kExitSetupFailed;
  }
  ::unsetenv("TASKFARM_WORKER");  // programs the kernel starts are not workers
  // ... nor do they get its channel: it came through exec (so without close-on-exec), and a
  // command a kernel runs (--exec's, system(), a subprocess) would inherit it as fd 3 — one that
  // writes there (`echo … >&3`, `gpg --status-fd 3`) corrupted the protocol and got another task
  // charged, one that reads it could take the worker's messages (outside pass h12b N4).
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  detail::bind_to_parent(master);
  ShmSegment slot;
  try {
    slot = ShmSegment::open(name, true);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm worker: %s\n", e.what());
    return detail::kExitSetupFailed;
  }
  ResourceCache cache;
  // The mapping moves into serve() with the segment; its address stays.
  std::atomic<std::int32_t>* task_pid = &slot_state(slot).task_pid;
  detail::RunnerFactory factory = [&kernels, &cache, task_pid, &options](const JobInfo&) {
    return std::make_unique<KernelRunner>(kernels, cache, task_pid, options);
  };
  return detail::serve(Channel(UniqueFd(fd)), std::move(slot), factory, g_greeted);
}

}  // namespace taskfarm
