// The Dispatcher's policy against a scripted fake worker: no processes, no clock, no timing.
// Each test plays the worker's side (Hello, Done pieces, TaskError, death with what its slot
// segment said) and the OS's (a start that works or fails, a kill that lands) and checks what
// the Dispatcher charges, requeues, reports and commands. tests/fault and tests/farm run the same
// policies through real processes: they prove this fake honest.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <map>

#include "dispatcher.hpp"

using namespace taskfarm;
using namespace std::chrono_literals;

namespace {

// Everything the Dispatcher tells its observer.
struct Recorder : FarmObserver {
  std::vector<pid_t> started;
  std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>> chunks;  // slot, begin, end, attempt
  std::vector<std::pair<std::uint64_t, std::uint64_t>> done, returned;
  std::vector<FailureRecord> failures;
  std::vector<std::uint64_t> results;
  std::function<void(const IndexResult&)> on_result_hook;
  void on_worker_started(int, pid_t pid) override { started.push_back(pid); }
  void on_chunk_started(int slot, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t a) override { chunks.emplace_back(slot, b, e, a); }
  void on_tasks_done(const TasksDone& t) override {
    done.emplace_back(t.begin, t.end);
    pieces.push_back(t);
    piece_failed.emplace_back(t.failed.begin(), t.failed.end());  // the span lives as long as the call
  }
  std::vector<TasksDone> pieces;
  std::vector<std::vector<std::uint64_t>> piece_failed;
  void on_chunk_returned(int, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t) override { returned.emplace_back(b, e); }
  void on_failure(const FailureRecord& f) override { failures.push_back(f); }
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

ExitStatus killed_by(int sig) { return ExitStatus{true, sig, false}; }
ExitStatus exited(int code) { return ExitStatus{false, code, false}; }

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
  enum class Outcome { ok, fail, crash, exit_clean };

  explicit Fake(FarmOptions o, std::size_t workers = 1, bool fork_mode = false)
      : d(config(std::move(o), workers, fork_mode)) {}

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
    d.on_message(slot, proto::TaskError{d.job_id(), c.id, index, false, "std::runtime_error", "bad " + std::to_string(index)}, none, now);
    execute();
  }
  // The worker's process ended while its slot said it was running `index` of its front chunk
  // (or nothing, between chunks).
  void gone(int slot, ExitStatus st, std::optional<std::uint64_t> index = {}) {
    Worker& x = w[static_cast<std::size_t>(slot)];
    WorkerGone g;
    g.status = st;
    if (index) {
      g.current_chunk = x.queue.front().id;
      g.current_index = *index;
    }
    g.stderr_tail = "last words\n";
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
  std::vector<Command> kills;
  int starts = 0;
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
      }
    }
    done(slot);
  }
};

FarmOptions fixed_chunks(std::uint64_t chunk, int retries = 2) {
  FarmOptions o;
  o.chunk = chunk;
  o.retries = retries;
  return o;
}

std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>> chunks_from(const Recorder& r, std::size_t k) {
  return {r.chunks.begin() + static_cast<std::ptrdiff_t>(k), r.chunks.end()};
}

}  // namespace

TEST(Dispatcher, ChargesOnlyTheRunningIndexAndRequeuesTheRestOfItsChunkUncharged) {
  Fake f(fixed_chunks(4));
  f.begin(12);
  f.step();
  ASSERT_EQ(f.starts, 1);
  f.hello(0);
  f.done(0, 2);                       // [0, 2) of [0, 4) committed
  f.gone(0, killed_by(SIGSEGV), 2);   // died running index 2
  ASSERT_EQ(f.rec.failures.size(), 1u);
  const FailureRecord& r = f.rec.failures[0];
  EXPECT_EQ(r.index, 2u);
  EXPECT_EQ(r.attempt, 0u);
  EXPECT_FALSE(r.final);
  EXPECT_EQ(r.cause, FailureCause::signal);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.pid, 100);
  EXPECT_EQ(r.stderr_tail, "last words\n");
  const std::size_t before = f.rec.chunks.size();
  f.step();  // a new worker; what the dead one held goes out again, retries first, in index order
  ASSERT_EQ(f.starts, 2);
  const auto again = chunks_from(f.rec, before);
  ASSERT_GE(again.size(), 2u);
  EXPECT_EQ(again[0], std::make_tuple(0, 2ull, 3ull, 1u)) << "the running index: charged one attempt";
  EXPECT_EQ(again[1], std::make_tuple(0, 3ull, 4ull, 0u)) << "the rest of its chunk: uncharged";
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 12u);
  EXPECT_EQ(rep.retries, 1u);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_TRUE(rep.failures.empty());
  EXPECT_TRUE(rep.unfinished.empty());
}

