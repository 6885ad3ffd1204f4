#include "taskfarm/dtype.hpp"

#include <array>
#include <charconv>
#include <limits>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {

struct DTypeInfo {
  DType type;
  std::size_t size;
  std::string_view name;
  std::string_view descr;
  std::string_view code;
};

constexpr std::array<DTypeInfo, 6> kTypes{{
    {DType::u8, 1, "uint8", "|u1", "u1"},
    {DType::u16, 2, "uint16", "<u2", "u2"},
    {DType::i32, 4, "int32", "<i4", "i4"},
    {DType::i64, 8, "int64", "<i8", "i8"},
    {DType::f32, 4, "float32", "<f4", "f4"},
    {DType::f64, 8, "float64", "<f8", "f8"},
}};

const DTypeInfo& info(DType t) {
  const auto i = static_cast<std::size_t>(t);
  if (i >= kTypes.size()) throw Error("invalid DType value " + std::to_string(i));
  return kTypes[i];
}

}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
std::string_view dtype_descr(DType t) { return info(t).descr; }
std::string_view dtype_code(DType t) { return info(t).code; }

std::optional<DType> parse_dtype(std::string_view text) {
  char order = 0;
  if (!text.empty() && (text[0] == '<' || text[0] == '|' || text[0] == '=' || text[0] == '>')) {
    order = text[0];
    text.remove_prefix(1);
  }
  for (const DTypeInfo& t : kTypes) {
    if (text == t.code) {
      if (order == '>' && t.size != 1) return std::nullopt;  // big-endian data: not ours to read
      return t.type;
    }
    if (order == 0 && text == t.name) return t.type;
  }
  return std::nullopt;
}

std::string format_shape(const Shape& shape) {
  if (shape.empty()) return "()";
  std::string out;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) out += 'x';
    out += std::to_string(shape[i]);
  }
  return out;
}

std::optional<Shape> parse_shape(std::string_view text) {
  if (text == "()") return Shape{};
  Shape shape;
  while (true) {
    const std::size_t x = text.find('x');
    const std::string_view part = text.substr(0, x);
    // from_chars would accept neither '+' nor '-', but check digits explicitly anyway.
    if (part.empty() || part.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    std::size_t extent = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), extent);
    if (ec != std::errc{} || ptr != part.data() + part.size() || extent == 0) return std::nullopt;
    shape.push_back(extent);
    if (shape.size() > max_shape_dims) return std::nullopt;
    if (x == std::string_view::npos) break;
    text.remove_prefix(x + 1);
  }
  return shape;
}

std::size_t shape_elements(const Shape& shape) {
  std::size_t n = 1;
  for (const std::size_t extent : shape) {
    if (extent != 0 && n > std::numeric_limits<std::size_t>::max() / extent) {
      throw Error("shape " + format_shape(shape) + " has more elements than fit in 64 bits");
    }
    n *= extent;
  }
  return n;
}

std::size_t array_bytes(DType t, const Shape& shape) {
  const std::size_t n = shape_elements(shape);
  const std::size_t size = dtype_size(t);
  if (n > std::numeric_limits<std::size_t>::max() / size) {
    throw Error("shape " + format_shape(shape) + " of " + std::string(dtype_name(t)) +
                " needs more bytes than fit in 64 bits");
  }
  return n * size;
}

}  // namespace taskfarm
