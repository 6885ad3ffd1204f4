// InputLines: the lines of --input-lines in one read-only shared segment, so that task i can
// read line i without the master sending it. The master creates (and removes) it; workers
// attach by handle (the segment name). LineTable is how the master holds the lines before:
// one string and one offset per line, the segment's own layout, so its memory is what the
// segment will need (segment_bytes) and can be bounded while reading. A segment may also grow
// while workers read it (create_growing: a streamed input, docs/design.md §10): the master
// appends lines and publishes their count before it hands their tasks out; a worker that
// meets an index past the count it knows reads the count again.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/detail/mapped_buffer.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/unique_fd.hpp"

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
    return (3 + lines + 1) * sizeof(std::uint64_t) + text_bytes;
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
  /// An empty segment that grows by append_text/end_line/publish, read while it grows: room
  /// for `max_lines` lines and `max_text` bytes of text, all sparse (the pages written are the
  /// memory it takes). Writes reserve their pages first (posix_fallocate, a MiB at a time), so
  /// a full /dev/shm is a false from append_text/end_line, never a SIGBUS. Master only.
  static InputLines create_growing(std::uint64_t max_lines, std::uint64_t max_text);
  static InputLines attach(const std::string& handle);

  std::string handle() const { return seg_.name(); }
  /// The lines published (for a growing segment: as this process last read the count).
  std::uint64_t size() const noexcept { return count_; }
  /// Line i without its newline. Throws Error if i is out of range (of the count published).
  std::string_view line(std::uint64_t i) const;

  /// A growing segment's writer (create_growing): appends to the line being written; false when
  /// it would pass max_text or /dev/shm has no room for it (nothing is written then).
  bool append_text(std::string_view bytes);
  /// Ends the line being written (not yet visible to readers); false past max_lines or no room.
  bool end_line();
  /// Lines ended but not yet published, and text of the line not yet ended.
  std::uint64_t ended() const noexcept { return ended_; }
  bool open_line() const noexcept { return text_end_ > offsets_[ended_]; }
  /// Makes every ended line visible to readers (a release store of the count): call before
  /// their tasks go out.
  void publish() noexcept;
  /// Bytes of text written (the ended lines' and the open one's).
  std::uint64_t text_written() const noexcept { return text_end_; }

 private:
  bool reserve(std::uint64_t& reserved, std::uint64_t region, std::uint64_t region_size, std::uint64_t end);
  std::uint64_t* words() const noexcept { return static_cast<std::uint64_t*>(seg_.data()); }

  ShmSegment seg_;
  mutable std::uint64_t count_ = 0;  ///< mutable: a reader of a growing segment reloads it
  std::uint64_t capacity_ = 0;       ///< lines the offsets region holds
  std::uint64_t text_size_ = 0;      ///< bytes of the text region
  const std::uint64_t* offsets_ = nullptr;
  const char* text_ = nullptr;
  // A growing segment's writer (the master).
  std::uint64_t ended_ = 0, text_end_ = 0;
  std::uint64_t reserved_offsets_ = 0, reserved_text_ = 0;  ///< bytes of each region reserved
  UniqueFd fd_;  ///< for posix_fallocate
};

}  // namespace taskfarm
