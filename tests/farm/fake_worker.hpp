// A scripted fake worker and fake OS for Dispatcher tests: carries out the Dispatcher's
// commands (a start that works or fails as scripted, a kill that lands) and plays each worker's
// side (Hello, Done pieces, TaskError, death with what its slot segment said). No processes, no
// clock: time is a value the test moves. tests/fault and tests/farm run the same policies
// through real processes and prove this fake honest.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <map>

#include "dispatcher.hpp"

namespace taskfarm::fake {
using namespace std::chrono_literals;


// Everything the Dispatcher tells its observer.
struct Recorder : FarmObserver {
  std::vector<pid_t> started;
  std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>> chunks;  // slot, begin, end, attempt
  std::vector<std::pair<std::uint64_t, std::uint64_t>> done, returned;
  std::vector<FailureRecord> failures;
  std::vector<std::uint64_t> results;
  std::function<void(const IndexResult&)> on_result_hook;
  std::function<void()> on_started_hook, on_done_hook, on_failure_hook;  // called first (may throw)
  void on_worker_started(int, pid_t pid) override {
    if (on_started_hook) on_started_hook();
    started.push_back(pid);
  }
  void on_chunk_started(int slot, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t a) override { chunks.emplace_back(slot, b, e, a); }
  void on_tasks_done(const TasksDone& t) override {
    if (on_done_hook) on_done_hook();
    done.emplace_back(t.begin, t.end);
    pieces.push_back(t);
    piece_failed.emplace_back(t.failed.begin(), t.failed.end());  // the span lives as long as the call
  }
  std::vector<TasksDone> pieces;
  std::vector<std::vector<std::uint64_t>> piece_failed;
  void on_chunk_returned(int, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t) override { returned.emplace_back(b, e); }
  void on_failure(const FailureRecord& f) override {
    if (on_failure_hook) on_failure_hook();
    failures.push_back(f);
  }
  void on_result(const IndexResult& r) override {
    if (on_result_hook) on_result_hook(r);
    results.push_back(r.index);
  }
  std::vector<FailureRecord> of(std::uint64_t index) const {
    std::vector<FailureRecord> v;
    for (const auto& f : failures)
      if (f.index == index) v.push_back(f);
    return v;
  }
};

// Records for ResultMode::blobs: each index's value is its number as text.
struct TextRecords : PieceRecords {
  std::string bytes;
  int consumed_pieces = 0;
  static void append(std::string& out, const std::string& s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += s;
  }
  static std::string of(std::uint64_t begin, std::uint64_t end) {
    std::string r;
    for (std::uint64_t i = begin; i < end; ++i) {
      append(r, std::to_string(i));
      append(r, "");
    }
    return r;
  }
  std::span<const char> read(const proto::ChunkDone&) override { return {bytes.data(), bytes.size()}; }
  void consumed(const proto::ChunkDone&) override { ++consumed_pieces; }
};

struct NoRecords : PieceRecords {
  std::span<const char> read(const proto::ChunkDone&) override { throw std::logic_error("no records were claimed"); }
  void consumed(const proto::ChunkDone&) override {}
};

inline ExitStatus killed_by(int sig) { return ExitStatus{true, sig, false}; }
inline ExitStatus exited(int code) { return ExitStatus{false, code, false}; }

// The fake OS and the fake workers: carries out the Dispatcher's commands and plays each worker.
class Fake {
 public:
  struct Worker {
    pid_t pid = 0;
    bool live = false, greeted = false, told_to_stop = false;
    std::deque<proto::Chunk> queue;
    std::uint64_t upto = 0;  // next index of queue.front()
    std::optional<Command> kill;
  };
  // breaks_channel: the task returns, but the worker dies once it sends its results (the task
  // closed the channel's descriptors), after running all it holds.
  enum class Outcome { ok, fail, crash, exit_clean, breaks_channel };

