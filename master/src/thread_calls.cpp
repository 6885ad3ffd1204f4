#include "thread_calls.hpp"

#include "taskfarm/detail/caught.hpp"

namespace taskfarm::detail {

ThreadCalls::~ThreadCalls() {
  for (auto& r : running_) r->thread.join();  // a thread cannot be killed: wait for the call
  // Their futures outlive this: they must learn that these calls will never finish.
  for (auto& r : running_) r->call->state = Call::State::closed;
  for (auto& [c, attempt] : pending_) c->state = Call::State::closed;
}

std::shared_ptr<Call> ThreadCalls::submit(std::function<void(std::string&)> run) {
  auto c = std::make_shared<Call>();
  c->run = std::move(run);
  c->id = next_id_++;
  pending_.emplace_back(c, 0);
  start_pending();
  return c;
}

void ThreadCalls::start_pending() {
  while (!pending_.empty() && running_.size() < workers_) {
    auto r = std::make_unique<Running>();
    r->call = pending_.front().first;
    r->attempt = pending_.front().second;
    pending_.pop_front();
    Running* p = r.get();
    r->thread = std::thread([this, p] {
      std::string out;
      std::optional<FailureRecord> failure;
      try {
        p->call->run(out);
      } catch (...) {
        const CaughtException x = caught_exception();
        FailureRecord f;
        f.cause = x.out_of_memory ? FailureCause::memory : FailureCause::exception;
        f.exception_type = x.type;
        f.message = x.message;
        failure = std::move(f);
      }
      std::lock_guard lock(mu_);
      p->out = std::move(out);
      p->failure = std::move(failure);
      p->finished = true;
      cv_.notify_all();
    });
    running_.push_back(std::move(r));
  }
}

void ThreadCalls::poll(std::chrono::milliseconds timeout) {
  start_pending();
  if (running_.empty()) return;
  std::vector<std::unique_ptr<Running>> finished, still;
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] {
      for (auto& r : running_)
        if (r->finished) return true;
      return false;
    });
    for (auto& r : running_) (r->finished ? finished : still).push_back(std::move(r));
  }
  running_ = std::move(still);
  for (auto& r : finished) {
    r->thread.join();
    Call& c = *r->call;
    if (!r->failure) {
      c.bytes = std::move(r->out);
      c.state = Call::State::done;
      c.run = nullptr;  // what it captured is not needed any more
      ++completed_;
      continue;
    }
    FailureRecord f = std::move(*r->failure);
    f.index = c.id;
    f.attempt = r->attempt;
    f.final = !may_retry(r->attempt, retries_);
    if (!f.final) {
      pending_.emplace_front(r->call, r->attempt + 1);
      continue;
    }
    c.failure = std::move(f);
    c.state = Call::State::failed;
    c.run = nullptr;
    ++completed_;
  }
  start_pending();
}

}  // namespace taskfarm::detail