TEST(Dispatcher, PoisonIndexIsIsolatedAndFailsFinallyWhenItsRetriesAreSpent) {
  Fake f(fixed_chunks(4), 2);
  f.begin(40);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 7 ? Fake::Outcome::crash : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(rep.succeeded, 39u);
  EXPECT_EQ(rep.retries, 2u);
  EXPECT_EQ(rep.worker_deaths, 3u);
  const auto seven = f.rec.of(7);
  ASSERT_EQ(seven.size(), 3u);
  for (std::uint32_t a = 0; a < 3; ++a) {
    EXPECT_EQ(seven[a].attempt, a);
    EXPECT_EQ(seven[a].final, a == 2);
    EXPECT_EQ(seven[a].chunk_end - seven[a].chunk_begin, a == 0 ? 4u : 1u) << "after its first crash 7 runs alone";
  }
  EXPECT_EQ(f.rec.failures.size(), 3u) << "no other index is ever charged";
}

TEST(Dispatcher, KernelExceptionChargesItsIndexAndTheWorkerGoesOn) {
  Fake f(fixed_chunks(4, 1), 1);
  f.begin(8);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 5 ? Fake::Outcome::fail : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{5});
  EXPECT_EQ(rep.worker_deaths, 0u);
  EXPECT_EQ(rep.succeeded, 7u);
  ASSERT_EQ(f.rec.of(5).size(), 2u);
  EXPECT_EQ(f.rec.of(5)[0].exception_type, "std::runtime_error");
  EXPECT_EQ(f.rec.of(5)[0].pid, 100) << "the worker that ran it";
  EXPECT_EQ(f.starts, 1);
}

TEST(Dispatcher, HaltNowStopsAtTheFirstFinalFailure) {
  FarmOptions o = fixed_chunks(1, 0);
  o.halt = Halt::now;
  Fake f(o, 2);
  f.begin(100);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 3 ? Fake::Outcome::crash : Fake::Outcome::ok; });
  EXPECT_TRUE(f.d.halting_now());
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{3});
  EXPECT_LT(rep.succeeded, 99u);
  EXPECT_EQ(rep.succeeded + 1 + rep.unfinished_count(), 100u) << "every index is accounted for";
}

TEST(Dispatcher, HaltSoonStopsDispatchingButLetsHeldChunksFinish) {
  FarmOptions o = fixed_chunks(2, 0);
  o.halt = Halt::soon;
  Fake f(o, 2);
  f.begin(20);
  f.step();
  f.hello(0);
  f.hello(1);
  ASSERT_FALSE(f.w[1].queue.empty());
  f.gone(0, killed_by(SIGSEGV), 0);  // slot 0 dies running index 0: final at once (retries 0)
  EXPECT_TRUE(f.rec.failures.back().final);
  EXPECT_FALSE(f.d.halting_now()) << "soon: the other worker is not killed";
  EXPECT_TRUE(f.kills.empty());
  const std::size_t handed_out = f.rec.chunks.size();
  while (!f.w[1].queue.empty()) f.done(1);  // it finishes what it holds
  f.step();
  EXPECT_EQ(f.rec.chunks.size(), handed_out) << "nothing new goes out after the final failure";
  EXPECT_EQ(f.starts, 2) << "and no worker is started for it";
  EXPECT_TRUE(f.d.finished());
  const RunReport rep = f.d.end_run();
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_EQ(rep.succeeded + 1 + rep.unfinished_count(), 20u);
}

