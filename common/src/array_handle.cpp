#include "taskfarm/detail/array_handle.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::detail {
namespace {

// The handle as one printable line: control bytes (a NUL would end what() early) as \xNN.
std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

}  // namespace

ParsedHandle parse_handle(std::string_view handle) {
  const auto bad = [&](const std::string& why) {
    return Error("malformed shared array handle '" + printable(handle) + "': " + why +
                 " (expected shm[-ro]:<dtype>:<shape>:<segment> or npy[-ro]:<dtype>:<shape>:<path>)");
  };
  std::string_view parts[3];
  std::string_view rest = handle;
  for (std::string_view& part : parts) {
    const std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) throw bad("too few fields");
    part = rest.substr(0, colon);
    rest.remove_prefix(colon + 1);
  }
  ParsedHandle h{};
  std::string_view kind = parts[0];
  h.read_only = kind.size() > 3 && kind.substr(3) == "-ro";
  if (h.read_only) kind = kind.substr(0, 3);
  if (kind == "shm") {
    h.backing = AnySharedArray::Backing::shm;
  } else if (kind == "npy") {
    h.backing = AnySharedArray::Backing::npy;
  } else {
    throw bad("unknown kind '" + std::string(parts[0]) + "'");
  }
  const std::optional<DType> dtype = parse_dtype(parts[1]);
  if (!dtype) throw bad("unknown dtype '" + std::string(parts[1]) + "'");
  std::optional<Shape> shape = parse_shape(parts[2]);
  if (!shape) throw bad("bad shape '" + std::string(parts[2]) + "'");
  if (rest.empty()) throw bad("no segment name or path");
  // The OS would stop reading the name at a NUL and open another segment or file than named.
  if (rest.find('\0') != std::string_view::npos) throw bad("NUL byte in the segment name or path");
  h.dtype = *dtype;
  h.shape = std::move(*shape);
  h.name = std::string(rest);
  return h;
}

std::string format_handle(const ParsedHandle& h) {
  return std::string(h.backing == AnySharedArray::Backing::shm ? "shm" : "npy") + (h.read_only ? "-ro:" : ":") +
         std::string(dtype_code(h.dtype)) + ":" + format_shape(h.shape) + ":" + h.name;
}

}  // namespace taskfarm::detail
