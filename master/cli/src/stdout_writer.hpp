// StdoutWriter: the master's standard output (tasks' captured stdout, --events lines), or its
// stderr. Whole pieces are buffered and written with write(2), so a task's output is never
// split by another task's; a file is copied whole (write_file). A reader that goes away (EPIPE;
// SIGPIPE is ignored) is reported once to `on_failed`, which stops the run, and later writes are
// dropped. Farm's thread.
//
// `taskfarm run` never blocks on it (queue_when_full, h12 F17): a reader that does not read
// (a pager nobody scrolls) must not stop the master from timing tasks out, saying stalls and
// acting on signals. What the descriptor does not take waits in a queue, in order — text, and
// ranges of files (a task's spooled output, which stays on disk) — and is written as the
// descriptor takes more: the Farm watches it (Outlet) and holds back new work while the queue
// is full. then() says when what was taken before is out: a task is recorded done (joblog)
// only once its output is.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "taskfarm/outlet.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {
class Progress;
}  // namespace taskfarm

namespace taskfarm::cli {

/// A descriptor of its own, non-blocking, for the pipe or terminal at `fd` (the description
/// shared with other processes keeps its flags); empty for anything else (a regular file never
/// waits for a reader; a socket cannot be opened anew).
UniqueFd reopen_nonblocking(int fd);
/// Whether descriptors `a` and `b` are the same file (one pipe, one terminal).
bool same_file(int a, int b);

class StdoutWriter final : public Outlet {
 public:
  /// `on_failed(errno)`: the first write that failed (EPIPE: the reader went away).
  explicit StdoutWriter(std::function<void(int)> on_failed, int fd = 1);
  ~StdoutWriter();  ///< flushes (queueing: drops what waits, its marks not called)
  StdoutWriter(const StdoutWriter&) = delete;
  StdoutWriter& operator=(const StdoutWriter&) = delete;

  /// The progress line to clear before writing (when both share a terminal), or nullptr.
  void set_progress(Progress* progress) noexcept { progress_ = progress; }
  /// Appends `text`; writes out once the buffer passes 64 KiB.
  void write(std::string_view text);
  /// Writes out what is buffered.
  void flush();
  /// Writes what is buffered, then the file `fd` from its position to its end, or `limit` bytes
  /// of it, in pieces (sendfile; read/write through a 64 KiB buffer where sendfile cannot):
  /// memory stays bounded whatever the file's size. Returns the bytes written (or, queueing,
  /// taken: what waits keeps a descriptor of the file and its range — or, up to 64 KiB, a copy
  /// — so `fd`'s offset and later use are free); stops early if the reader went away.
  /// `in_memory`: the file's pages are memory (a memfd), so a range of it that waits counts
  /// towards `text_bound` as text does (queue_when_full).
  std::uint64_t write_file(int fd, std::uint64_t limit = ~std::uint64_t{0}, bool in_memory = false);

  /// Never blocks from now on (see the top). A pipe or terminal is written through a
  /// non-blocking descriptor of its own; what it does not take is queued. full() once the
  /// queued text passes `text_bound` bytes, or `also_full()` says so.
  void queue_when_full(std::uint64_t text_bound, std::function<bool()> also_full = {});
  /// Writes through `lead`'s queue (when it queues), behind what waits there: a task's stderr
  /// comes after its stdout, and a mark after what it marks, where both go to one pipe.
  /// `lead` must outlive this writer.
  void follow(StdoutWriter& lead);
  /// The descriptor written to.
  int descriptor() const noexcept { return fd_; }
  /// Calls `done(all_out)` once everything taken before it is written out (true), or could not
  /// be (false: standard output closed, failed or was given up). At once when nothing waits.
  void then(std::function<void(bool all_out)> done);
  /// Something waits in the queue (this writer's or its lead's).
  bool busy() const noexcept;
  /// Called whenever the queue has just emptied (more may be put in it then).
  void on_room(std::function<void()> f) { on_room_ = std::move(f); }
  /// At the end: waits until all that waits is written out or cannot be. Without a stop, as long
  /// as the reader takes; once `*stop` is set, at most `patience` more (then gave_up()).
  void drain(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience);
  /// Since when the queue's head has waited without a byte taken (a time_point{} if it does not).
  std::chrono::steady_clock::time_point stuck_since() const noexcept { return stuck_since_; }
  std::uint64_t queued_bytes() const noexcept { return queued_; }