TEST(Dispatcher, DeathsWithoutProgressStopTheRunWithTheCause) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 3;
  Fake f(o, 1);
  f.begin(8);
  for (int k = 0; k < 3; ++k) {
    f.step();
    f.hello(0);
    f.gone(0, exited(3));  // between tasks: no index to charge
  }
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("workers keep dying without completing a task: 3 in a row, before any task succeeded"), std::string::npos)
      << rep.farm_error;
  EXPECT_NE(rep.farm_error.find("last words"), std::string::npos) << "its stderr comes with the cause";
  EXPECT_EQ(rep.worker_deaths, 3u);
  EXPECT_TRUE(rep.failed_indices().empty());
  EXPECT_EQ(rep.unfinished_count(), 8u);
}

TEST(Dispatcher, ProgressResetsTheCountOfDeathsWithoutProgress) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 2;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.gone(0, exited(3));
  f.step();
  f.hello(0);
  f.done(0);  // progress
  f.gone(0, exited(3));
  EXPECT_FALSE(f.d.halting_now());
}

TEST(Dispatcher, NeverGreetedStartTimeoutStopsTheRunAtOnce) {
  Fake f(fixed_chunks(4), 2);
  f.begin(8);
  f.step();
  ASSERT_EQ(f.starts, 2);
  f.d.on_overdue(0, Overdue::start);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::start);
  EXPECT_FALSE(f.kills[0].term_first);
  f.gone(0, killed_by(SIGKILL));
  EXPECT_TRUE(f.d.halting_now()) << "no worker of this farm has ever greeted: the next will not either";
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("./fake did not start the taskfarm protocol within 5 s"), std::string::npos) << rep.farm_error;
  ASSERT_FALSE(rep.failures.empty());
  EXPECT_EQ(rep.failures.back().cause, FailureCause::start);
}

TEST(Dispatcher, OneStuckStartAmongGreetedWorkersIsOneFailedWorker) {
  Fake f(fixed_chunks(4), 2);
  f.begin(8);
  f.step();
  f.hello(1);
  f.d.on_overdue(0, Overdue::start);
  f.execute();
  f.gone(0, killed_by(SIGKILL));
  EXPECT_FALSE(f.d.halting_now());
  f.step();
  EXPECT_EQ(f.starts, 3) << "replaced";
}

TEST(Dispatcher, WorkerExitingBeforeItsHandshakeIsNotAWorkerProgram) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 2;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.gone(0, exited(5));
  f.step();
  f.gone(0, exited(5));
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("./fake exited with code 5 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << rep.farm_error;
  EXPECT_NE(rep.farm_error.find("(2 workers in a row)"), std::string::npos) << rep.farm_error;
}

TEST(Dispatcher, ChaosKillIsNeverChargedToAnIndex) {
  FarmOptions o = fixed_chunks(4);
  o.chaos_rate = 1000;
  o.chaos_seed = 7;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.now += 1h;  // fault injection is due
  f.d.on_time(f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_FALSE(f.kills[0].cause.has_value()) << "a chaos kill has no cause of the worker's";
  f.gone(0, killed_by(SIGKILL), 1);  // it was running index 1
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index.has_value());
  EXPECT_NE(f.rec.failures[0].message.find("not charged"), std::string::npos);
  const std::size_t before = f.rec.chunks.size();
  f.step();
  EXPECT_EQ(chunks_from(f.rec, before).front(), std::make_tuple(0, 0ull, 4ull, 0u)) << "its chunk again, same attempt";
  f.d.on_time(f.now);  // not due again yet (the next kill is scheduled after now)
  f.execute();
  EXPECT_EQ(f.kills.size(), 1u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.chaos_kills, 1u);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_EQ(rep.retries, 0u);
  EXPECT_EQ(rep.succeeded, 8u);
}

