#include "taskfarm/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>

#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::size_t kAlign = 64;             // numpy's ARRAY_ALIGN
constexpr std::size_t kGrowthAxisDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS

std::string shape_repr(const Shape& shape) {
  if (shape.empty()) return "()";
  if (shape.size() == 1) return "(" + std::to_string(shape[0]) + ",)";
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + ")";
}

// Reads the Python-literal dict of a .npy preamble: string keys, string / bool / int-tuple
// values. Just enough Python for what numpy (any version) writes; anything else is an error.
class DictParser {
 public:
  DictParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  NpyHeader parse() {
    std::string descr;
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    NpyHeader h;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        if (peek() != '\'' && peek() != '"')
          fail("structured or sub-array dtypes are not supported");
        descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) fail("duplicate key 'fortran_order'");
        fortran = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        h.shape = parse_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "' in header");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' after the value of '" + key + "'");
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    if (!have_descr || !have_order || !have_shape) {
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    if (fortran) fail("Fortran-order arrays are not supported (fortran_order: True)");
    const std::optional<DType> t = parse_dtype(descr);
    if (!t) {
      if (!descr.empty() && descr[0] == '>')
        fail("big-endian data ('" + descr + "') is not supported");
      fail("unsupported dtype '" + descr + "' (taskfarm reads u1 u2 i4 i8 f4 f8)");
    }
    h.dtype = *t;
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(path_ + ": bad .npy header: " + problem);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "' at byte " + std::to_string(pos_));
    ++pos_;
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\t' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"')
      fail("expected a quoted string at byte " + std::to_string(pos_));
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("fortran_order is neither True nor False");
  }
  Shape parse_tuple() {
    Shape shape;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      std::size_t extent = 0;
      const char* begin = text_.data() + pos_;
      const auto [ptr, ec] = std::from_chars(begin, text_.data() + text_.size(), extent);
      if (ec != std::errc{} || ptr == begin) fail("shape holds something other than a size");
      pos_ += static_cast<std::size_t>(ptr - begin);
      if (peek() == 'L') ++pos_;  // Python 2 longs, written by old numpy
      shape.push_back(extent);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("malformed shape tuple");
    }
    ++pos_;  // ')'
    return shape;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  const std::string& path_;
};

std::size_t read_le(std::string_view bytes, std::size_t at, std::size_t width) {
  std::size_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    v |= std::size_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  }
  return v;
}

std::string write_le(std::size_t v, std::size_t width) {
  std::string out(width, '\0');
  for (std::size_t i = 0; i < width; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// Reads up to `n` bytes at `offset`; fewer only at the end of the file.
std::string pread_some(int fd, std::size_t n, std::size_t offset, const std::string& path) {
  std::string buf(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno("cannot read .npy file " + path);
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  buf.resize(got);
  return buf;
}

}  // namespace

std::string make_npy_header(DType dtype, const Shape& shape) {
  std::string dict = "{'descr': '" + std::string(dtype_descr(dtype)) +
                     "', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  // numpy leaves room to grow the first axis in place; do the same so our bytes equal its.
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisDigits) dict.append(kGrowthAxisDigits - digits, ' ');
  }
  const std::size_t hlen = dict.size() + 1;  // + '\n'
  for (const auto& [major, width] : {std::pair<char, std::size_t>{1, 2}, {2, 4}}) {
    const std::size_t prefix = kMagic.size() + 2 + width;
    const std::size_t padlen = kAlign - (prefix + hlen) % kAlign;
    const std::size_t field = hlen + padlen;
    if (width == 2 && field > 0xffff) continue;  // needs format 2.0
    if (field > 0xffffffffULL) break;
    std::string out(kMagic);
    out += major;
    out += '\0';
    out += write_le(field, width);
    out += dict;
    out.append(padlen, ' ');
    out += '\n';
    return out;
  }
  throw Error("shape " + format_shape(shape) + " needs a .npy header over 4 GiB");
}

NpyHeader parse_npy_header(std::string_view bytes, const std::string& path_for_errors) {
  const std::string& path = path_for_errors;
  if (bytes.substr(0, kMagic.size()) != kMagic.substr(0, bytes.size())) {
    throw Error(path + ": not a .npy file (no \\x93NUMPY magic)");
  }
  if (bytes.size() < kMagic.size() + 2) {
    throw Error(path + ": truncated .npy file (" + std::to_string(bytes.size()) + " bytes)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    throw Error(path + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor));
  }
  const std::size_t width = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagic.size() + 2 + width;
  if (bytes.size() < prefix) {
    throw Error(path + ": truncated .npy file (" + std::to_string(bytes.size()) + " bytes)");
  }
  const std::size_t hlen = read_le(bytes, kMagic.size() + 2, width);
  if (bytes.size() - prefix < hlen) {
    // Name the version and the length field read, so that a preamble whose version byte does
    // not match its layout (a 1.0 preamble marked 3.0) is told from a cut file.
    std::string what = path + ": its .npy preamble (format version " + std::to_string(major) + ".0) declares a " +
                       std::to_string(hlen) + "-byte header in the " + std::to_string(width) +
                       "-byte length at byte 8, but the file has " + std::to_string(bytes.size()) + " bytes";
    const std::size_t v1_end = kMagic.size() + 4 + read_le(bytes, kMagic.size() + 2, 2);
    if (width == 4 && bytes.size() > kMagic.size() + 4 && bytes[kMagic.size() + 4] == '{' && v1_end <= bytes.size())
      what += ": the bytes are laid out as version 1.0 (a 2-byte length, the header dict at byte 10), so the version "
              "byte is wrong";
    else what += ": the file is truncated, or its preamble is damaged";
    throw Error(what);
  }
  NpyHeader h = DictParser(bytes.substr(prefix, hlen), path).parse();
  h.data_offset = prefix + hlen;
  return h;
}

void check_npy_file_size(const NpyHeader& header, std::uint64_t file_bytes,
                         const std::string& path) {
  std::size_t data = 0;
  try {
    data = header.data_bytes();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (file_bytes < header.data_offset || file_bytes - header.data_offset < data) {
    throw Error(path + ": truncated .npy file: " + format_shape(header.shape) + " " +
                std::string(dtype_name(header.dtype)) + " needs " + std::to_string(data) +
                " bytes of data after a " + std::to_string(header.data_offset) +
                "-byte header, but the file has " + std::to_string(file_bytes) + " bytes");
  }
}

NpyHeader read_npy_header(const std::string& path) {
  UniqueFd fd;
  try {
    fd = detail::open_regular_file(path, O_RDONLY);  // a FIFO is refused, not waited on
  } catch (const SystemError& e) {
    throw SystemError("cannot open .npy file " + path, e.code());
  } catch (const Error& e) {
    throw Error("cannot open .npy file " + path + ": " + e.what());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat .npy file " + path);
  std::string head = pread_some(fd.get(), 12, 0, path);
  const std::size_t width = head.size() > 6 && head[6] == 1 ? 2 : 4;
  if (head.size() >= kMagic.size() + 2 + width && head.substr(0, kMagic.size()) == kMagic) {
    // Never read more than the file holds, whatever length a damaged preamble claims.
    const std::size_t need =
        std::min<std::size_t>(kMagic.size() + 2 + width + read_le(head, kMagic.size() + 2, width),
                              static_cast<std::size_t>(st.st_size));
    head = pread_some(fd.get(), need, 0, path);
  }
  NpyHeader h = parse_npy_header(head, path);
  check_npy_file_size(h, static_cast<std::uint64_t>(st.st_size), path);
  return h;
}

}  // namespace taskfarm
