// The little JSON the observers write (EventStream lines, Trace files): string literals.
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

namespace taskfarm::detail {

/// Appends `text` as a JSON string literal, quotes included. Control characters are escaped;
/// bytes that are not valid UTF-8 (worker output may be anything) become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// `text` as a JSON string literal.
std::string json_string(std::string_view text);

/// Whether `text` is valid UTF-8 (what append_json_string keeps as it is).
bool valid_utf8(std::string_view text);
/// `bytes` in standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

/// `v` as a JSON number with `decimals` digits after the point (seconds, microseconds).
std::string json_number(double v, int decimals);

}  // namespace taskfarm::detail
