#include "taskfarm/detail/text.hpp"

#include <cstdint>

namespace taskfarm::detail {

std::size_t utf8_length(std::string_view s) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const std::uint8_t c = b(0);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1Fu;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0Fu;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07u;
  else return 0;
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b(i) & 0x3Fu);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  return overlong || surrogate || cp > 0x10FFFF ? 0 : n;
}

TextUnit text_unit_at(std::string_view s, std::size_t i) noexcept {
  const auto c = static_cast<std::uint8_t>(s[i]);
  if (c < 0x80) return TextUnit{1, c < 0x20 || c == 0x7F};
  const std::size_t n = utf8_length(s.substr(i));
  if (n == 0) return TextUnit{1, true};
  const auto b1 = static_cast<std::uint8_t>(s[i + 1]);
  // U+0080–U+009F: C2 80 – C2 9F.
  if (n == 2) return TextUnit{n, (c == 0xC2 && b1 < 0xA0) || (c == 0xD8 && b1 == 0x9C)};  // (U+061C: bidi)
  // The bidirectional controls, which make a terminal show text in another order than it is
  // (h13c P3): U+200E, U+200F, U+202A–U+202E (E2 80 8E/8F, AA–AE), U+2066–U+2069 (E2 81 A6–A9).
  if (n == 3 && c == 0xE2) {
    const auto b2 = static_cast<std::uint8_t>(s[i + 2]);
    return TextUnit{n, (b1 == 0x80 && (b2 == 0x8E || b2 == 0x8F || (b2 >= 0xAA && b2 <= 0xAE))) ||
                           (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9)};
  }
  return TextUnit{n, false};
}

bool has_terminal_unsafe(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const TextUnit u = text_unit_at(s, i);
    if (u.unsafe) return true;
    i += u.size;
  }
  return false;
}

}  // namespace taskfarm::detail
