// InputLines: the lines of --input-lines in one read-only shared segment, so that task i can
// read line i without the master sending it. The master creates (and removes) it; workers
// attach by handle (the segment name). LineTable is how the master holds the lines before:
// one string and one offset per line, the segment's own layout, so its memory is what the
// segment will need (segment_bytes) and can be bounded while reading.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/shm_segment.hpp"

namespace taskfarm {

/// Lines in one buffer: line i is text[offsets[i], offsets[i + 1]).
struct LineTable {
  std::string text;
  std::vector<std::uint64_t> offsets{0};

  std::uint64_t size() const noexcept { return offsets.size() - 1; }
  /// Ends the line that text holds since the last one (text appended directly, then this).
  void end_line() { offsets.push_back(text.size()); }
  /// Bytes of the segment that holds `lines` lines of `text_bytes` bytes in all.
  static std::uint64_t segment_bytes(std::uint64_t lines, std::uint64_t text_bytes) noexcept {
    return (2 + lines + 1) * sizeof(std::uint64_t) + text_bytes;
  }
};

class InputLines {
 public:
  /// Creates the segment (ShmSegment::create: throws Error when /dev/shm lacks the room).
  static InputLines create(const LineTable& lines);
  static InputLines attach(const std::string& handle);

  std::string handle() const { return seg_.name(); }
  std::uint64_t size() const noexcept { return count_; }
  /// Line i without its newline. Throws Error if i is out of range.
  std::string_view line(std::uint64_t i) const;

 private:
  ShmSegment seg_;
  std::uint64_t count_ = 0;
  const std::uint64_t* offsets_ = nullptr;
  const char* text_ = nullptr;
};

}  // namespace taskfarm