TEST(Dispatcher, OrderedDeliveryPassesOverAFinallyFailedIndex) {
  Fake f(fixed_chunks(1, 0), 2);
  f.begin(4, /*ordered=*/true, ResultMode::blobs);
  f.step();
  f.hello(0);
  f.hello(1);
  // Slot 0 holds [0,1) and [1,2); slot 1 holds [2,3) and [3,4).
  ASSERT_EQ(f.w[0].queue.front().begin, 0u);
  ASSERT_EQ(f.w[1].queue.front().begin, 2u);
  for (std::uint64_t i : {2u, 3u}) {
    TextRecords r;
    r.bytes = TextRecords::of(i, i + 1);
    f.done(1, std::nullopt, &r);
  }
  EXPECT_TRUE(f.rec.results.empty()) << "2 and 3 wait for 0 and 1";
  TextRecords r0;
  r0.bytes = TextRecords::of(0, 1);
  f.done(0, std::nullopt, &r0);
  EXPECT_EQ(f.rec.results, std::vector<std::uint64_t>{0});
  f.task_error(0, 1);
  TextRecords r1;
  r1.bytes = TextRecords::of(1, 2);
  f.done(0, std::nullopt, &r1);  // 1 failed finally (retries 0)
  EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 2, 3})) << "in order, past the failed 1";
  EXPECT_EQ(r0.consumed_pieces + r1.consumed_pieces, 2) << "each piece's records are released once decoded";
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{1});
  EXPECT_EQ(rep.succeeded, 3u);
}

TEST(Dispatcher, OrderedHandOverThatThrowsIsRetriedThenFailsFinally) {
  for (int retries : {1, 0}) {
    Fake f(fixed_chunks(4, retries), 1);
    int throws = 0;
    f.rec.on_result_hook = [&](const IndexResult& r) {
      if (r.index == 2 && throws++ == 0) throw std::runtime_error("sink full");
    };
    f.begin(4, /*ordered=*/true, ResultMode::blobs);
    f.step();
    f.hello(0);
    TextRecords r;
    r.bytes = TextRecords::of(0, 4);
    f.done(0, std::nullopt, &r);
    const auto two = f.rec.of(2);
    ASSERT_EQ(two.size(), 1u);
    EXPECT_EQ(two[0].final, retries == 0);
    EXPECT_NE(two[0].message.find("could not be handed over in the master: sink full"), std::string::npos) << two[0].message;
    if (retries == 0) {
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1, 3})) << "the frontier passes the failed index";
    } else {
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1})) << "3 waits for 2's next attempt";
      f.step();
      ASSERT_EQ(f.w[0].queue.front().begin, 2u);
      EXPECT_EQ(f.w[0].queue.front().attempt, 1u);
      TextRecords again;
      again.bytes = TextRecords::of(2, 3);
      f.done(0, std::nullopt, &again);
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1, 2, 3}));
    }
    const RunReport rep = f.d.end_run();
    EXPECT_EQ(rep.succeeded, retries == 0 ? 3u : 4u);
    EXPECT_EQ(rep.retries, retries == 0 ? 0u : 1u);
  }
}

TEST(Dispatcher, DoneForAChunkTheWorkerDoesNotHoldGetsItKilledAsFaulty) {
  Fake f(fixed_chunks(4), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  proto::Done m{f.d.job_id(), {proto::ChunkDone{999, 4, 0, 0, 10, false, false}}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
  EXPECT_TRUE(f.d.killing(0));
  f.done(0);  // what it says after that no longer counts
  EXPECT_TRUE(f.rec.done.empty());
  f.w[0].queue.push_front(proto::Chunk{0, 0, 4, 0, 0});
  f.gone(0, killed_by(SIGKILL), 1);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].cause, FailureCause::protocol);
  EXPECT_EQ(f.rec.failures[0].index, 1u) << "the index it was running is charged";
  EXPECT_NE(f.rec.failures[0].message.find("Done for chunk 999 up to 4 that it does not hold"), std::string::npos)
      << f.rec.failures[0].message;
}

