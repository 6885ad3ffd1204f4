// `taskfarm run --mpi --keep-order` (docs/design.md §17, "Output in task order"): every node's
// tasks' stdout goes up to rank 0 as `output` texts, and rank 0 prints it in task order, as one
// machine does. A text is a run of records, each a task's piece of stdout and/or the word that
// the task is done (succeeded, or failed for good). Rank 0 writes the task it waits for straight
// through, and keeps a task that comes early until its turn — in memory up to a budget (64 MiB
// by default), beyond it in a file of its spool directory: its memory stays bounded whatever the
// tasks print, and tiny tasks cost no file each. A joblog row waits until its task's output
// is out, as on one machine, so that a --resume never skips a task whose output was lost.
// Node masters make records (mpi_node.cpp); rank 0's relay reads them, main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spool_dir.hpp"
#include "stdout_writer.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm::cli::mpi {

/// A record's flags: the task is done (nothing of it follows), and whether it succeeded.
enum OutputFlag : std::uint32_t { o_done = 1, o_succeeded = 2 };

/// Appends one record (`bytes` of task `index`'s stdout, `flags`) to `text`.
void append_output_record(std::string& text, std::uint64_t index, std::uint32_t flags, std::string_view bytes);
/// Adds `flags` to the record that begins at byte `at` of `text` (a record append_output_record made).
void add_record_flags(std::string& text, std::size_t at, std::uint32_t flags);

/// Rank 0's printer of every node's output, in the order of `todo` (sorted ranges).
class OrderedPrinter {
 public:
  /// Writes a joblog row of node `rank` (whole lines) into the joblog.
  using WriteRows = std::function<void(int rank, std::string_view rows)>;
  /// `spool_parent`: where its spool directory goes (--tmpdir). Throws Error if it cannot be made.
  /// Early tasks' output is held in memory up to `memory_budget` bytes in all, on disk beyond.
  OrderedPrinter(std::vector<IndexRange> todo, const std::string& spool_parent, StdoutWriter& out, WriteRows rows,
                 std::size_t memory_budget = std::size_t{64} << 20);

  /// An `output` text from node `rank`. Throws Error on a malformed one. A task that cannot be
  /// spooled (a full --tmpdir) is lost output: said once on stderr (error()); it and every task
  /// after it stay unprinted and their rows unwritten (a --resume runs them), and the caller
  /// hands out no more work.
  void take(std::string_view text);
  /// With --joblog: every task done comes with its final row (ok or failed; a node sends it before
  /// the record that says the task is done: mpi_relay.hpp), and a task is printed whole only once
  /// its final row is here — its done record waits for it, and is dropped at finish() if the row
  /// never came (its rank lost: a --resume runs it). So rank 0 never prints a task's output
  /// whole whose row died with its rank (outside pass F37). Call before take().
  void expect_rows() noexcept { expect_rows_ = true; }
  /// Why output was lost (a spool write failed), or "".
  const std::string& error() const noexcept { return error_; }
  /// After finish(): how many tasks that succeeded it did not print — their output lost, or held
  /// behind lost output — and whose rows it did not write (a --resume runs them).
  std::uint64_t unprinted_ok() const noexcept { return unprinted_ok_; }
  /// Joblog rows of node `rank`: written now where their task's output is out, else when it is.
  void rows(int rank, std::string_view rows);
  /// The run ends (also cut short): the tasks done but held behind one never done are printed,
  /// in order, and their rows written; rows of tasks never done are dropped (a --resume reruns
  /// them). Removes the spool directory. If standard output gave up after a stop signal
  /// (StdoutWriter::give_up_after_stop), says at which task: no row of a task not wholly out
  /// is written.
  void finish();

 private:
  bool printed(std::uint64_t index) const;
  void take_record(std::uint64_t index, std::uint32_t flags, std::string_view bytes);
  void done(std::uint64_t index, std::uint32_t flags);
  void print_spooled(std::uint64_t index);
  void release_rows(std::uint64_t index);
  void write_released();
  void advance();
  void append_spool(std::uint64_t index, std::string_view bytes);
  void begins(std::uint64_t index);
  void say_cut();
  std::string path_of(std::uint64_t index) const;

  std::vector<IndexRange> todo_;
  std::size_t range_ = 0;   // the range of the task printed next
  std::uint64_t next_ = 0;  // ... and that task, which is written straight through
  SpoolDir spool_;  // removed with what it holds when the printer goes
  StdoutWriter& out_;
  WriteRows write_rows_;
  std::map<std::uint64_t, std::uint32_t> spooled_;                 // index → its flags (o_done once done)
  std::size_t budget_;                                             // most bytes of held_text_
  std::map<std::uint64_t, std::string> held_text_;                 // early output in memory
  std::size_t held_bytes_ = 0;
  std::set<std::uint64_t> on_disk_;                                // early output in the spool
  std::map<std::uint64_t, std::vector<std::pair<int, std::string>>> held_rows_;  // index → (rank, rows)
  bool head_written_ = false;  // something of next_ is out (straight through)
  char last_byte_ = '\n';       // the last byte of task output written (a PARTIAL one gets a newline)
  std::string error_;          // a spool write failed: its task's output is lost
  std::set<std::uint64_t> lost_;  // tasks whose output could not be spooled whole
  bool finished_ = false;
  std::uint64_t unprinted_ok_ = 0;
  // Rows of printed tasks, each with where its task's output ends in standard output, until
  // write_released() sees that output out.
  struct Released {
    std::uint64_t end;
    int rank;
    std::string rows;
  };
  std::vector<Released> released_;
  bool expect_rows_ = false;
  std::set<std::uint64_t> final_rows_;  // tasks not yet printed whose final row is held
  std::map<std::uint64_t, std::pair<std::uint32_t, std::string>> waiting_;  // done records waiting for their row
  // Where in standard output each task's bytes begin (offset → index), from the first not yet
  // wholly out: if the writer gives up, the task it stopped in is named.
  std::map<std::uint64_t, std::uint64_t> begun_;
};

}  // namespace taskfarm::cli::mpi
