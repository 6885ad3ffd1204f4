#include "async_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proc_info.hpp"
#include "taskfarm/detail/caught.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Pipe record: u8 status (0 value, 1 exception, 2 out of memory), then the value's bytes, or
// "type\0what".
enum : char { kValue = 0, kThrew = 1, kOutOfMemory = 2 };

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// Runs `t` and encodes the outcome as a pipe record (in the child, or on a task thread).
std::string run_encoded(AsyncTask& t) {
  std::string out(1, kValue);
  try {
    t.run(out);
  } catch (...) {
    const CaughtException x = caught_exception();
    out = std::string(1, x.out_of_memory ? kOutOfMemory : kThrew) + x.type + '\0' + x.message;
  }
  return out;
}

// Reads what the call's pipe holds now; at EOF closes it (a closed pipe would poll readable
// forever while the process lives on).
void read_pipe(AsyncTask& t) {
  char buf[65536];
  while (t.pipe) {
    const ssize_t n = ::read(t.pipe.get(), buf, sizeof buf);
    if (n > 0) t.bytes.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else if (n == 0) t.pipe.reset();
    else return;  // nothing more for now
  }
}

std::chrono::milliseconds until(Clock::time_point when, Clock::time_point now) {
  return std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(when - now));
}

}  // namespace

AsyncRunner::~AsyncRunner() {
  for (auto& t : running_)  // all at once: their ends overlap
    if (t->proc) t->proc->kill_group(SIGKILL);
  for (auto& t : running_) {
    if (t->thread.joinable()) t->thread.join();  // a thread cannot be killed: wait for the call
    if (t->proc) t->proc->kill_and_reap();      // SIGKILLed: bounded, and said if it cannot be reaped
    t->proc.reset();
    t->pipe.reset();
  }
  // Their futures outlive this runner: they must learn that these calls will never finish.
  for (auto& t : running_) t->state = AsyncTask::State::closed;
  for (auto& t : pending_) t->state = AsyncTask::State::closed;
}

std::shared_ptr<AsyncTask> AsyncRunner::submit(std::function<void(std::string&)> run) {
  if (!opt_.threads) proc::require_single_thread(opt_.fork_with_threads, "Pool::submit in fork mode");
  auto t = std::make_shared<AsyncTask>();
  t->run = std::move(run);
  t->id = next_id_++;
  pending_.push_back(t);
  poll(std::chrono::milliseconds(0));
  return t;
}

void AsyncRunner::start_thread(const std::shared_ptr<AsyncTask>& t) {
  t->state = AsyncTask::State::running;
  t->started = Clock::now();
  running_.push_back(t);
  t->thread = std::thread([this, t] {
    std::string out = run_encoded(*t);
    std::lock_guard lock(mu_);
    t->thread_out = std::move(out);
    t->thread_finished = true;
    cv_.notify_all();
  });
}

void AsyncRunner::poll_threads(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<AsyncTask>> finished, still;
  {
    std::unique_lock lock(mu_);
    auto any_finished = [&] {
      for (auto& t : running_)
        if (t->thread_finished) return true;
      return false;
    };
    cv_.wait_for(lock, timeout, any_finished);
    for (auto& t : running_) (t->thread_finished ? finished : still).push_back(t);
  }
  running_ = std::move(still);
  for (auto& t : finished) {
    t->thread.join();
    settle(t, std::move(t->thread_out), true, FailureRecord{});
  }
}