TEST(Dispatcher, DoneBeyondItsChunkOrForAnotherJobIsAProtocolFailure) {
  for (int k = 0; k < 3; ++k) {
    Fake f(fixed_chunks(4), 1);
    f.begin(8);
    f.step();
    if (k != 2) f.hello(0);
    const proto::Chunk c = f.w[0].queue.front();
    proto::Done m{f.d.job_id(), {proto::ChunkDone{c.id, k == 0 ? 5u : 4u, 0, 0, 10, false, false}}};
    if (k == 1) m.job_id = 77;
    f.d.on_message(0, m, f.none, f.now);
    f.execute();
    ASSERT_EQ(f.kills.size(), 1u) << k;
    EXPECT_EQ(f.kills[0].cause, FailureCause::protocol) << k;
  }
}

TEST(Dispatcher, PiecewiseCommitKeepsWhatWasCommittedWhenTheWorkerDies) {
  Fake f(fixed_chunks(8), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.done(0, 2);
  f.done(0, 5);
  EXPECT_EQ(f.rec.done, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 2}, {2, 5}}));
  f.gone(0, killed_by(SIGKILL), 6);  // 5 ran and was not reported; it was running 6
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].index, 6u);
  const std::size_t before = f.rec.chunks.size();
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  auto again = chunks_from(f.rec, before);
  std::sort(again.begin(), again.end());
  EXPECT_EQ(again, (std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>>{
                       {0, 5, 6, 0}, {0, 6, 7, 1}, {0, 7, 8, 0}}))
      << "only the running index is charged; 5 (run, not reported) and 7 go again uncharged; [0, 5) never again";
  EXPECT_EQ(rep.succeeded, 8u) << "the committed [0, 5) counted once";
}

TEST(Dispatcher, ReturnedRestOfAProbeGoesBackAtTheSameAttempt) {
  FarmOptions o;  // auto chunks: the first is a probe of the whole share with a budget
  Fake f(o, 1);
  f.begin(1000);
  f.step();
  f.hello(0);
  ASSERT_EQ(f.w[0].queue.size(), 1u);
  const proto::Chunk probe = f.w[0].queue.front();
  ASSERT_GT(probe.budget_ns, 0u);
  ASSERT_EQ(probe.end, 1000u);
  proto::Done m{f.d.job_id(), {f.piece(0, 3, /*returned=*/true)}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  EXPECT_EQ(f.rec.done, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 3}}));
  EXPECT_EQ(f.rec.returned, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{3, 1000}}));
  EXPECT_TRUE(f.rec.failures.empty());
  f.step();
  ASSERT_FALSE(f.w[0].queue.empty());
  EXPECT_EQ(f.w[0].queue.front().begin, 3u);
  EXPECT_EQ(f.w[0].queue.front().attempt, 0u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 1000u);
  EXPECT_EQ(rep.retries, 0u);
}

TEST(Dispatcher, ReturnedPieceOfAChunkWithoutBudgetIsAProtocolFailure) {
  Fake f(fixed_chunks(8), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  proto::Done m{f.d.job_id(), {f.piece(0, 3, /*returned=*/true)}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
}

TEST(Dispatcher, WorkerRetiresAfterMaxTasksAndIsReplaced) {
  FarmOptions o = fixed_chunks(4);
  o.max_tasks_per_worker = 10;
  Fake f(o, 1);
  f.begin(25);
  f.step();
  std::uint64_t held = 0;
  for (const auto& c : f.w[0].queue) held += c.end - c.begin;
  EXPECT_LE(held, 10u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 25u);
  EXPECT_EQ(f.starts, 3) << "10 + 10 + 5";
  EXPECT_EQ(rep.worker_deaths, 0u) << "a retired worker that exits 0 when told is no death";
  EXPECT_TRUE(f.rec.failures.empty());
}

TEST(Dispatcher, ForkModeStopsEachWorkerOnceNothingIsLeftToHandOutAndStartsNoOther) {
  Fake f(fixed_chunks(4), 2, /*fork_mode=*/true);
  f.begin(8);
  f.step();
  f.hello(0);
  f.hello(1);
  f.done(0);  // slot 0 finishes first
  f.step();   // nothing is left to hand out: both are told, the busy one with what it holds
  EXPECT_TRUE(f.w[0].told_to_stop);
  EXPECT_TRUE(f.w[1].told_to_stop);
  f.gone(0, exited(0));
  for (int k = 0; k < 3; ++k) f.step();
  EXPECT_EQ(f.starts, 2) << "no worker is started (only to be stopped) while the last one finishes";
  f.done(1);
  f.gone(1, exited(0));
  EXPECT_TRUE(f.d.finished());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.succeeded, 8u);
  EXPECT_EQ(rep.worker_deaths, 0u);
}

TEST(Dispatcher, ExitZeroMidTaskIsAFailureOfThatTask) {
  Fake f(fixed_chunks(4, 0), 1, /*fork_mode=*/true);
  f.begin(4);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 2 ? Fake::Outcome::exit_clean : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{2});
  EXPECT_EQ(rep.failures[0].cause, FailureCause::exit);
  EXPECT_EQ(rep.worker_deaths, 1u) << "told to stop, but it still held work";
}

