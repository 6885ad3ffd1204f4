#include "async_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <typeinfo>

#include "proc_info.hpp"
#include "spawn.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::detail {
namespace {

// Pipe record: u8 status (0 value, 1 exception, 2 out of memory), then the value's bytes, or
// "type\0what".
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

std::string type_name(const std::exception& e) {
  int status = 0;
  char* d = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : typeid(e).name();
  std::free(d);
  return s;
}

}  // namespace

AsyncRunner::~AsyncRunner() {
  for (auto& t : running_) {
    if (t->thread.joinable()) {  // a thread cannot be killed: wait for it
      t->thread.join();
      continue;
    }
    ::kill(-t->pid, SIGKILL);
    ::kill(t->pid, SIGKILL);
    // SIGKILLed: it ends within milliseconds, unless stuck in the kernel (D state): wait on its
    // pidfd with a deadline, never unbounded.
    pollfd p{t->pidfd.get(), POLLIN, 0};
    ::poll(&p, 1, 5000);
    siginfo_t info{};
    ::waitid(P_PIDFD, static_cast<id_t>(t->pidfd.get()), &info, WEXITED | WNOHANG);
  }
  // Their futures outlive this runner: they must learn that these calls will never finish.
  for (auto& t : running_) t->state = AsyncTask::State::closed;
  for (auto& t : pending_) t->state = AsyncTask::State::closed;
}

std::shared_ptr<AsyncTask> AsyncRunner::submit(std::function<void(std::string&)> run) {
  if (!threads_) proc::require_single_thread(fork_with_threads_, "Pool::submit in fork mode");
  auto t = std::make_shared<AsyncTask>();
  t->run = std::move(run);
  t->id = next_id_++;
  pending_.push_back(t);
  poll(std::chrono::milliseconds(0));
  return t;
}

// Runs `t` and encodes the outcome like the child process does.
static std::string run_encoded(AsyncTask& t) {
  std::string out(1, '\0');
  try {
    t.run(out);
  } catch (const std::bad_alloc& e) {
    out = std::string(1, '\2') + type_name(e) + '\0' + e.what();
  } catch (const std::exception& e) {
    out = std::string(1, '\1') + type_name(e) + '\0' + e.what();
  } catch (...) {
    out = std::string(1, '\1') + "unknown exception" + '\0';
  }
  return out;
}

void AsyncRunner::start_thread(const std::shared_ptr<AsyncTask>& t) {
  t->state = AsyncTask::State::running;
  t->started = std::chrono::steady_clock::now();
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
    t->bytes = std::move(t->thread_out);
    FailureRecord f;
    settle(t, std::move(t->bytes), true, f);
  }
}

void AsyncRunner::start_pending() {
  while (!pending_.empty() && running_.size() < workers_) {
    // A thread started since the call was queued makes this fork unsafe: the call stays queued
    // and the Error reaches whoever drives the pool.
    if (!threads_) proc::require_single_thread(fork_with_threads_, "Pool::submit in fork mode");
    auto t = pending_.front();
    pending_.pop_front();
    try {
      start(t);
    } catch (const SystemError& e) {
      // Out of processes (EAGAIN under ulimit -u), memory or descriptors: the call stays queued
      // and starts when a running one has ended; with none running, nothing would free one.
      pending_.push_front(t);
      if (!for_want_of_resources(e.code()) || running_.empty()) throw;
      return;
    }
  }
}

void AsyncRunner::start(const std::shared_ptr<AsyncTask>& t) {
  if (threads_) return start_thread(t);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe for a submitted task");
  UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t master = ::getpid();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork of a submitted task");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != master) ::_exit(4);
    write_all(wr.get(), run_encoded(*t));
    std::fflush(stdout);
    ::_exit(0);
  }
  ::fcntl(rd.get(), F_SETFL, O_NONBLOCK);
  t->pid = pid;
  t->pidfd = open_pidfd(pid, "submitted task");
  t->pipe = std::move(rd);
  t->bytes.clear();
  t->state = AsyncTask::State::running;
  t->started = std::chrono::steady_clock::now();
  running_.push_back(t);
}

