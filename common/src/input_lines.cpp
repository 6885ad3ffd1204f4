#include "taskfarm/input_lines.hpp"

#include <cstring>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {
constexpr std::uint64_t kMagic = 0x53454e494c465400;  // "\0TFLINES"
}

// Layout: u64 magic, u64 count, u64 offsets[count + 1], text bytes.
InputLines InputLines::create(const LineTable& lines) {
  const std::uint64_t count = lines.size();
  const std::size_t header = (2 + count + 1) * sizeof(std::uint64_t);
  InputLines in;
  in.seg_ = ShmSegment::create(LineTable::segment_bytes(count, lines.text.size()), "lines");
  auto* words = static_cast<std::uint64_t*>(in.seg_.data());
  words[0] = kMagic;
  words[1] = count;
  std::memcpy(words + 2, lines.offsets.data(), (count + 1) * sizeof(std::uint64_t));
  char* out = static_cast<char*>(in.seg_.data()) + header;
  if (!lines.text.empty()) std::memcpy(out, lines.text.data(), lines.text.size());
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
