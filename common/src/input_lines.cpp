#include "taskfarm/input_lines.hpp"

#include <algorithm>
#include <cstring>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {
constexpr std::uint64_t kMagic = 0x53454e494c465400;  // "\0TFLINES"
constexpr std::size_t kPiece = 4 << 20;
}

// Layout: u64 magic, u64 count, u64 offsets[count + 1], text bytes.
InputLines InputLines::create(LineTable&& lines) {
  const std::uint64_t count = lines.size();
  const std::size_t header = (2 + count + 1) * sizeof(std::uint64_t);
  InputLines in;
  in.seg_ = ShmSegment::create(LineTable::segment_bytes(count, lines.text_bytes()), "lines");
  auto* words = static_cast<std::uint64_t*>(in.seg_.data());
  words[0] = kMagic;
  words[1] = count;
  words[2] = 0;
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
  move(reinterpret_cast<char*>(words + 3), lines.ends_);
  move(out, lines.text_);
  in.count_ = count;
  in.offsets_ = words + 2;
  in.text_ = out;
  return in;
}

InputLines InputLines::attach(const std::string& handle) {
  InputLines in;
  in.seg_ = ShmSegment::open(handle, false);
  const auto* words = static_cast<const std::uint64_t*>(in.seg_.data());
  const std::size_t size = in.seg_.size();
  if (size < 3 * sizeof(std::uint64_t) || words[0] != kMagic) throw Error("segment " + handle + " is not a taskfarm input-lines segment");
  const std::uint64_t count = words[1];
  const std::size_t header = (2 + count + 1) * sizeof(std::uint64_t);
  if (count > size / sizeof(std::uint64_t) || header > size || words[2 + count] > size - header)
    throw Error("input-lines segment " + handle + " is truncated");
  in.count_ = count;
  in.offsets_ = words + 2;
  in.text_ = static_cast<const char*>(in.seg_.data()) + header;
  return in;
}

std::string_view InputLines::line(std::uint64_t i) const {
  if (i >= count_) throw Error("input line " + std::to_string(i) + " out of range (" + std::to_string(count_) + " lines in " + seg_.name() + ")");
  return {text_ + offsets_[i], static_cast<std::size_t>(offsets_[i + 1] - offsets_[i])};
}

}  // namespace taskfarm