void AsyncRunner::start_pending() {
  while (!pending_.empty() && running_.size() < opt_.workers) {
    // A thread started since the call was queued makes this fork unsafe: the call stays queued
    // and the Error reaches whoever drives the pool.
    if (!opt_.threads) proc::require_single_thread(opt_.fork_with_threads, "Pool::submit in fork mode");
    auto t = pending_.front();
    pending_.pop_front();
    std::string why;
    int err = 0;
    try {
      start(t);
      continue;
    } catch (const SpawnError& e) {  // its setup cannot be done (the memory limit): never will
      why = e.what(), err = e.error();
    } catch (const SystemError& e) {
      // Out of processes (EAGAIN under ulimit -u), memory or descriptors: the call stays queued
      // and starts when a running one has ended; with none running, nothing would free one.
      if (for_want_of_resources(e.code()) && !running_.empty()) {
        pending_.push_front(t);
        return;
      }
      why = e.what(), err = e.code();
    }
    FailureRecord f;  // a call that cannot start fails with cause `start`, as a farm worker does
    f.cause = FailureCause::start;
    f.error = err;
    f.message = why;
    f.index = t->id;
    f.attempt = t->attempt;
    f.final = true;
    t->failure = std::move(f);
    t->state = AsyncTask::State::failed;
    ++completed_;
  }
}

void AsyncRunner::start(const std::shared_ptr<AsyncTask>& t) {
  if (opt_.threads) return start_thread(t);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe for a submitted call");
  UniqueFd rd(fds[0]), wr(fds[1]);
  // The child keeps none of the master's descriptors for other calls (a result pipe kept open
  // by another call's process would never reach EOF).
  std::vector<int> close_in_child{rd.get()};
  for (const auto& r : running_)
    if (r->proc) close_in_child.insert(close_in_child.end(), {r->proc->pidfd(), r->proc->stderr_fd(), r->pipe.get()});
  AsyncTask& task = *t;
  const int out = wr.get();
  t->proc.emplace(spawn_child(opt_.limits, close_in_child, [&task, out] {
    write_all(out, run_encoded(task));
    return 0;
  }, "a submitted call"));
  ::fcntl(rd.get(), F_SETFL, O_NONBLOCK);
  t->pipe = std::move(rd);
  t->bytes.clear();
  t->state = AsyncTask::State::running;
  t->started = Clock::now();
  t->timed_out = false;
  t->kill_at = {};
  running_.push_back(t);
}

// The task timeout, as the farm applies it: SIGTERM to the process group, SIGKILL after the grace.
void AsyncRunner::check_deadline(AsyncTask& t, Clock::time_point now) {
  if (opt_.timeout.count() <= 0 || !t.proc) return;
  if (!t.timed_out && now - t.started >= opt_.timeout) {
    t.timed_out = true;
    t.proc->kill_group(SIGTERM);
    t.kill_at = now + opt_.kill_grace;
  } else if (t.timed_out && t.kill_at != Clock::time_point{} && now >= t.kill_at) {
    t.proc->kill_group(SIGKILL);
    t.kill_at = {};
  }
}

void AsyncRunner::finish(const std::shared_ptr<AsyncTask>& t) {
  read_pipe(*t);
  ChildProcess& p = *t->proc;
  std::optional<ExitStatus> st;
  try {
    st = p.try_reap();  // its pidfd is readable: it has ended
  } catch (const std::exception&) {
  }
  if (!st) st = p.kill_and_reap();  // bounded; nullopt if it could not be reaped
  p.drain_stderr(opt_.forward_stderr, /*last=*/true);
  FailureRecord f;
  f.pid = p.pid();
  f.stderr_tail = p.stderr_tail();
  f.runtime = Clock::now() - t->started;  // the attempt's run, as the farm places a worker's
  const bool exited_ok = st && !st->unknown && !st->signaled && st->code == 0;
  if (!exited_ok || t->bytes.empty()) {
    // A call that crashed on its own after its timeout's SIGTERM died of its own cause.
    const bool own_death = st && st->signaled && st->code != SIGTERM && st->code != SIGKILL;
    if (t->timed_out && !own_death) {
      f.cause = FailureCause::timeout;
      f.signal = st && st->signaled ? st->code : 0;
      f.message = "ran longer than " + std::to_string(opt_.timeout.count()) + " ms; sent SIGTERM, then SIGKILL after " +
                  std::to_string(opt_.kill_grace.count()) + " ms";
    } else if (st && st->signaled) {
      f.cause = FailureCause::signal;
      f.signal = st->code;
    } else {
      f.cause = FailureCause::exit;
      f.exit_code = st && !st->unknown ? st->code : -1;
      if (!st) f.message = "it was killed but could not be reaped: its exit status is not known";
      else if (st->unknown) f.message = "its exit status was taken by another wait() in this process";
      else if (st->code == 0) f.message = "it exited before returning its result";
    }
  }
  t->proc.reset();
  t->pipe.reset();
  settle(t, std::move(t->bytes), exited_ok, std::move(f));
}

