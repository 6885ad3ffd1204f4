// first_difference: where two result sequences first differ, for the examples' --check.
// Floating-point values are compared bit for bit (so -0.0 != 0.0 and NaN == the same NaN):
// a parallel run must reproduce the serial one exactly. Pure functions; any thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>

namespace examples {

template <class T>
bool same_value(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, float>) {
    return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
  } else if constexpr (std::is_same_v<T, double>) {
    return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
  } else {
    return a == b;
  }
}

/// nullopt if `parallel` and `serial` hold the same values in the same order; otherwise a
/// sentence naming the first differing index (and both values when they can be printed).
template <class Range>
std::optional<std::string> first_difference(const Range& parallel, const Range& serial) {
  const std::size_t n = std::size(parallel);
  if (n != std::size(serial)) {
    return "parallel has " + std::to_string(n) + " results, serial " +
           std::to_string(std::size(serial));
  }
  auto p = std::begin(parallel);
  auto s = std::begin(serial);
  for (std::size_t i = 0; i < n; ++i, ++p, ++s) {
    if (same_value(*p, *s)) continue;
    std::ostringstream text;
    text << "first difference at index " << i;
    if constexpr (requires(std::ostream & os) { os << +*p; }) {
      text.precision(17);
      text << ": parallel " << +*p << ", serial " << +*s;
    }
    return text.str();
  }
  return std::nullopt;
}

}  // namespace examples
