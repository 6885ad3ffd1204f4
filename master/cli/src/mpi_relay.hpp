// A node master's batches of text up to rank 0 in `taskfarm run --mpi` (docs/design.md §17):
// joblog rows, --events lines, --trace records and, with --keep-order, its tasks' stdout. Each
// is a FarmObserver in the node's fanout (mpi_node.cpp), sending from the farm's callbacks over
// the socketpair to its relay, which passes each text on to rank 0 in the order it came. Node
// master, main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpi_wire.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/joblog.hpp"

namespace taskfarm::cli::mpi {

/// A text kind's batches up to rank 0: a datagram and an MPI message per batch, not per record.
/// A batch goes when it is 16 KiB, when the last went `lag` ago (0: at once), at a tick and at
/// the end. Its producers (JoblogRows, EventStream, Trace) add to it from their callbacks; this
/// observer, after them in the fanout, sends from the same callbacks — a producer's sink never
/// sends (Trace's flush may not throw).
class TextRelay : public FarmObserver {
 public:
  TextRelay(int fd, Wire::Kind kind, std::chrono::milliseconds lag) : fd_(fd), kind_(kind), lag_(lag) {}
  void add(std::string_view text) { text_ += text; }
  /// `first`'s text goes before this one's at each send (also when this one has none).
  void send_after(TextRelay& first) noexcept { first_ = &first; }
  void on_worker_started(int, pid_t) override { flush_if_due(); }
  void on_tasks_done(const TasksDone&) override { flush_if_due(); }
  void on_result(const IndexResult&) override { flush_if_due(); }
  void on_failure(const FailureRecord&) override { flush_if_due(); }
  void on_stall(const WorkerLiveness&) override { flush_if_due(); }
  void on_tick(const FarmTick&) override { flush(); }
  void flush();

 protected:
  void flush_if_due();
  std::string text_;

 private:
  int fd_;
  Wire::Kind kind_;
  std::chrono::milliseconds lag_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  TextRelay* first_ = nullptr;
};

/// The node's joblog rows, every 50 ms at most: rank 0's joblog lags the node's commits by that
/// much (a resume then reruns those few tasks).
class RowRelay final : public TextRelay {
 public:
  explicit RowRelay(int fd) : TextRelay(fd, Wire::rows, std::chrono::milliseconds(50)) {}
  /// Every row gets its task's inputs fingerprint (rank 0's joblog has the inputs column).
  void record_inputs(InputFingerprint inputs) { format_.inputs = std::move(inputs); }
  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

 private:
  JoblogRows format_;  // rank 0 adds the host column
};

/// --keep-order: the node's tasks' stdout up to rank 0, which prints it in task order
/// (mpi_order.hpp), batched as rows are but every 20 ms. A worker program's captured stdout comes
/// with its result; a command's comes from ExecOutput (which gets pieces() as its --events sink)
/// just before the result. The record that says a task is done goes at its commit
/// (on_tasks_done, or its final failure), after its row: this relay comes after the RowRelay in
/// the fanout and sends after it (send_after), so rank 0 has a task's row whenever it has its end
/// — a rank lost between the two sends can no longer leave rank 0 with a task printed whole and
/// no row, which its --resume printed again (outside pass F37).
class OutputRelay final : public TextRelay {
 public:
  OutputRelay(int fd, bool exec) : TextRelay(fd, Wire::output, std::chrono::milliseconds(20)), exec_(exec), pieces_(*this) {}
  FarmObserver* pieces() { return &pieces_; }
  void on_result(const IndexResult& r) override;
  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

 private:
  struct Pieces final : FarmObserver {
    explicit Pieces(OutputRelay& to) : relay(to) {}
    void on_result(const IndexResult& r) override;
    OutputRelay& relay;
  };
  bool exec_;
  Pieces pieces_;
  std::vector<std::pair<std::uint64_t, std::size_t>> open_;  // this commit's records so far: (task, offset in text_)
};

}  // namespace taskfarm::cli::mpi