  explicit Fake(FarmOptions o, std::size_t workers = 1, bool fork_mode = false)
      : d(config(std::move(o), workers, fork_mode)) {}
  explicit Fake(Dispatcher::Config c) : d(std::move(c)) {}

  static Dispatcher::Config config(FarmOptions o, std::size_t workers, bool fork_mode) {
    Dispatcher::Config c;
    c.options = std::move(o);
    c.workers = workers;
    c.worker_name = "./fake";
    c.stop_when_drained = fork_mode;
    return c;
  }

  void begin(std::uint64_t n, bool ordered = false, ResultMode results = ResultMode::none) {
    job.extent = {n};
    job.ordered = ordered;
    job.results = results;
    d.begin_run(job, &rec, now, 1);
    if (w.size() < d.slot_count()) w.resize(d.slot_count());
  }

  // One planning pass, and every command carried out.
  void step() {
    d.plan(now);
    execute();
  }
  void execute() {
    while (d.has_command()) {
      Command c = d.take_command();
      if (c.kind == Command::Kind::more) {
        ++asked;
        continue;
      }
      Worker& x = w[static_cast<std::size_t>(c.slot)];
      switch (c.kind) {
        case Command::Kind::start:
          ++starts;
          if (!spawn_failures.empty()) {
            SpawnFailure f = spawn_failures.front();
            spawn_failures.pop_front();
            d.on_spawn_failed(c.slot, f, now);
          } else {
            x = Worker{};
            x.pid = next_pid++;
            x.live = true;
            d.on_started(c.slot, x.pid, now);
          }
          break;
        case Command::Kind::assign:
          for (const auto& ch : c.chunks) {
            if (x.queue.empty()) x.upto = ch.begin;
            x.queue.push_back(ch);
          }
          break;
        case Command::Kind::stop: x.told_to_stop = true; break;
        case Command::Kind::kill:
          x.kill = c;
          kills.push_back(c);
          break;
        case Command::Kind::more: break;
      }
    }
  }

