#include "taskfarm/detail/worker_loop.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <typeinfo>

#include "taskfarm/detail/carry.hpp"
#include "taskfarm/detail/caught.hpp"
#include "taskfarm/detail/slot.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::detail {
namespace {

constexpr std::size_t kFlushEntries = 128;
constexpr std::int64_t kFlushNs = 2'000'000;  // report at least every 2 ms when busy (each report wakes the master)
constexpr auto kIdleWait = std::chrono::milliseconds(1000);
constexpr std::size_t kMaxRecordPart = 0xffffffffu;  // a record's lengths are u32

// Set in a child forked by a kernel (pthread_atfork), cleared where a worker starts serving: a
// kernel's child that returns from the kernel instead of ending with _exit() or exec() would
// otherwise go on serving beside its parent — reading its messages, committing into its arena —
// which left a Python run waiting for ever (os.fork() in a kernel) and got a C++ worker killed.
std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true, std::memory_order_relaxed); }

// Called where a kernel returned (or threw), before anything is sent or written: in a forked
// child of the kernel it says so on stderr and ends that child, touching nothing shared (no
// destructor, no stdio flush); the worker itself goes on.
void leave_if_forked_child(std::uint64_t index) {
  if (!g_forked_child.load(std::memory_order_relaxed)) [[likely]]
    return;
  char line[256];
  const int n = std::snprintf(line, sizeof line,
                              "taskfarm worker: a task forked and the child (pid %d) returned from the kernel (at index "
                              "%llu): it ends here; a forked child must end with _exit() or exec()\n",
                              static_cast<int>(::getpid()), static_cast<unsigned long long>(index));
  if (n > 0) {
    [[maybe_unused]] const auto w = ::write(STDERR_FILENO, line, std::min(static_cast<std::size_t>(n), sizeof line - 1));
  }
  ::_exit(0);
}

void append_u32(std::string& out, std::size_t v) {
  const auto x = static_cast<std::uint32_t>(v);
  out.append(reinterpret_cast<const char*>(&x), sizeof x);
}

/// Redirects fd 1 into a memfd so that each task's output can be collected separately. Only fd 1
/// holds the memfd (no second descriptor a task could close or replace unseen), and before each
/// take it is checked to be ours still: a task that closed or replaced its standard output is
/// failed with that reason and the next task gets a fresh capture. Before, the worker kept the
/// memfd at a second, high descriptor and read and truncated whatever was there — a file of the
/// user's that a task had put at that number was emptied (outside pass F3), and a task that
/// closed fd 1 lost the output of every later task, or failed them.
class StdoutCapture {
 public:
  StdoutCapture() { install(); }
  StdoutCapture(const StdoutCapture&) = delete;
  StdoutCapture& operator=(const StdoutCapture&) = delete;
  /// Everything printed since the last call.
  void take(std::string& out) {
    std::cout.flush();
    std::fflush(stdout);
    struct stat st{};
    if (::fstat(STDOUT_FILENO, &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_) {
      out.clear();
      install();  // the next task prints into a capture again (what the task put at fd 1 is closed)
      throw Error("it closed or replaced its standard output (descriptor 1), which taskfarm captures per task: a task must "
                  "not close descriptors it did not open");
    }
    out.resize(st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0);
    if (st.st_size <= 0) return;  // the usual case: one syscall for a task that printed nothing
    if (::pread(STDOUT_FILENO, out.data(), out.size(), 0) != st.st_size) throw_errno("reading captured stdout");
    if (::ftruncate(STDOUT_FILENO, 0) != 0 || ::lseek(STDOUT_FILENO, 0, SEEK_SET) != 0) throw_errno("resetting captured stdout");
  }

 private:
  void install() {
    UniqueFd fd(::memfd_create("taskfarm-stdout", MFD_CLOEXEC));
    if (!fd) throw_errno("memfd_create for stdout capture");
    std::fflush(stdout);
    std::cout.flush();
    if (fd.get() == STDOUT_FILENO)  // fd 1 was closed (by a task), so the memfd took its number
      (void)fd.release();
    else if (::dup2(fd.get(), STDOUT_FILENO) < 0)
      throw_errno("dup2 for stdout capture");
    struct stat st{};
    if (::fstat(STDOUT_FILENO, &st) != 0) throw_errno("fstat of the stdout capture");
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }

  std::uint64_t dev_ = 0, ino_ = 0;
};

class Server {
 public:
  Server(Channel channel, ShmSegment slot, const RunnerFactory& make_runner, bool greeted)
      : greeted_(greeted),
        ch_(std::move(channel)),
        slot_seg_(std::move(slot)),
        s_(slot_state(slot_seg_)),
        arena_(s_, static_cast<char*>(slot_seg_.data()) + s_.arena_offset),
        make_runner_(make_runner) {}