void AsyncRunner::settle(const std::shared_ptr<AsyncTask>& t, std::string out, bool exited_ok, FailureRecord f) {
  f.index = t->id;
  f.attempt = t->attempt;
  if (exited_ok && !out.empty() && out[0] == kValue) {
    t->bytes = out.substr(1);
    t->state = AsyncTask::State::done;
    ++completed_;
    return;
  }
  if (exited_ok && !out.empty()) {
    const bool oom = out[0] == kOutOfMemory;
    f.cause = oom ? FailureCause::memory : FailureCause::exception;
    const std::string rest = out.substr(1);
    const auto nul = rest.find('\0');
    f.exception_type = rest.substr(0, nul);
    f.message = nul == std::string::npos ? "" : rest.substr(nul + 1);
    if (oom && opt_.limits.memory_limit != 0) f.message += " (worker memory limit " + format_bytes(opt_.limits.memory_limit) + ")";
  }
  t->bytes.clear();
  f.final = !may_retry(t->attempt, opt_.retries);
  if (f.final) {
    t->failure = std::move(f);
    t->state = AsyncTask::State::failed;
    ++completed_;
  } else {
    ++t->attempt;
    t->state = AsyncTask::State::pending;
    pending_.push_front(t);
  }
}

void AsyncRunner::poll(std::chrono::milliseconds timeout) {
  start_pending();
  if (running_.empty()) return;
  if (opt_.threads) poll_threads(timeout);
  else poll_processes(timeout);
  start_pending();
}

void AsyncRunner::poll_processes(std::chrono::milliseconds timeout) {
  // Per call: its pidfd, result pipe and stderr (-1 once closed: poll skips those).
  std::vector<pollfd> fds;
  Clock::time_point now = Clock::now();
  std::chrono::milliseconds wait = timeout;
  for (auto& t : running_) {
    fds.push_back(pollfd{t->proc->pidfd(), POLLIN, 0});
    fds.push_back(pollfd{t->pipe.get(), POLLIN, 0});
    fds.push_back(pollfd{t->proc->stderr_fd(), POLLIN, 0});
    if (opt_.timeout.count() > 0)  // wake for the next TERM or KILL that falls due
      wait = std::min(wait, t->timed_out ? (t->kill_at == Clock::time_point{} ? wait : until(t->kill_at, now))
                                         : until(t->started + opt_.timeout, now));
  }
  if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) < 0 && errno != EINTR)
    throw_errno("poll over submitted calls");
  now = Clock::now();
  std::vector<std::shared_ptr<AsyncTask>> still;
  for (std::size_t k = 0; k < running_.size(); ++k) {
    auto& t = running_[k];
    if (fds[3 * k + 1].revents != 0) read_pipe(*t);  // keep the pipe drained: big results
    if (fds[3 * k + 2].revents != 0) t->proc->drain_stderr(opt_.forward_stderr);
    if (fds[3 * k].revents != 0) {
      finish(t);
      continue;
    }
    check_deadline(*t, now);
    still.push_back(t);
  }
  running_ = std::move(still);
}

void AsyncRunner::wait_completed(std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (completed_ >= count || in_flight() == 0) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

bool AsyncRunner::wait(const AsyncTask& task, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (task.state == AsyncTask::State::done || task.state == AsyncTask::State::failed) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

}  // namespace taskfarm::detail