TEST(Dispatcher, SpawnFailureForWantOfResourcesBacksOffWhileTheOthersWork) {
  Fake f(fixed_chunks(4), 2);
  f.spawn_failures.push_back(SpawnFailure{EAGAIN, "fork of a worker: Resource temporarily unavailable", false});
  f.begin(40);
  f.step();  // slot 0 fails, slot 1 starts
  EXPECT_EQ(f.starts, 2);
  EXPECT_FALSE(f.w[0].live);
  EXPECT_TRUE(f.w[1].live);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_NE(f.rec.failures[0].message.find("carrying on with 0 of 2 workers"), std::string::npos) << f.rec.failures[0].message;
  EXPECT_EQ(f.d.next_wakeup(f.now), f.now + 50ms) << "the first backoff";
  f.step();
  EXPECT_EQ(f.starts, 2) << "not before its backoff";
  f.now += 50ms;
  f.step();
  EXPECT_EQ(f.starts, 3);
  EXPECT_TRUE(f.w[0].live);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 40u);
  EXPECT_EQ(rep.failed_spawns, 1u);
  EXPECT_TRUE(rep.farm_error.empty());
}

TEST(Dispatcher, NoWorkerAtAllStopsTheRunAfterMaxStartFailures) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 3;
  Fake f(o, 1);
  for (int k = 0; k < 3; ++k) f.spawn_failures.push_back(SpawnFailure{EAGAIN, "fork: EAGAIN", false});
  f.begin(8);
  for (int k = 0; k < 3 && !f.d.halting_now(); ++k) {
    f.step();
    f.now += 10s;
  }
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.farm_error, "cannot start any worker: fork: EAGAIN (3 attempts in a row)");
  EXPECT_EQ(rep.failed_spawns, 3u);
  EXPECT_EQ(f.rec.failures.size(), 2u) << "said once per streak, and once when the run stops";
}

TEST(Dispatcher, FatalSpawnFailureStopsTheRunAtOnce) {
  Fake f(fixed_chunks(4), 2);
  f.spawn_failures.push_back(SpawnFailure{ENOEXEC, "cannot start worker program ./fake: Exec format error", true});
  f.begin(8);
  f.step();
  EXPECT_EQ(f.starts, 1) << "no second start once the program cannot be executed";
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.farm_error, "cannot start worker program ./fake: Exec format error");
  ASSERT_EQ(rep.failures.size(), 1u);
  EXPECT_EQ(rep.failures[0].error, ENOEXEC);
}

TEST(Dispatcher, TaskTimeoutKillsWithTermFirstAndChargesTheIndexAsTimeout) {
  FarmOptions o = fixed_chunks(4, 0);
  o.task_timeout = 200ms;
  o.kill_grace = 50ms;
  Fake f(o, 1);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_overdue(0, Overdue::task);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_TRUE(f.kills[0].term_first);
  f.gone(0, killed_by(SIGTERM), 1);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].cause, FailureCause::timeout);
  EXPECT_EQ(f.rec.failures[0].message, "ran longer than 200 ms; sent SIGTERM, then SIGKILL after 50 ms");
}