  int run() {
    if (!greeted_) ch_.send(proto::Hello{static_cast<std::int32_t>(::getpid())}, std::chrono::seconds(10));
    for (;;) {
      if (queue_.empty()) {
        flush();
        if (stopping_) return 0;
        auto m = ch_.receive(kIdleWait);
        if (!m) continue;  // the master is alive (else PDEATHSIG); keep waiting
        handle(*m);
      }
      // A receive costs a system call, as much as a short chunk: look for more work only when
      // this is nearly done (Stop takes effect once the queue is empty anyway, and Wake only
      // matters to a worker waiting for arena room, which is receiving).
      if (queue_.size() <= 2 || ++chunks_since_receive_ >= 64) {
        chunks_since_receive_ = 0;
        while (auto m = ch_.try_receive()) handle(*m);
      }
      if (!queue_.empty()) {
        const proto::Chunk c = queue_.front();
        queue_.pop_front();
        run_chunk(c);
        if (done_.chunks.size() >= kFlushEntries || queue_.empty() || monotonic_ns() - last_flush_ns_ > kFlushNs) flush();
      }
    }
  }

 private:
  // Stop means: exit once every queued chunk has run and been reported (a fork-mode master
  // sends it with the last chunks, so the exit overlaps the end of the run).
  void handle(proto::Message& m) {
    if (auto* job = std::get_if<proto::Job>(&m)) {
      start_job(*job);
    } else if (auto* a = std::get_if<proto::Assign>(&m)) {
      if (a->job_id != info_.job_id) throw Error("chunks for job " + std::to_string(a->job_id) + " before its Job message");
      if (stopping_) throw Error("chunks after Stop");
      queue_.insert(queue_.end(), a->chunks.begin(), a->chunks.end());
    } else if (std::holds_alternative<proto::Stop>(m)) {
      stopping_ = true;
    }
    // Wake: nothing to do, the caller re-checks arena room
  }

  void start_job(const proto::Job& job) {
    flush();
    info_ = JobInfo{job.job_id, job.kernel, job.extent, job.output_handle, job.input_handle, job.lines_handle, job.wants_result};
    done_.job_id = job.job_id;
    capture_.reset();
    if (job.capture_stdout) capture_ = std::make_unique<StdoutCapture>();
    collect_ = job.wants_result || job.capture_stdout;
    time_tasks_ = job.time_tasks;
    runner_ = make_runner_(info_);
    runner_->begin_job(info_);
  }

  void run_chunk(const proto::Chunk& c) {
    s_.last_chunk.store(c.id, std::memory_order_relaxed);
    s_.current_chunk.store(c.id, std::memory_order_relaxed);
    committed_ = c.begin;
    const std::int64_t chunk_start = monotonic_ns();
    std::int64_t piece_start = chunk_start;
    s_.task_started_ns.store(piece_start, std::memory_order_release);
    // A chunk with a budget (sent while the master knows nothing of the task time yet) runs in
    // steps aimed at the end of the budget, each at most twice what has run so far (1, 2, 6,
    // 18, ...); once it is spent, the rest of the chunk goes back. Without a budget, the whole
    // chunk is one step.
    const auto budget = static_cast<std::int64_t>(c.budget_ns);
    std::uint64_t i = c.begin, step = budget != 0 ? 1 : c.end - c.begin;
    bool returned = false;
    while (i < c.end) {
      const std::uint64_t hi = i + std::min(step, c.end - i);
      i = collect_ || time_tasks_ ? run_each(c, i, hi, piece_start) : run_span(c, i, hi);
      if (budget == 0 || i >= c.end) continue;
      const std::int64_t used = monotonic_ns() - chunk_start;
      if (used >= budget) {
        returned = true;
        break;
      }
      const double per_index = static_cast<double>(used) / static_cast<double>(i - c.begin);
      const double to_deadline = static_cast<double>(budget - used) / std::max(per_index, 1.0);
      step = static_cast<std::uint64_t>(std::clamp(to_deadline, 1.0, 2.0 * static_cast<double>(i - c.begin)));
    }
    // Once per chunk: a locked add per task would cost as much as a trivial task.
    s_.tasks_done.store(s_.tasks_done.load(std::memory_order_relaxed) + (i - c.begin), std::memory_order_relaxed);
    // No task timeout while committing (the wait for arena room is the master's). A death from
    // here on is not the running index's alone: the slot's `delivering` and `last_chunk` say so.
    s_.task_started_ns.store(0, std::memory_order_relaxed);
    commit(c, i, piece_start, returned);
    s_.current_chunk.store(kNoChunk, std::memory_order_release);
  }

