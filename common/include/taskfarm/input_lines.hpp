// InputLines: the lines of --input-lines in one read-only shared segment, so that task i can
// read line i without the master sending it. The master creates (and removes) it; workers
// attach by handle (the segment name). LineTable is how the master holds the lines before:
// one string and one offset per line, the segment's own layout, so its memory is what the
// segment will need (segment_bytes) and can be bounded while reading.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/detail/mapped_buffer.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm {

/// Lines in one buffer: line i is text()[offset(i), offset(i + 1)). Its memory is what it holds
/// (MappedBuffer: no doubled capacity, no copy on growth), so a bound on segment_bytes() is a
/// bound on the memory that reading the lines takes.
class LineTable {
 public:
  std::uint64_t size() const noexcept { return ends_.size() / sizeof(std::uint64_t); }
  std::uint64_t text_bytes() const noexcept { return text_.size(); }
  /// Where line i begins (offset(size()) is text_bytes()).
  std::uint64_t offset(std::uint64_t i) const noexcept { return i == 0 ? 0 : end(i - 1); }
  std::string_view line(std::uint64_t i) const noexcept {
    const std::uint64_t b = offset(i);
    return {text_.data() + b, static_cast<std::size_t>(end(i) - b)};
  }
  /// Whether text was appended since the last end_line().
  bool open_line() const noexcept { return text_bytes() > offset(size()); }

  /// Appends to the line being read; end_line() ends it. Throw std::bad_alloc when memory is refused.
  void append_text(std::string_view bytes) { text_.append(bytes.data(), bytes.size()); }
  void end_line() {
    const std::uint64_t e = text_bytes();
    ends_.append(&e, sizeof e);
  }

  /// Bytes of the segment that holds `lines` lines of `text_bytes` bytes in all.
  static std::uint64_t segment_bytes(std::uint64_t lines, std::uint64_t text_bytes) noexcept {
    return (2 + lines + 1) * sizeof(std::uint64_t) + text_bytes;
  }

 private:
  friend class InputLines;
  std::uint64_t end(std::uint64_t i) const noexcept {
    std::uint64_t e;
    std::memcpy(&e, ends_.data() + i * sizeof e, sizeof e);
    return e;
  }

  detail::MappedBuffer text_;
  detail::MappedBuffer ends_;  ///< where each line ends, a u64 per line
};

class InputLines {
 public:
  /// Creates the segment (ShmSegment::create: throws Error when /dev/shm lacks the room) and
  /// moves `lines` into it, giving their pages back piece by piece, so the master holds the
  /// lines about once, not twice (`lines` is empty after).
  static InputLines create(LineTable&& lines);
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
