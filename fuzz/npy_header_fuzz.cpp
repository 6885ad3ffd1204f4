// .npy preambles (common/src/npy.cpp): --input files and attached .npy arrays come from anyone.
// Contract: parse_npy_header() throws Error or returns a header whose data starts inside the
// bytes; make_npy_header() of what it returned parses back to the same dtype and shape, 64-byte
// aligned; read_npy_header() on a file holding the bytes agrees with parse_npy_header() (and
// accepts exactly when the file is also long enough for the data).
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "fuzz_check.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/npy.hpp"

using namespace taskfarm;

namespace {

// The bytes as a regular file that read_npy_header() can open by path (a memfd: no disk).
std::string as_file(std::string_view bytes) {
  static const int fd = ::memfd_create("npy-fuzz", MFD_CLOEXEC);
  fuzz::require(fd >= 0, "memfd_create");
  fuzz::require(::ftruncate(fd, 0) == 0, "ftruncate memfd");
  fuzz::require(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()),
                "write memfd");
  return "/proc/self/fd/" + std::to_string(fd);
}

bool same(const NpyHeader& a, const NpyHeader& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.data_offset == b.data_offset;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::as_text(data, size);
  NpyHeader parsed;
  bool parses = true;
  try {
    parsed = parse_npy_header(bytes, "fuzz.npy");
  } catch (const Error&) {
    parses = false;
  }

  bool fits = false;
  if (parses) {
    fuzz::require(parsed.data_offset <= bytes.size(), "the data starts inside the bytes");
    const std::string ours = make_npy_header(parsed.dtype, parsed.shape);
    fuzz::require(ours.size() % 64 == 0, "make_npy_header is 64-byte aligned");
    const NpyHeader back = parse_npy_header(ours, "ours.npy");
    fuzz::require(back.dtype == parsed.dtype && back.shape == parsed.shape && back.data_offset == ours.size(),
                  "parse(make_npy_header(parse(x))) == parse(x)");
    try {
      check_npy_file_size(parsed, bytes.size(), "fuzz.npy");
      fits = true;
    } catch (const Error&) {
    }
  }

  try {
    const NpyHeader read = read_npy_header(as_file(bytes));
    fuzz::require(fits && same(read, parsed), "read_npy_header accepts only what parse accepts and fits");
  } catch (const Error&) {
    fuzz::require(!fits, "read_npy_header accepts whatever parses and fits");
  }
  return 0;
}
