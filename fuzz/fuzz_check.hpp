// What every fuzz target in fuzz/ shares: a property check that stops the fuzzer with a message
// when a decoder breaks its contract, and the input bytes as text. Used only by the libFuzzer
// targets (TASKFARM_FUZZ builds), one process, one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace taskfarm::fuzz {

/// Aborts (libFuzzer saves the input as a crash) with "property violated: <what>" unless `ok`.
inline void require(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "property violated: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

/// The fuzzer's input as a byte string.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace taskfarm::fuzz
