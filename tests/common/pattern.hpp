// The value pattern the common tests write and check, shared by the test binary, the
// array_writer helper and (spelled again in Python) the NumPy interop scripts: element k of a
// C-order array holds pattern_value<T>(k). Each dtype's formula leaves its small-int range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "taskfarm/dtype.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::test {

template <class T>
T pattern_value(std::size_t k) {
  const auto i = static_cast<std::int64_t>(k);
  if constexpr (std::is_same_v<T, std::uint8_t>)
    return static_cast<T>(i % 251);
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return static_cast<T>((i * 7) % 65521);
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return static_cast<T>(i * 3 - 1000);
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return i * 1000003 - 5000000000;
  else if constexpr (std::is_same_v<T, float>)
    return static_cast<float>(static_cast<double>(i) * 0.25 - 8.0);
  else
    return static_cast<double>(i) * 0.5 - 7.25;
}

/// The same formulas in Python (numpy), as `pattern(dt, shape)` with dt a short code ("f8").
inline constexpr const char* kPythonPattern = R"PY(
import numpy as np
def pattern(dt, shape):
    k = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    v = {'u1': lambda: k % 251, 'u2': lambda: (k * 7) % 65521, 'i4': lambda: k * 3 - 1000,
         'i8': lambda: k * 1000003 - 5000000000, 'f4': lambda: k * 0.25 - 8,
         'f8': lambda: k * 0.5 - 7.25}[dt]()
    return v.astype(dt).reshape(shape)
)PY";

/// Calls f.template operator()<T>() with the C++ type of `t`.
template <class F>
decltype(auto) with_dtype(DType t, F&& f) {
  switch (t) {
    case DType::u8:
      return f.template operator()<std::uint8_t>();
    case DType::u16:
      return f.template operator()<std::uint16_t>();
    case DType::i32:
      return f.template operator()<std::int32_t>();
    case DType::i64:
      return f.template operator()<std::int64_t>();
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
  }
  throw Error("with_dtype: invalid DType");
}

}  // namespace taskfarm::test