TEST(Dispatcher, WorkerCrashingOnItsOwnWhileTimedOutDiesOfItsOwnCause) {
  FarmOptions o = fixed_chunks(4, 0);
  o.task_timeout = 200ms;
  Fake f(o, 1);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_overdue(0, Overdue::task);
  f.execute();
  f.gone(0, killed_by(SIGSEGV), 1);
  EXPECT_EQ(f.rec.failures.at(0).cause, FailureCause::signal);
}

TEST(Dispatcher, NoWorkerHoldsMoreThanItsShareOfTheUnfinishedWork) {
  Fake f(fixed_chunks(10), 2);
  f.begin(100);
  f.step();
  f.hello(0);
  f.hello(1);
  f.done(0);  // measured: a worker may now hold hundreds of chunks (Scheduler::depth) but for its share
  f.step();
  std::uint64_t held[2] = {0, 0};
  for (std::size_t s = 0; s < 2; ++s)
    for (const auto& c : f.w[s].queue) held[s] += c.end - c.begin;
  const std::uint64_t unfinished = 100 - 10;  // committed: [0, 10)
  for (std::size_t s = 0; s < 2; ++s) EXPECT_LE(held[s], (unfinished + 1) / 2) << "slot " << s;
  EXPECT_GT(held[0], 10u) << "it was topped up";
}

TEST(Dispatcher, UnansweredStopIsNotAnExpectedExit) {
  Fake f(fixed_chunks(4), 1, /*fork_mode=*/true);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_send_failed(0, SendFailure{true, true, "closed"});  // the Stop never reached it
  f.done(0);
  f.gone(0, exited(0));
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.worker_deaths, 1u);
}

TEST(Dispatcher, WorkerNotReadingItsChannelIsKilledAsFaulty) {
  Fake f(fixed_chunks(4), 1);
  f.begin(8);
  f.step();
  f.d.on_send_failed(0, SendFailure{false, false, "send timed out"});
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
}

TEST(Dispatcher, TasksDoneSaysWhichTasksFailedAndWhenThePieceRan) {
  Fake f(fixed_chunks(8, 0), 1);
  f.begin(8);
  f.step();  // started and handed [0, 8) at time 0
  f.hello(0);
  const std::uint64_t id = f.w[0].queue.front().id;
  f.now = Clock::time_point{} + 10ms;
  f.task_error(0, 1);
  f.d.on_message(0, proto::Done{f.d.job_id(), {proto::ChunkDone{id, 3, 0, 0, 4'000'000, false, false}}}, f.none, f.now);
  ASSERT_EQ(f.rec.pieces.size(), 1u);
  EXPECT_EQ(f.rec.piece_failed[0], std::vector<std::uint64_t>{1});
  EXPECT_EQ(f.rec.pieces[0].succeeded(), 2u);
  EXPECT_EQ(f.rec.pieces[0].start, Clock::time_point{} + 6ms) << "ended at the latest when its Done came, ran 4 ms";
  EXPECT_EQ(f.rec.pieces[0].stop, Clock::time_point{} + 10ms);
  EXPECT_EQ(f.rec.of(1).at(0).runtime, 0ns) << "an exception is reported as it happens";
  // The next piece came in the same batch of Done messages: it cannot have started before the
  // previous one ended.
  f.now = Clock::time_point{} + 11ms;
  f.d.on_message(0, proto::Done{f.d.job_id(), {proto::ChunkDone{id, 5, 0, 0, 5'000'000, false, false}}}, f.none, f.now);
  ASSERT_EQ(f.rec.pieces.size(), 2u);
  EXPECT_TRUE(f.rec.piece_failed[1].empty());
  EXPECT_EQ(f.rec.pieces[1].start, Clock::time_point{} + 10ms);
  EXPECT_EQ(f.rec.pieces[1].stop, Clock::time_point{} + 15ms);
  // It dies running 6 at 20 ms: that attempt ran since the previous piece ended.
  f.now = Clock::time_point{} + 20ms;
  f.w[0].upto = 5;
  f.gone(0, killed_by(SIGKILL), 6);
  ASSERT_EQ(f.rec.of(6).size(), 1u);
  EXPECT_EQ(f.rec.of(6)[0].runtime, 5ms);
}
