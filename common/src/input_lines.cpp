#include "taskfarm/input_lines.hpp"

#include <cstring>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {
constexpr std::uint64_t kMagic = 0x53454e494c465400;  // "\0TFLINES"
}

// Layout: u64 magic, u64 count, u64 offsets[count + 1], text bytes.
InputLines InputLines::create(const std::vector<std::string>& lines) {
  std::size_t text = 0;
  for (const auto& l : lines) text += l.size();
  const std::size_t header = (2 + lines.size() + 1) * sizeof(std::uint64_t);
  InputLines in;
  in.seg_ = ShmSegment::create(header + text, "lines");
  auto* words = static_cast<std::uint64_t*>(in.seg_.data());
  words[0] = kMagic;
  words[1] = lines.size();
  char* out = static_cast<char*>(in.seg_.data()) + header;
  std::uint64_t off = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    words[2 + i] = off;
    std::memcpy(out + off, lines[i].data(), lines[i].size());
    off += lines[i].size();
  }
  words[2 + lines.size()] = off;
  in.count_ = lines.size();
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