  // Nothing to collect or time per index: the runner loops over [lo, hi) itself (one virtual
  // call, and a kernel the compiler can inline). A throw resumes after the index it names.
  std::uint64_t run_span(const proto::Chunk& c, std::uint64_t lo, std::uint64_t hi) {
    for (std::uint64_t i = lo; i < hi;) {
      const std::uint64_t resume = guarded(c, i, hi, [&] {
        runner_->run_range(i, hi, s_.current_index);
        return hi;
      });
      i = resume != kThrew ? resume : std::clamp(current(), i, hi - 1) + 1;
    }
    return hi;
  }

  // Index by index: stamps task start times (a timeout to enforce), collects values and
  // captured text, and commits a piece whenever the records fill a quarter of the arena.
  std::uint64_t run_each(const proto::Chunk& c, std::uint64_t lo, std::uint64_t hi, std::int64_t& piece_start) {
    for (std::uint64_t i = lo; i < hi; ++i) {
      s_.current_index.store(i, std::memory_order_release);
      // A clock read costs ~44 ns here, as much as a trivial task: only with a timeout to enforce.
      if (time_tasks_) s_.task_started_ns.store(monotonic_ns(), std::memory_order_release);
      value_.clear();
      run_index(c, i);
      if (collect_) collect(c, i, piece_start);
    }
    return hi;
  }

  // Appends index i's record. A record that would take the pending ones past a quarter of the
  // arena goes in a piece of its own (what came before is committed first), so only a lone
  // record is ever too large for the arena (and carried). Whatever keeps the record from being
  // built — capturing its output, its size, memory — fails index i, with an empty record.
  void collect(const proto::Chunk& c, std::uint64_t i, std::int64_t& piece_start) {
    std::size_t len = 2 * sizeof(std::uint32_t);
    try {
      if (capture_) capture_->take(text_);
      if (value_.size() > kMaxRecordPart || text_.size() > kMaxRecordPart)
        throw Error("its result of " + format_bytes(value_.size()) + " and output of " + format_bytes(text_.size()) +
                    " exceed the " + format_bytes(kMaxRecordPart) + " a result record can hold");
      len += value_.size() + text_.size();
    } catch (const std::exception& e) {
      fail_record(c, i, e);
    }
    if (!records_.empty() && records_.size() + len > s_.arena_capacity / 4) {
      commit(c, i, piece_start, false);
      piece_start = monotonic_ns();
    }
    const std::size_t before = records_.size();
    try {
      records_.reserve(before + len);
    } catch (const std::bad_alloc& e) {
      fail_record(c, i, e);
    }
    append_u32(records_, value_.size());
    records_.append(value_);
    append_u32(records_, text_.size());
    records_.append(text_);
    if (records_.size() > s_.arena_capacity / 4 && i + 1 < c.end) {
      commit(c, i + 1, piece_start, false);
      piece_start = monotonic_ns();
    }
  }

  // Index i's result cannot be delivered: the master hears why, and its record stays empty.
  void fail_record(const proto::Chunk& c, std::uint64_t i, const std::exception& e) {
    const bool oom = dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
    report_error(c, i, oom, exception_type_name(e), std::string(oom ? "building its result record: " : "") + e.what());
    text_.clear();
    value_.clear();
    value_.shrink_to_fit();
  }

  void run_index(const proto::Chunk& c, std::uint64_t i) {
    guarded(c, i, i + 1, [&] {
      runner_->run(i, value_);
      return std::uint64_t{0};
    });
  }

