// WarmPool: a Farm of warm forked workers (Farm::fork_warm) whose runners decode each call from
// its kernel string (detail/warm_kernels.hpp). Master side, plus the worker-side decoding.
#include "taskfarm/warm_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <optional>

#include "task_mark.hpp"
#include "taskfarm/detail/protocol.hpp"

namespace taskfarm {

namespace detail {

void WarmAttachments::begin_job() {
  ++job_;
  std::erase_if(entries_, [this](const Entry& e) {
    return job_ - e.last_job > kForgetAfter || ::access(("/dev/shm/" + e.shm_name).c_str(), F_OK) != 0;
  });
}

std::shared_ptr<void> WarmAttachments::find(const std::string& key) {
  for (auto& e : entries_)
    if (e.key == key) {
      e.last_job = job_;
      return e.value;
    }
  return nullptr;
}

void WarmAttachments::keep(const std::string& key, const std::string& shm_name, std::shared_ptr<void> value) {
  entries_.push_back({key, shm_name, std::move(value), job_});
}

std::shared_ptr<ShmSegment> WarmAttachments::segment(const std::string& name) {
  const std::string key = "segment|" + name;
  if (auto v = find(key)) return std::static_pointer_cast<ShmSegment>(v);
  auto s = std::make_shared<ShmSegment>(ShmSegment::open(name, true));
  keep(key, name, s);
  return s;
}

WarmCallHead::WarmCallHead(std::string_view payload) {
  std::uint64_t length = 0;
  if (payload.size() < sizeof fn_address + sizeof length) throw Error("warm worker: a call's kernel string is too short for its head");
  std::memcpy(&fn_address, payload.data(), sizeof fn_address);
  std::memcpy(&length, payload.data() + sizeof fn_address, sizeof length);
  payload.remove_prefix(sizeof fn_address + sizeof length);
  if (length > payload.size()) throw Error("warm worker: a call's kernel string is shorter than the result segment's name it announces");
  results = payload.substr(0, length);
  args = payload.substr(length);
}

std::unique_ptr<JobRunner> make_warm_runner(const JobInfo& job, WarmAttachments& att) {
  std::uint64_t address = 0;
  if (job.kernel.size() < sizeof address) throw Error("warm worker: a job without a warm call (kernel string too short)");
  std::memcpy(&address, job.kernel.data(), sizeof address);
  att.begin_job();
  const auto entry = reinterpret_cast<WarmEntry>(static_cast<std::uintptr_t>(address));
  return entry(job, std::string_view(job.kernel).substr(sizeof address), att);
}

}  // namespace detail

struct WarmPool::State {
  std::optional<Farm> farm;  // made at the first call
  ShmSegment buffer;         // results of trivially copyable types, reused across calls
  pid_t owner = ::getpid();
  bool busy = false;
};

WarmPool::WarmPool(PoolOptions options) : options_(std::move(options)), state_(std::make_unique<State>()) {
  if (options_.backend != Backend::fork)
    throw Error("taskfarm::WarmPool: it keeps forked workers; for Backend::threads use Pool");
  resolve_workers(options_.workers);  // validate now
}

WarmPool::WarmPool(WarmPool&&) noexcept = default;

WarmPool& WarmPool::operator=(WarmPool&& other) noexcept {
  if (this == &other) return *this;
  release();
  options_ = std::move(other.options_);
  report_ = std::move(other.report_);
  state_ = std::move(other.state_);
  return *this;
}

WarmPool::~WarmPool() { release(); }

void WarmPool::release() noexcept {
  if (!state_) return;
  if (state_->owner != ::getpid()) {
    // A forked copy (one of its own workers, or a fork the user made): the workers and segments
    // are the creator's to stop and remove. This copy dies with the process.
    static_cast<void>(state_.release());  // NOLINT: deliberately never freed
    return;
  }
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm: closing a WarmPool: %s\n", e.what());
  }
  state_.reset();
}

std::size_t WarmPool::workers() const { return static_cast<std::size_t>(resolve_workers(options_.workers)); }

void WarmPool::close() {
  if (!state_ || state_->owner != ::getpid()) return;
  state_->farm.reset();  // Farm's destructor stops and reaps every worker
  state_->buffer = ShmSegment();
}

JobSpec WarmPool::spec(const Extent& extent, ResultMode results, std::string kernel) {
  JobSpec job;
  job.extent = extent.dims;
  job.results = results;
  job.kernel = std::move(kernel);
  return job;
}

void WarmPool::run(const JobSpec& job, FarmObserver* obs) {
  const char* const what = "taskfarm::WarmPool";  // (a std::string would allocate at every call)
  if (!state_) throw Error(std::string(what) + ": used after it was moved from (it owns nothing now)");
  if (detail::task_of() == state_.get())
    throw Error(std::string(what) + " called from inside one of its own workers: make a new pool there, or call the serial loop");
  if (state_->owner != ::getpid())
    throw Error(std::string(what) + " called in process " + std::to_string(::getpid()) + ", a fork of process " +
                std::to_string(state_->owner) + " that made it and owns its workers: make a new WarmPool in this process");
  if (state_->busy) throw Error(std::string(what) + " called while another of its calls runs (from a sink): use a second pool");
  // The call travels as the Job message's kernel string, whose length the protocol bounds (a
  // worker refuses a longer one, and would die at every start).
  constexpr std::size_t kMaxCall = proto::kMaxText;
  if (job.kernel.size() > kMaxCall)
    throw Error(std::string(what) + ": the call's arguments take " + std::to_string(job.kernel.size()) + " bytes serialised, more than the " +
                std::to_string(kMaxCall) + " that travel with a call: pass large data in a SharedArray");
  if (!state_->farm) {
    // Each worker's own state lives in its copy of this object (forked): its attachments, and
    // whether it has run the initializer yet. The master never calls the factory.
    struct InWorker {
      detail::WarmAttachments attachments;
      bool started = false;
    };
    auto in_worker = std::make_shared<InWorker>();
    const void* mark = state_.get();
    std::function<void()> init = options_.initializer;
    WarmRunnerFactory make = [in_worker, mark, init](const JobInfo& info) {
      if (!in_worker->started) {
        in_worker->started = true;
        detail::set_task_of(mark);
        if (init) init();
      }
      return detail::make_warm_runner(info, in_worker->attachments);
    };
    state_->farm.emplace(Farm::fork_warm(options_, std::move(make)));
  }
  state_->busy = true;
  struct Idle {
    State& s;
    ~Idle() { s.busy = false; }
  } idle{*state_};
  report_ = state_->farm->run(job, obs);
}

std::pair<void*, std::string> WarmPool::result_buffer(std::size_t bytes) {
  if (!state_) throw Error("taskfarm::WarmPool: used after it was moved from (it owns nothing now)");
  if (bytes == 0) return {nullptr, {}};
  if (state_->buffer.size() < bytes) {
    state_->buffer = ShmSegment();  // drop the old one first: /dev/shm holds only one at a time
    state_->buffer = ShmSegment::create(bytes, "results");
  }
  return {state_->buffer.data(), state_->buffer.name()};
}

void WarmPool::throw_if_failed() const {
  const bool incomplete = !report_.failures.empty() || !report_.unfinished.empty() || !report_.restored_headers.empty();
  if (!report_.farm_error.empty() || (options_.throw_on_failure && incomplete)) throw TaskFailed(report_);
}

}  // namespace taskfarm