  // ---- the worker's side ----
  void hello(int slot) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    x.greeted = true;
    d.on_message(slot, proto::Hello{x.pid}, none, now);
    execute();
  }
  proto::ChunkDone piece(int slot, std::uint64_t upto, bool returned = false) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    const proto::Chunk& c = x.queue.front();
    proto::ChunkDone p{c.id, upto, 0, 0, (upto - x.upto) * 1000, returned, false};
    x.upto = upto;
    if (upto == c.end || returned) {
      x.queue.pop_front();
      if (!x.queue.empty()) x.upto = x.queue.front().begin;
    }
    return p;
  }
  // Commits the front chunk up to `upto` (its end by default) in one Done.
  void done(int slot, std::optional<std::uint64_t> upto = {}, TextRecords* records = nullptr) {
    const std::uint64_t u = upto ? *upto : w[static_cast<std::size_t>(slot)].queue.front().end;
    proto::Done m{d.job_id(), {piece(slot, u)}};
    if (records != nullptr) m.chunks[0].arena_len = records->bytes.size();
    d.on_message(slot, m, records != nullptr ? static_cast<PieceRecords&>(*records) : none, now);
    execute();
  }
  void task_error(int slot, std::uint64_t index) {
    const proto::Chunk& c = w[static_cast<std::size_t>(slot)].queue.front();
    d.on_message(slot, proto::TaskError{d.job_id(), c.id, index, false, "std::runtime_error", "bad " + std::to_string(index), 0, 0, "", 0}, none, now);
    execute();
  }
  // The task's own process (a command per task) ended with `exit_code` or by `signal`.
  void process_failed(int slot, std::uint64_t index, int exit_code, int signal) {
    const proto::Chunk& c = w[static_cast<std::size_t>(slot)].queue.front();
    d.on_message(slot, proto::TaskError{d.job_id(), c.id, index, false, "", "gzip -9 'a b'", exit_code, signal, "gzip: no\n", 1500000000},
                 none, now);
    execute();
  }
  // The worker's process ended while its slot said it was running `index` of its front chunk
  // (or nothing, between chunks).
  void gone(int slot, ExitStatus st, std::optional<std::uint64_t> index = {}) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    WorkerGone g;
    g.status = st;
    if (index) {
      g.current_chunk = g.last_chunk = x.queue.front().id;
      g.current_index = *index;
    }
    g.stderr_tail = "last words\n";
    x.live = false;
    x.queue.clear();
    d.on_gone(slot, g, now);
    execute();
  }
  // The worker's process ended between tasks or while it talked to the master (`delivering`),
  // having begun the chunk `last_chunk` last (its queue's front by default): all it held up to
  // that chunk ran, and nothing of it since its last Done reached the master.
  void gone_after(int slot, ExitStatus st, bool delivering, std::optional<std::uint64_t> last_chunk = {}) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    WorkerGone g;
    g.status = st;
    g.delivering = delivering;
    g.last_chunk = last_chunk ? *last_chunk : x.queue.front().id;
    g.stderr_tail = "taskfarm worker: sending to the master: Bad file descriptor\n";
    x.live = false;
    x.queue.clear();
    d.on_gone(slot, g, now);
    execute();
  }

  // Runs the whole job: each worker says Hello, then runs its chunks in turn through `kernel`;
  // a kill lands at once. Returns the report.
  RunReport run(const std::function<Outcome(std::uint64_t index, std::uint32_t attempt)>& kernel) {
    for (int guard = 0; guard < 100000; ++guard) {
      step();
      if (d.finished() || d.halting_now()) break;
      bool moved = false;
      for (std::size_t s = 0; s < w.size() && !moved; ++s) {
        Worker& x = w[s];
        const int slot = static_cast<int>(s);
        if (!x.live) continue;
        moved = true;
        if (x.kill) {
          gone(slot, killed_by(x.kill->term_first ? SIGTERM : SIGKILL), x.queue.empty() ? std::nullopt : std::optional(x.upto));
        } else if (!x.greeted) {
          hello(slot);
        } else if (!x.queue.empty()) {
          work(slot, kernel);
        } else if (x.told_to_stop) {
          gone(slot, exited(0));
        } else {
          moved = false;
        }
      }
      if (!moved && idle && idle()) continue;  // the test moved something (a feed answered)
      if (!moved) ADD_FAILURE() << "nothing moves: the Dispatcher waits for a worker that has nothing to do";
      if (!moved) break;
    }
    return d.end_run();
  }

  Dispatcher d;
  JobSpec job;
  Recorder rec;
  NoRecords none;
  Clock::time_point now{};
  std::vector<Worker> w;
  std::deque<SpawnFailure> spawn_failures;  // what the next starts do
  std::function<bool()> idle;  // run(): when no worker can move; true if it gave the Dispatcher an event
  std::vector<Command> kills;
  int starts = 0;
  int asked = 0;  // `more` commands: the run asked its feed for ranges
  pid_t next_pid = 100;

 private:
  void work(int slot, const std::function<Outcome(std::uint64_t, std::uint32_t)>& kernel) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    const proto::Chunk c = x.queue.front();
    for (std::uint64_t i = x.upto; i < c.end; ++i) {
      switch (kernel(i, c.attempt)) {
        case Outcome::ok: break;
        case Outcome::fail: task_error(slot, i); break;
        case Outcome::crash: return gone(slot, killed_by(SIGSEGV), i);
        case Outcome::exit_clean: return gone(slot, exited(0), i);
        case Outcome::breaks_channel: return gone_after(slot, exited(3), /*delivering=*/true, x.queue.back().id);
      }
    }
    done(slot);
  }
};

inline FarmOptions fixed_chunks(std::uint64_t chunk, int retries = 2) {
  FarmOptions o;
  o.chunk = chunk;
  o.retries = retries;
  return o;
}

inline std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>> chunks_from(const Recorder& r, std::size_t k) {
  return {r.chunks.begin() + static_cast<std::ptrdiff_t>(k), r.chunks.end()};
}

}  // namespace taskfarm::fake