  static constexpr std::uint64_t kThrew = ~std::uint64_t{0};

  // Runs body() over indices [lo, hi); if the kernel throws, reports it against the index in
  // current_index (kept within [lo, hi): a runner may throw before it stores one) and returns
  // kThrew.
  template <class Body>
  std::uint64_t guarded(const proto::Chunk& c, std::uint64_t lo, std::uint64_t hi, Body&& body) {
    try {
      const std::uint64_t r = body();
      leave_if_forked_child(current());
      return r;
    } catch (const TaskProcessFailed& e) {
      leave_if_forked_child(current());
      report_process_failure(c, std::clamp(current(), lo, hi - 1), e);
    } catch (const KernelError& e) {  // a kernel in another language names its own exception
      leave_if_forked_child(current());
      report_error(c, std::clamp(current(), lo, hi - 1), e.out_of_memory(), e.type(), e.what());
    } catch (...) {
      leave_if_forked_child(current());
      CaughtException x = caught_exception();
      report_error(c, std::clamp(current(), lo, hi - 1), x.out_of_memory, std::move(x.type), std::move(x.message));
    }
    return kThrew;
  }
  std::uint64_t current() const { return s_.current_index.load(std::memory_order_relaxed); }

  // The task's own process failed (a command per task): its status, not an exception.
  void report_process_failure(const proto::Chunk& c, std::uint64_t i, const TaskProcessFailed& e) {
    proto::TaskError m{info_.job_id, c.id,       i,
                       e.out_of_memory(), "", e.what(), e.exit_code(), e.signal(), e.stderr_tail(),
                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, e.runtime().count()))};
    m.exit_code = std::clamp(m.exit_code, 0, 255);
    m.signal = m.exit_code != 0 ? 0 : std::clamp(m.signal, 0, 64);
    if (m.what.size() > proto::kMaxText) m.what.resize(proto::kMaxText);
    if (m.stderr_tail.size() > proto::kMaxText) m.stderr_tail.erase(0, m.stderr_tail.size() - proto::kMaxText);
    value_.clear();
    ch_.send(m, std::chrono::seconds(60));
  }

  // The kernel threw at index i: the master hears it before the commit that covers i.
  void report_error(const proto::Chunk& c, std::uint64_t i, bool oom, std::string type, std::string what) {
    if (what.size() > proto::kMaxText) what.resize(proto::kMaxText);
    if (type.size() > proto::kMaxText) type.resize(proto::kMaxText);
    value_.clear();
    ch_.send(proto::TaskError{info_.job_id, c.id, i, oom, std::move(type), std::move(what), 0, 0, "", 0}, std::chrono::seconds(60));
  }


  // Publishes [committed_, upto) of chunk c: its records go into the arena (or, larger than
  // the arena, are carried in a memfd), its entry into Done. `returned`: [upto, end) was not
  // run and goes back to the master.
  void commit(const proto::Chunk& c, std::uint64_t upto, std::int64_t piece_start, bool returned) {
    proto::ChunkDone d{c.id, upto, 0, 0, static_cast<std::uint64_t>(monotonic_ns() - piece_start), returned, false};
    const std::uint64_t begin = std::exchange(committed_, upto);
    if (records_.size() > s_.arena_capacity && carry(c, begin, d)) return;
    if (!records_.empty()) {
      std::uint64_t pos = 0;
      char* dst = nullptr;
      while ((dst = arena_.try_reserve(records_.size(), pos)) == nullptr) wait_for_room();
      std::memcpy(dst, records_.data(), records_.size());
      arena_.commit(pos, records_.size());
      d.arena_pos = pos;
      d.arena_len = records_.size();
      records_.clear();
    }
    done_.chunks.push_back(d);
  }

  // Records that can never fit the arena go whole in a sealed memfd, passed with a Done of
  // their own (after the pending ones: the master commits in channel order). If that fails,
  // every index of the piece [begin, d.upto) fails with the reason, and the piece goes through
  // the arena with empty records; returns false then.
  bool carry(const proto::Chunk& c, std::uint64_t begin, proto::ChunkDone d) {
    UniqueFd fd;
    try {
      fd = write_carried(records_);
    } catch (const std::exception& e) {
      const auto* sys = dynamic_cast<const SystemError*>(&e);
      const bool oom = sys != nullptr && (sys->code() == ENOMEM || sys->code() == ENOSPC);
      const std::string why = "its result of " + format_bytes(records_.size()) + " could not be carried to the master: " + e.what();
      records_.clear();
      for (std::uint64_t i = begin; i < d.upto; ++i) {
        report_error(c, i, oom, exception_type_name(e), why);
        append_u32(records_, 0);
        append_u32(records_, 0);
      }
      return false;
    }
    flush();
    d.carried = true;
    d.arena_len = records_.size();
    s_.delivering.store(1, std::memory_order_relaxed);
    ch_.send(proto::Done{info_.job_id, {d}}, std::chrono::seconds(60), fd.get());
    s_.delivering.store(0, std::memory_order_relaxed);
    records_.clear();
    records_.shrink_to_fit();  // do not keep the largest result's memory for the rest of the run
    return true;
  }

  void wait_for_room() {
    flush();  // the master can only make room for what it has been told about
    s_.arena_waiting.store(1, std::memory_order_seq_cst);
    s_.delivering.store(1, std::memory_order_relaxed);
    auto m = ch_.receive(std::chrono::milliseconds(100));
    s_.delivering.store(0, std::memory_order_relaxed);
    s_.arena_waiting.store(0, std::memory_order_relaxed);
    if (m) handle(*m);
  }

  // Sends what has been committed. While it talks to the master the slot says `delivering`: a
  // death now (a channel a task broke) is charged to what ran since the master last heard from
  // this worker, not to the last index run (the master isolates it: Dispatcher::on_gone).
  void flush() {
    last_flush_ns_ = monotonic_ns();
    if (done_.chunks.empty()) return;
    s_.delivering.store(1, std::memory_order_relaxed);
    ch_.send(done_, std::chrono::seconds(60));
    s_.delivering.store(0, std::memory_order_relaxed);
    done_.chunks.clear();
  }

  bool greeted_ = false;  // Hello went out before serving (taskfarm::greet)
  Channel ch_;
  ShmSegment slot_seg_;
  SlotState& s_;
  ArenaWriter arena_;
  const RunnerFactory& make_runner_;
  JobInfo info_;
  std::unique_ptr<JobRunner> runner_;
  std::unique_ptr<StdoutCapture> capture_;
  bool collect_ = false;
  bool time_tasks_ = false;
  std::deque<proto::Chunk> queue_;
  proto::Done done_;
  std::string value_, text_, records_;
  std::uint64_t committed_ = 0;  // of the running chunk: [begin, committed_) is in done_ or sent
  std::int64_t last_flush_ns_ = 0;
  int chunks_since_receive_ = 0;
  bool stopping_ = false;
};

}  // namespace

