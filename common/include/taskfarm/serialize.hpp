// Value ⇄ bytes for results that travel through the workers' result arenas: cereal's binary
// archive over a std::string. Header-only (T is the caller's type); used by both sides.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <cereal/types/array.hpp>
#include <cstring>
#include <span>
#include <streambuf>
#include <istream>
#include <ostream>
#include <string>
#include <type_traits>

namespace taskfarm::detail {

/// Appends everything written to it to a std::string (no copy, no locale work).
class StringAppendBuf : public std::streambuf {
 public:
  explicit StringAppendBuf(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) out_.push_back(traits_type::to_char_type(ch));
    return ch;
  }

 private:
  std::string& out_;
};

/// Reads from a byte span without copying it.
class SpanReadBuf : public std::streambuf {
 public:
  explicit SpanReadBuf(std::span<const char> in) {
    char* p = const_cast<char*>(in.data());  // streambuf's API is non-const; we never write
    setg(p, p, p + in.size());
  }
};

/// A number's cereal binary encoding is its bytes: those are copied without a stream (each
/// std::ostream or std::istream costs a locale copy, on the path of every result).
template <class T>
inline constexpr bool kBytesAsIs = std::is_arithmetic_v<T>;

/// Appends the cereal binary encoding of `value` to `out`.
template <class T>
void append_serialized(std::string& out, const T& value) {
  if constexpr (kBytesAsIs<T>) {
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  } else {
    StringAppendBuf buf(out);
    std::ostream os(&buf);
    cereal::BinaryOutputArchive ar(os);
    ar(value);
  }
}

/// Decodes one T from `bytes`; throws cereal::Exception on truncated or malformed input.
template <class T>
T deserialize(std::span<const char> bytes) {
  T value{};
  if constexpr (kBytesAsIs<T>) {
    if (bytes.size() < sizeof value)  // cereal's own words for it
      throw cereal::Exception("Failed to read " + std::to_string(sizeof value) + " bytes from input stream! Read " +
                              std::to_string(bytes.size()));
    std::memcpy(&value, bytes.data(), sizeof value);
  } else {
    SpanReadBuf buf(bytes);
    std::istream is(&buf);
    cereal::BinaryInputArchive ar(is);
    ar(value);
  }
  return value;
}

}  // namespace taskfarm::detail
