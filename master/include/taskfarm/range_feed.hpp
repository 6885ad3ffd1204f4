// RangeFeed: a run whose index space arrives while it runs — a node of an MPI run (docs/design.md
// §17) gets ranges from rank 0 as it asks for them. The engine watches fd(); when it is readable
// it calls read(), which must not block. When the indices it has not handed out fall to
// low_water() it calls want_more() once, and again only after the next read() brought ranges.
// The run ends when the feed is closed and everything it gave is done (or at halt / stop).
// Ranges must come ascending, each beginning at or after the end of the last one, inside the
// job's extent. Driven from the Farm's one thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace taskfarm {

class RangeFeed {
 public:
  struct Batch {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  ///< [begin, end), ascending
    bool closed = false;  ///< nothing more will come
  };
  virtual ~RangeFeed() = default;
  /// Readable (epoll) when read() has something to say.
  virtual int fd() const = 0;
  virtual Batch read() = 0;
  virtual void want_more() = 0;
  /// Ask for more once this few indices are left to hand out (0: only when none is).
  virtual std::uint64_t low_water() const = 0;
};

}  // namespace taskfarm
