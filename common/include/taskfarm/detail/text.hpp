// Text that reaches a terminal or a JSON string: what is UTF-8, and what a terminal could act
// on. Shared by the CLI's one-line messages, the quoting of commands, and JSON output.
#pragma once

#include <cstddef>
#include <string_view>

namespace taskfarm::detail {

/// The length (2–4) of the valid UTF-8 sequence at the start of `s`, or 0 if it is not one (a
/// lone continuation byte, overlong, a surrogate, past U+10FFFF, cut short). `s` must start
/// with a byte >= 0x80.
std::size_t utf8_length(std::string_view s) noexcept;

/// The character at `s[i]`: its size in bytes (1 for an ASCII byte, and for a byte that is not
/// part of valid UTF-8), and whether it must not reach a terminal as it is — a C0 control, DEL,
/// a C1 control (U+0080–U+009F, which terminals honouring C1 act on), or a byte that is not
/// UTF-8 (a lone 0x9b is CSI to a terminal reading Latin-1), or a bidirectional control (U+202E
/// and its kind: the terminal would show the text around it in another order). (Newline and tab are controls too:
/// a caller that keeps them says so itself.)
struct TextUnit {
  std::size_t size = 1;
  bool unsafe = false;
};
TextUnit text_unit_at(std::string_view s, std::size_t i) noexcept;

/// Whether `s` holds a character text_unit_at calls unsafe.
bool has_terminal_unsafe(std::string_view s) noexcept;

}  // namespace taskfarm::detail