void prepare_serve() {
  // Once per process image (a forked worker inherits the handler).
  static const bool registered = ::pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
  (void)registered;
}

int serve(Channel channel, ShmSegment slot, const RunnerFactory& make_runner, bool greeted) {
  prepare_serve();
  // This process serves, so it is not a kernel's stray child even if it was forked (a Pool made
  // inside a task forks its workers; a master's own forks run the handler too).
  g_forked_child.store(false, std::memory_order_relaxed);
  try {
    channel.guard_identity();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm worker %d: %s\n", static_cast<int>(::getpid()), e.what());
    return kExitSetupFailed;
  }
  Server server(std::move(channel), std::move(slot), make_runner, greeted);
  try {
    return server.run();
  } catch (const ChannelClosed&) {
    return 0;  // the master went away or closed us: nothing left to serve
  } catch (const SystemError& e) {
    // Its channel's descriptor was closed (or replaced by another kind of file) under it: no
    // code of ours closes it, so a task did. The master charges the task (Dispatcher::on_gone).
    const bool channel_gone = e.code() == EBADF || e.code() == ENOTSOCK;
    std::fprintf(stderr, "taskfarm worker %d: %s%s\n", static_cast<int>(::getpid()), e.what(),
                 channel_gone ? " (a task closed its worker's descriptors: a task must not close descriptors it did not open)" : "");
    return kExitSetupFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm worker %d: %s\n", static_cast<int>(::getpid()), e.what());
    return kExitSetupFailed;
  }
}

}  // namespace taskfarm::detail
