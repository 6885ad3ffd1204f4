// DType and Shape: the element types and shapes a shared array can hold, spelled the way NumPy
// spells them (in .npy headers and in shared-array handles). Plain values and pure functions:
// usable from any process and any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace taskfarm {

/// Element type of a shared array. Values are little-endian (the only order this platform has).
enum class DType : std::uint8_t { u8, u16, i32, i64, f32, f64 };

namespace detail {
template <class T>
inline constexpr bool no_dtype_for = false;
}  // namespace detail

/// The DType of C++ element type T (cv-qualifiers ignored); any other T does not compile.
template <class T>
constexpr DType dtype_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, std::uint8_t>)
    return DType::u8;
  else if constexpr (std::is_same_v<U, std::uint16_t>)
    return DType::u16;
  else if constexpr (std::is_same_v<U, std::int32_t>)
    return DType::i32;
  else if constexpr (std::is_same_v<U, std::int64_t>)
    return DType::i64;
  else if constexpr (std::is_same_v<U, float>)
    return DType::f32;
  else if constexpr (std::is_same_v<U, double>)
    return DType::f64;
  else
    static_assert(detail::no_dtype_for<T>,
                  "taskfarm: no DType for this element type; use std::uint8_t, std::uint16_t, "
                  "std::int32_t, std::int64_t, float or double");
}

/// Bytes per element: 1, 2, 4, 8, 4, 8.
std::size_t dtype_size(DType t);
/// NumPy's name: "uint8", "uint16", "int32", "int64", "float32", "float64".
std::string_view dtype_name(DType t);
/// NumPy's array-protocol string as np.save writes it: "|u1", "<u2", "<i4", "<i8", "<f4", "<f8".
std::string_view dtype_descr(DType t);
/// Short code used in handles: "u1", "u2", "i4", "i8", "f4", "f8".
std::string_view dtype_code(DType t);
/// Accepts NumPy names ("float64"), short codes ("f8") and descrs with '<', '|' or '=' ("<f8");
/// '>' only where byte order is moot ("|u1" and ">u1" alike). Anything else: nullopt.
std::optional<DType> parse_dtype(std::string_view text);

/// Extent of each axis, outermost first (C order). Empty = a 0-d array of one element.
using Shape = std::vector<std::size_t>;

/// Most axes a shape may have in a handle or shared array (parse_shape enforces it).
inline constexpr std::size_t max_shape_dims = 8;

/// "100x512x512"; "7" for a 1-d shape; "()" for the 0-d shape.
std::string format_shape(const Shape& shape);
/// Inverse of format_shape: 1..max_shape_dims positive decimal extents joined by 'x', or "()".
/// Zero, signs, spaces, overflow and anything else: nullopt.
std::optional<Shape> parse_shape(std::string_view text);
/// Product of the extents (1 for the 0-d shape). Throws Error naming the shape on overflow.
std::size_t shape_elements(const Shape& shape);
/// shape_elements(shape) * dtype_size(t). Throws Error naming the shape on overflow.
std::size_t array_bytes(DType t, const Shape& shape);

}  // namespace taskfarm
