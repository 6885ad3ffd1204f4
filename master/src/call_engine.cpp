#include "call_engine.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "launcher.hpp"
#include "proc_info.hpp"
#include "task_mark.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/worker.hpp"

namespace taskfarm::detail {
namespace {

// The run's index space: call ids, never reused in a CallEngine's life.
constexpr std::uint64_t kCallSpace = std::uint64_t{1} << 62;
// Ending a run whose calls are all done takes a few steps (the feed's close, the workers' Stop
// and exit); this bounds them.
constexpr auto kEndDeadline = std::chrono::seconds(5);

// In a call's worker: runs the call whose id is the index, from this process's copy of the
// table. The worker was forked after the call was submitted, so the call is there.
class CallRunner final : public JobRunner {
 public:
  explicit CallRunner(const std::unordered_map<std::uint64_t, std::shared_ptr<Call>>& calls) : calls_(calls) {}
  void run(std::uint64_t i, std::string& result) override {
    const auto it = calls_.find(i);
    if (it == calls_.end() || !it->second->run)
      throw Error("taskfarm: submitted call " + std::to_string(i) + " is not in this worker (forked before the call)");
    it->second->run(result);
  }

 private:
  const std::unordered_map<std::uint64_t, std::shared_ptr<Call>>& calls_;
};

// A call is a one-index task of the engine; what differs from the Pool's map options.
FarmOptions call_options(FarmOptions o) {
  o.chunk = 1;
  o.max_tasks_per_worker = 1;  // a worker runs one call: it is forked after that call's submit
  o.halt = Halt::never;        // calls are independent: one's failure stops no other
  o.reap_descendants = false;  // the Pool's map farm is the one that may (farm.hpp)
  return o;
}

}  // namespace

CallEngine::Feed::Feed() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!event_) throw_errno("eventfd for submitted calls");
}

void CallEngine::Feed::signal() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(event_.get(), &one, sizeof one);  // only fails when the counter is full: readable anyway
}

void CallEngine::Feed::add(std::uint64_t id) {
  if (!fresh_.empty() && fresh_.back().second == id) ++fresh_.back().second;
  else fresh_.emplace_back(id, id + 1);
  signal();
}

void CallEngine::Feed::close() {
  closed_ = true;
  signal();
}

RangeFeed::Batch CallEngine::Feed::read() {
  std::uint64_t v;
  [[maybe_unused]] auto r = ::read(event_.get(), &v, sizeof v);
  Batch b{std::move(fresh_), closed_};
  fresh_.clear();
  return b;
}

void CallEngine::Settler::on_result(const IndexResult& r) {
  std::string bytes(r.value.data(), r.value.size());
  e_.settle(r.index, &bytes, nullptr);
}

void CallEngine::Settler::on_failure(const FailureRecord& f) {
  if (f.index && f.final) e_.settle(*f.index, nullptr, &f);  // retried attempts, and deaths between calls, settle nothing
}

CallEngine::CallEngine(FarmOptions options, std::size_t workers, const void* mark)
    : fork_with_threads_(options.fork_with_threads),
      factory_([this, mark]() -> std::unique_ptr<JobRunner> {
        set_task_of(mark);  // a call of the same Pool from inside this worker is refused
        return std::make_unique<CallRunner>(calls_);
      }),
      supervisor_(call_options(options), workers, [&] {
        // The same limits a map's workers get (spawn.cpp), for as many processes at once.
        SpawnLimits limits = spawn_limits(options.memory_limit, options.set_thread_env, workers);
        limits.fork_with_threads = options.fork_with_threads;
        limits.stdout_to_stderr = options.stdout_to_stderr;
        auto l = std::make_unique<ForkLauncher>(std::move(limits));
        l->use(&factory_);
        return l;
      }()) {
  job_.extent = {kCallSpace};
  job_.results = ResultMode::blobs;
  job_.feed = &feed_;
}

CallEngine::~CallEngine() {
  supervisor_.abandon();  // SIGKILL and reap every call still running
  // Their futures outlive this engine: they must learn that these calls will never finish.
  for (auto& [id, c] : calls_) c->state = Call::State::closed;
}

std::shared_ptr<Call> CallEngine::submit(std::function<void(std::string&)> run) {
  proc::require_single_thread(fork_with_threads_, "Pool::submit in fork mode");
  auto c = std::make_shared<Call>();
  c->run = std::move(run);
  c->id = next_id_++;
  calls_.emplace(c->id, c);
  feed_.add(c->id);
  poll(std::chrono::milliseconds(0));
  return c;
}

void CallEngine::settle(std::uint64_t id, std::string* bytes, const FailureRecord* failure) {
  const auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call& c = *it->second;
  if (bytes != nullptr) {
    c.bytes = std::move(*bytes);
    c.state = Call::State::done;
  } else {
    c.failure = *failure;
    c.state = Call::State::failed;
  }
  c.run = nullptr;  // what it captured is not needed in the master any more
  calls_.erase(it);
  ++completed_;
}

void CallEngine::poll(std::chrono::milliseconds timeout) {
  if (!open_) {
    if (feed_.empty()) return;
    // A thread started since the call was queued makes a fork unsafe: the call stays queued
    // and the Error reaches whoever drives the pool.
    proc::require_single_thread(fork_with_threads_, "Pool::submit in fork mode");
    feed_.reopen();
    supervisor_.begin(job_, &settler_);
    open_ = true;
  } else {
    proc::require_single_thread(fork_with_threads_, "Pool::submit in fork mode");
  }
  // The first step takes in what is ready (new calls, messages, exits) without waiting; the
  // second starts workers for new calls and waits for what comes next.
  const std::size_t before = completed_;
  step(0);
  if (open_ && completed_ == before) step(static_cast<int>(timeout.count()));
  end_if_idle();
}

void CallEngine::step(int max_wait_ms) {
  bool more = false;
  try {
    more = supervisor_.step(max_wait_ms);
  } catch (...) {
    supervisor_.abandon();
    open_ = false;
    for (auto& [id, c] : calls_) c->state = Call::State::closed;
    calls_.clear();
    throw;
  }
  if (!more) end_run();
}

// Nothing in flight: the run ends, so that no worker outlives the calls (each was told to stop
// after its call; this reaps them).
void CallEngine::end_if_idle() {
  if (!open_ || !calls_.empty()) return;
  feed_.close();
  const auto deadline = std::chrono::steady_clock::now() + kEndDeadline;
  while (open_) {
    if (std::chrono::steady_clock::now() >= deadline) {
      supervisor_.abandon();
      open_ = false;
      return;
    }
    step(10);
  }
}

void CallEngine::end_run() {
  open_ = false;
  const RunReport report = supervisor_.end();
  if (calls_.empty()) return;
  // The run ended with calls unfinished: the farm could not go on (a worker that cannot be
  // started, say). Each fails with the run's cause.
  FailureRecord why;
  if (!report.failures.empty()) why = report.failures.back();
  why.cause = report.failures.empty() ? FailureCause::start : why.cause;
  if (why.message.empty()) why.message = report.farm_error.empty() ? "the run of submitted calls ended early" : report.farm_error;
  why.final = true;
  std::vector<std::uint64_t> ids;
  for (const auto& [id, c] : calls_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    why.index = id;
    settle(id, nullptr, &why);
  }
  while (!feed_.empty()) static_cast<void>(feed_.read());  // they were settled above
}

}  // namespace taskfarm::detail
