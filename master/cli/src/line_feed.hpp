// LineFeed: the lines of a stream (standard input, a pipe, a FIFO) handed to an --exec run as
// they arrive (docs/design.md §10), so that `yes | taskfarm run --exec -- echo {} | head` starts
// at once. A RangeFeed (range_feed.hpp): when the Supervisor finds it readable it reads its
// source once, appends the lines into the run's growing InputLines segment, publishes their
// count and returns their tasks as a range — the count is in shared memory before any of
// their tasks is sent. Line j is the first axis's value j: with other sources (a cross
// product) it makes `per_line` tasks, [j × per_line, (j + 1) × per_line). It reads only while the run wants work (want_more, until a batch came),
// so a producer faster than the tasks waits on its pipe, as with GNU parallel, and what is held
// is what the tasks are about to use. It ends at the input's end, or at the limit: then it stops
// reading and says why (stopped()), and the run ends once the lines read are done. Main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "line_source.hpp"
#include "taskfarm/input_lines.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class LineFeed : public RangeFeed {
 public:
  /// Called with the tasks of the lines published so far, and whether that is all of them.
  using OnLines = std::function<void(std::uint64_t tasks, bool all)>;

  /// `lines` (create_growing, holding the other sources' values if any: the stream's lines
  /// follow them) receives the lines; `limit` bounds the segment as it counts (LineTable::
  /// segment_bytes), `limit_text` names it in the message. `first` is what the plan already read
  /// from `source`. At most `bound` lines are read (the index space's first axis).
  LineFeed(LineSource source, std::string first, char separator, std::uint64_t limit, std::string limit_text,
           InputLines& lines, std::uint64_t per_line, std::uint64_t bound, OnLines on_lines);

  /// The lines of `first` (the bytes the plan read): the run's first ranges.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> first_ranges();

  int fd() const override { return epoll_.get(); }
  Batch read() override;
  void want_more() override;
  std::uint64_t low_water() const override { return kLowWater; }

  /// The tasks of the lines published.
  std::uint64_t tasks() const noexcept { return (published_ - base_) * per_line_; }
  /// Whether nothing more will be read (the input's end, or stopped()).
  bool ended() const noexcept { return ended_; }
  /// Why reading stopped before the input's end ("" if it did not): one line for the user.
  const std::string& stopped() const noexcept { return stopped_; }
  /// Stopped before a first whole line could be taken (it alone is past the limit): the input is
  /// refused as a whole read would have refused it (exit 2), nothing having run.
  bool refused_whole() const noexcept { return refused_whole_; }

 private:
  static constexpr std::uint64_t kLowWater = 1024;  ///< ask for more lines when this few are left
  static constexpr std::uint64_t kBatch = 2 * kLowWater;  ///< read until this many came since asked

  void take(std::string_view bytes);
  void stop(const std::string& why, bool limit);
  void arm(bool on);
  Batch publish(bool closed);

  LineSource source_;
  std::string first_;
  char separator_;
  std::uint64_t limit_;
  std::string limit_text_;
  InputLines& lines_;
  std::uint64_t base_;      ///< the segment's line of the stream's first: the other sources' come before
  std::uint64_t per_line_, bound_;
  OnLines on_lines_;
  UniqueFd epoll_;  ///< holds the source while armed: readable only when there is reason to read
  bool armed_ = false, ended_ = false;
  std::uint64_t since_asked_ = 0, published_ = 0;
  std::string stopped_;
  bool refused_whole_ = false;
  std::vector<char> block_;
};

}  // namespace taskfarm::cli
