#include "taskfarm/input_lines.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {
constexpr std::uint64_t kMagic = 0x32454e494c465400;  // "\0TFLINE2"
constexpr std::size_t kPiece = 4 << 20;
constexpr std::uint64_t kReserveStep = 1 << 20;  // a growing segment reserves its pages a MiB at a time
constexpr std::uint64_t kWord = sizeof(std::uint64_t);

// Layout: u64 magic, u64 count (published lines), u64 capacity (lines the offsets region holds),
// u64 offsets[capacity + 1] (offsets[i + 1] is where line i ends), then the text region (the rest).
// A segment made whole has capacity == count; a growing one is written by its master only
// (text, then offsets, then count — a release store), read by everyone else.
std::uint64_t header_bytes(std::uint64_t capacity) { return (3 + capacity + 1) * kWord; }

std::uint64_t load_count(const std::uint64_t* words) { return __atomic_load_n(&words[1], __ATOMIC_ACQUIRE); }
}  // namespace

InputLines InputLines::create(LineTable&& lines) {
  const std::uint64_t count = lines.size();
  const std::size_t header = header_bytes(count);
  InputLines in;
  in.seg_ = ShmSegment::create(LineTable::segment_bytes(count, lines.text_bytes()), "lines");
  auto* words = in.words();
  words[0] = kMagic;
  words[1] = count;
  words[2] = count;
  words[3] = 0;
  char* out = static_cast<char*>(in.seg_.data()) + header;
  // Piece by piece, each given back once copied: the segment's pages fill as the table's go.
  auto move = [](char* to, detail::MappedBuffer& from) {
    for (std::size_t done = 0; done < from.size();) {
      const std::size_t n = std::min(kPiece, from.size() - done);
      std::memcpy(to + done, from.data() + done, n);
      done += n;
      from.release_front(done);
    }
    from = detail::MappedBuffer();
  };
  in.text_size_ = lines.text_bytes();
  move(reinterpret_cast<char*>(words + 4), lines.ends_);
  move(out, lines.text_);
  in.count_ = in.capacity_ = in.ended_ = count;
  in.text_end_ = in.text_size_;
  in.offsets_ = words + 3;
  in.text_ = out;
  return in;
}

InputLines InputLines::create_growing(std::uint64_t max_lines, std::uint64_t max_text) {
  InputLines in;
  std::uint64_t bytes = 0;
  if (max_lines > (std::uint64_t{1} << 58) || __builtin_add_overflow(header_bytes(max_lines), max_text, &bytes))
    throw Error("a growing input-lines segment of " + std::to_string(max_lines) + " lines does not fit in 64 bits");
  in.seg_ = ShmSegment::create_sparse(bytes, 0, "lines", /*check_free=*/false);
  const std::string path = "/" + in.seg_.name();
  in.fd_ = UniqueFd(::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!in.fd_) throw_errno("cannot open shared segment " + in.seg_.name());
  in.capacity_ = max_lines;
  in.text_size_ = max_text;
  if (!in.reserve(in.reserved_offsets_, 0, header_bytes(max_lines), 4 * kWord)) throw Error("cannot reserve shared segment " + in.seg_.name() + ": /dev/shm is full");
  auto* words = in.words();
  words[0] = kMagic;
  words[2] = max_lines;
  words[3] = 0;
  __atomic_store_n(&words[1], 0, __ATOMIC_RELEASE);
  in.offsets_ = words + 3;
  in.text_ = static_cast<const char*>(in.seg_.data()) + header_bytes(max_lines);
  return in;
}

bool InputLines::reserve(std::uint64_t& reserved, std::uint64_t region, std::uint64_t region_size, std::uint64_t end) {
  if (end <= reserved) return true;
  // A MiB ahead, so that posix_fallocate is called once per MiB written, not per block.
  const std::uint64_t to = std::min(std::max(end, reserved + kReserveStep), region_size);
  // A full /dev/shm stops the writer here, where the write would otherwise SIGBUS.
  if (::posix_fallocate(fd_.get(), static_cast<off_t>(region + reserved), static_cast<off_t>(to - reserved)) != 0) return false;
  reserved = to;
  return true;
}

bool InputLines::append_text(std::string_view bytes) {
  if (bytes.empty()) return true;
  if (bytes.size() > text_size_ - text_end_) return false;
  const std::uint64_t region = header_bytes(capacity_);
  if (!reserve(reserved_text_, region, text_size_, text_end_ + bytes.size())) return false;
  std::memcpy(const_cast<char*>(text_) + text_end_, bytes.data(), bytes.size());
  text_end_ += bytes.size();
  return true;
}

bool InputLines::end_line() {
  if (ended_ >= capacity_) return false;
  if (!reserve(reserved_offsets_, 0, header_bytes(capacity_), (3 + ended_ + 2) * kWord)) return false;
  words()[3 + ended_ + 1] = text_end_;
  ++ended_;
  return true;
}

void InputLines::publish() noexcept {
  __atomic_store_n(&words()[1], ended_, __ATOMIC_RELEASE);
  count_ = ended_;
}

InputLines InputLines::attach(const std::string& handle) {
  InputLines in;
  in.seg_ = ShmSegment::open(handle, false);
  const auto* words = static_cast<const std::uint64_t*>(in.seg_.data());
  const std::size_t size = in.seg_.size();
  if (size < 4 * kWord || words[0] != kMagic) throw Error("segment " + handle + " is not a taskfarm input-lines segment");
  const std::uint64_t capacity = words[2];
  const std::uint64_t count = load_count(words);
  if (capacity > size / kWord || header_bytes(capacity) > size || count > capacity)
    throw Error("input-lines segment " + handle + " is truncated");
  in.count_ = count;
  in.capacity_ = capacity;
  in.text_size_ = size - header_bytes(capacity);
  in.offsets_ = words + 3;
  in.text_ = static_cast<const char*>(in.seg_.data()) + header_bytes(capacity);
  return in;
}

std::string_view InputLines::line(std::uint64_t i) const {
  // A growing segment: the master published the count before it sent index i.
  if (i >= count_ && seg_) count_ = std::min(load_count(static_cast<const std::uint64_t*>(seg_.data())), capacity_);
  if (i >= count_) throw Error("input line " + std::to_string(i) + " out of range (" + std::to_string(count_) + " lines in " + seg_.name() + ")");
  const std::uint64_t b = offsets_[i], e = offsets_[i + 1];
  if (b > e || e > text_size_) throw Error("input-lines segment " + seg_.name() + " is damaged at line " + std::to_string(i));
  return {text_ + b, static_cast<std::size_t>(e - b)};
}

}  // namespace taskfarm