  // Outlet (the Farm's loop).
  int fd() const override;
  void writable() override { pump(); }
  bool full() const override;
  /// Closed: the reader went away, a write failed, or it gave up after a stop (below).
  bool closed() const noexcept { return closed_; }
  /// The errno of the write that failed (EPIPE: the reader went away), or 0.
  int error() const noexcept { return error_; }

  /// Rank 0 under `--mpi` (F31): mpirun SIGKILLs rank 0 about 1 s after its SIGTERM, and rank 0
  /// must say why the job ends and remove its spool before. Once `*stop` is set (by a signal
  /// handler), this writer waits at most `patience` in all for standard output to take more,
  /// then gives up: gave_up(), closed(), later writes dropped. Before the stop a slow reader
  /// is waited for as ever. A pipe or terminal is written through a descriptor of its own,
  /// opened non-blocking (the one shared with other processes keeps its flags), so that no
  /// write blocks and every wait is a poll() in short slices that sees the flag.
  void give_up_after_stop(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience);
  bool gave_up() const noexcept { return gave_up_; }
  /// Bytes written out so far, and those taken (written out or buffered).
  std::uint64_t bytes_out() const noexcept { return out_; }
  std::uint64_t bytes_taken() const noexcept { return out_ + buf_.size() + queued_; }

 private:
  // What waits in the queue: `text` from `pos`, or `len` bytes of `file` from `off`, or a mark.
  struct Item {
    StdoutWriter* to = nullptr;  // whose descriptor: the queue's owner, or a follower
    std::string text;
    std::size_t pos = 0;
    UniqueFd file;
    std::uint64_t off = 0, len = 0;
    bool in_memory = false;          // its file's pages are memory: counted in queued_text_
    std::function<void(bool)> done;  // a mark (then())
  };
  enum class Step { wrote, blocked, ended };
  void failed(int error);
  bool may_go_on();
  bool wait_writable();
  StdoutWriter* queue_owner() noexcept;
  const StdoutWriter* queue_owner() const noexcept;
  void push(Item item);
  void pump();
  Step write_some(Item& item);
  void drop(Item& item);
  void drop_all();
  bool open_own();
  void shared_nonblocking();

  std::function<void(int)> on_failed_;
  int fd_;
  std::string buf_;
  bool closed_ = false;
  int error_ = 0;
  Progress* progress_ = nullptr;
  std::uint64_t out_ = 0;
  UniqueFd own_;  // a non-blocking descriptor of standard output's pipe or terminal
  const volatile std::sig_atomic_t* stop_ = nullptr;
  std::chrono::milliseconds patience_{0};
  std::chrono::steady_clock::time_point give_up_at_{};  // once the stop is seen
  bool stop_seen_ = false, gave_up_ = false;
  // Queueing (queue_when_full): the queue is the lead's; followers put their items in it.
  bool queueing_ = false;
  StdoutWriter* lead_ = nullptr;
  std::deque<Item> queue_;
  std::uint64_t queued_ = 0;       // this writer's bytes waiting (in the lead's queue)
  std::uint64_t queued_text_ = 0;  // bytes waiting in this queue in memory: text, memfd ranges
  std::uint64_t text_bound_ = 0;
  std::function<bool()> also_full_;
  std::function<void()> on_room_;
  bool pumping_ = false;
  int restore_flags_ = -1;  // the shared description's flags, made non-blocking (shared_nonblocking)
  std::chrono::steady_clock::time_point stuck_since_{};
};

}  // namespace taskfarm::cli