void AsyncRunner::read_pipe(AsyncTask& t) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(t.pipe.get(), buf, sizeof buf);
    if (n > 0) t.bytes.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else return;  // EOF or nothing more for now
  }
}

void AsyncRunner::finish(const std::shared_ptr<AsyncTask>& t) {
  read_pipe(*t);
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(t->pidfd.get()), &info, WEXITED) != 0 && errno == EINTR) {}
  ::kill(-t->pid, SIGKILL);  // anything it started
  FailureRecord f;
  f.pid = t->pid;
  const bool exited_ok = info.si_code == CLD_EXITED && info.si_status == 0;
  const bool timed_out = timeout_.count() > 0 && std::chrono::steady_clock::now() - t->started > timeout_ &&
                         info.si_code == CLD_KILLED && info.si_status == SIGKILL;
  if (!exited_ok || t->bytes.empty()) {
    if (timed_out) {
      f.cause = FailureCause::timeout;
      f.signal = SIGKILL;
      f.message = "ran longer than " + std::to_string(timeout_.count()) + " ms";
    } else if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) {
      f.cause = FailureCause::signal;
      f.signal = info.si_status;
    } else {
      f.cause = FailureCause::exit;
      f.exit_code = info.si_status;
    }
  }
  settle(t, std::move(t->bytes), exited_ok, f);
  t->pipe.reset();
  t->pidfd.reset();
}

// Records the outcome of one attempt: a value, or a failure that is retried or final.
void AsyncRunner::settle(const std::shared_ptr<AsyncTask>& t, std::string out, bool exited_ok, FailureRecord f) {
  f.index = t->id;
  f.attempt = t->attempt;
  if (exited_ok && !out.empty() && out[0] == '\0') {
    t->bytes = out.substr(1);
    t->state = AsyncTask::State::done;
    ++completed_;
    return;
  }
  if (exited_ok && !out.empty()) {
    f.cause = out[0] == '\2' ? FailureCause::memory : FailureCause::exception;
    const std::string rest = out.substr(1);
    const auto nul = rest.find('\0');
    f.exception_type = rest.substr(0, nul);
    f.message = nul == std::string::npos ? "" : rest.substr(nul + 1);
  }
  t->bytes.clear();
  f.final = static_cast<int>(t->attempt) >= retries_;
  if (f.final) {
    t->failure = f;
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
  if (threads_) {
    poll_threads(timeout);
    start_pending();
    return;
  }
  std::vector<pollfd> fds;
  for (auto& t : running_) {
    fds.push_back(pollfd{t->pidfd.get(), POLLIN, 0});
    fds.push_back(pollfd{t->pipe.get(), POLLIN, 0});
  }
  int wait_ms = static_cast<int>(timeout.count());
  if (timeout_.count() > 0) wait_ms = std::min(wait_ms, static_cast<int>(std::max<long>(1, timeout_.count() / 10)));
  ::poll(fds.data(), fds.size(), wait_ms);
  std::vector<std::shared_ptr<AsyncTask>> still;
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < running_.size(); ++k) {
    auto& t = running_[k];
    if (fds[2 * k + 1].revents != 0) read_pipe(*t);  // keep the pipe drained: big results
    if (timeout_.count() > 0 && now - t->started > timeout_) ::kill(-t->pid, SIGKILL), ::kill(t->pid, SIGKILL);
    if (fds[2 * k].revents != 0) finish(t);
    else still.push_back(t);
  }
  running_ = std::move(still);
  start_pending();
}

void AsyncRunner::wait_completed(std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (completed_ >= count || in_flight() == 0) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

bool AsyncRunner::wait(const AsyncTask& task, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (task.state == AsyncTask::State::done || task.state == AsyncTask::State::failed) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

}  // namespace taskfarm::detail
